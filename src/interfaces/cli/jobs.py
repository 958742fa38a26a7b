"""`chronicle jobs`: list and inspect jobs; the failed-jobs toolbox (retry, forget, cancel)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import click
import msgspec

from application.views.jobs import FailedJobFilter, JobFilter, JobRow
from domain.job import QUEUES, JobStatus
from domain.shared import DEFAULT_TENANT
from interfaces.bootstrap import Chronicle
from interfaces.http.schemas.jobs import failed_job, job_item

F = TypeVar("F", bound=Callable[..., Any])

STATUS_CHOICES = [s.value for s in JobStatus] + ["delayed", "ready"]


def _by() -> str:
    return f"cli:{getpass.getuser()}"


# `interfaces.cli.main` imports this module to add the group: its helpers are imported when a
# command runs, so either module can be imported first.


def _open() -> AbstractContextManager[Chronicle]:
    """The store of the CHRONICLE_* settings; domain errors become a ClickException."""
    from interfaces.cli.main import _chronicle, _settings  # noqa: PLC0415

    return _chronicle(_settings())


def _catch_up(app: Chronicle) -> None:
    from interfaces.cli.main import _catch_up_if_embedded  # noqa: PLC0415

    _catch_up_if_embedded(app)


def _fmt_time(moment: datetime | None) -> str:
    from interfaces.cli.main import _fmt_time as fmt  # noqa: PLC0415

    return fmt(moment)


class Moment(click.ParamType[datetime, "str | datetime"]):
    """An ISO-8601 time with a UTC offset (`Z` or `+01:00`); a naive time is refused."""

    name = "time"

    def convert(
        self, value: str | datetime, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time, e.g. 2026-01-05T12:00:00Z", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{value!r} needs a UTC offset, e.g. Z or +01:00", param, ctx)
        return moment


def _failed_filters(func: F) -> F:
    """The filters of the failed list, shared by `failed` and `retry-failed`."""
    options = [
        click.option("--queue", type=click.Choice(QUEUES)),
        click.option("--command", help="Registered command name, e.g. demo:fail."),
        click.option("--error-type", help="Exception class of the last failure."),
        click.option("--failed-from", type=Moment(), help="Last attempt failed at or after this."),
        click.option("--failed-to", type=Moment(), help="Last attempt failed before this."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _failed_filter(filters: dict[str, Any]) -> FailedJobFilter:
    return FailedJobFilter(tenant=DEFAULT_TENANT, **filters)


def _row_dict(row: JobRow) -> dict[str, Any]:
    return {key: getattr(row, key) for key in row.__dataclass_fields__}


@click.group()
def jobs() -> None:
    """Inspect jobs; retry, forget and cancel them."""


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUS_CHOICES))
@click.option("--queue", type=click.Choice(QUEUES))
@click.option("--command")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def jobs_list(
    status: str | None,
    queue: str | None,
    command: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    with _open() as app:
        _catch_up(app)
        now = app.clock.now()
        page = app.queries.list(
            JobFilter(tenant=DEFAULT_TENANT, status=status, queue=queue, command=command),
            limit=limit,
            cursor=cursor,
            now=now,
        )
    if as_json:
        for row in page.items:
            click.echo(msgspec.json.encode(job_item(row, now)).decode())
    else:
        click.echo(f"{'id':<38}{'status':<11}{'queue':<9}{'att':>4}  {'dispatched':<20}command")
        for row in page.items:
            click.echo(
                f"{row.id!s:<38}{row.status:<11}{row.queue:<9}{row.attempts:>4}  "
                f"{_fmt_time(row.dispatched_at):<20}{row.command_line}"
            )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@jobs.command("show")
@click.argument("job_id", type=click.UUID)
def jobs_show(job_id: UUID) -> None:
    """Show one job with its timeline and comments."""
    with _open() as app:
        _catch_up(app)
        row = app.queries.get(DEFAULT_TENANT, job_id)
        if row is None:
            raise click.ClickException(f"job {job_id} not found (or not projected yet)")
        timeline = app.queries.timeline(job_id)
        comments = app.queries.comments(job_id)
    for key, value in _row_dict(row).items():
        if value not in (None, "") and key not in {"last_error_traceback", "output"}:
            click.echo(f"{key:>22}: {value}")
    if row.output:
        click.echo("\noutput:\n" + row.output.rstrip())
    if row.last_error_traceback:
        click.echo("\nlast error:\n" + row.last_error_traceback.rstrip())
    click.echo("\ntimeline:")
    for entry in timeline:
        who = f" by {entry.actor}" if entry.actor else ""
        click.echo(f"  {_fmt_time(entry.at)}  #{entry.position:<8} {entry.event}{who}")
    if comments:
        click.echo("\ncomments:")
        for comment in comments:
            click.echo(f"  {_fmt_time(comment.at)}  {comment.author}: {comment.text}")


@jobs.command("failed")
@_failed_filters
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def jobs_failed(limit: int, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """List failed jobs (not forgotten), newest first, with their last error."""
    with _open() as app:
        _catch_up(app)
        page = app.queries.failed(_failed_filter(filters), limit=limit, cursor=cursor)
    if as_json:
        for row in page.items:
            click.echo(msgspec.json.encode(failed_job(row)).decode())
    else:
        click.echo(f"{'id':<38}{'queue':<9}{'att':>4}  {'failed at':<20}error")
        for row in page.items:
            error = f"{row.last_error_type}: {row.last_error_message}".splitlines()[0][:60]
            click.echo(
                f"{row.id!s:<38}{row.queue:<9}{row.attempts:>4}  "
                f"{_fmt_time(row.failed_at):<20}{error}  [{row.command_line}]"
            )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@jobs.command("retry")
@click.argument("job_id", type=click.UUID)
def jobs_retry(job_id: UUID) -> None:
    """Give a failed job a new round of attempts."""
    with _open() as app:
        job = app.jobs.retry(job_id, tenant=DEFAULT_TENANT, by=_by())
    click.echo(f"job {job.id} retried: {job.status.value}")


@jobs.command("retry-failed")
@_failed_filters
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--page-size",
    type=click.IntRange(1, 5000),
    default=500,
    show_default=True,
    help="Jobs loaded and saved per transaction.",
)
def jobs_retry_failed(yes: bool, page_size: int, **filters: Any) -> None:
    """Retry every failed job matching the filters (all failed jobs when none is given)."""
    with _open() as app:
        _catch_up(app)
        flt = _failed_filter(filters)
        count = app.queries.count_failed(flt)
        if count == 0:
            click.echo("no failed jobs match")
            return
        if not yes:
            click.confirm(f"Retry {count} failed job{'s' if count != 1 else ''}?", abort=True)
        outcome = app.jobs.retry_failed(flt, by=_by(), page_size=page_size)
    click.echo(f"retried: {outcome.retried}, skipped: {outcome.skipped}")


@jobs.command("forget")
@click.argument("job_id", type=click.UUID)
def jobs_forget(job_id: UUID) -> None:
    """Take a failed job off the failed list (its history stays)."""
    with _open() as app:
        app.jobs.forget(job_id, tenant=DEFAULT_TENANT, by=_by())
    click.echo(f"job {job_id} forgotten")


@jobs.command("cancel")
@click.argument("job_id", type=click.UUID)
@click.option("--reason", default="", help="Why (shown on the job's timeline).")
def jobs_cancel(job_id: UUID, reason: str) -> None:
    """Cancel a waiting job now, or ask a running one to stop."""
    with _open() as app:
        job = app.jobs.cancel(job_id, tenant=DEFAULT_TENANT, by=_by(), reason=reason)
    status = "cancelling" if job.status is JobStatus.RUNNING else job.status.value
    click.echo(f"job {job.id}: {status}")
