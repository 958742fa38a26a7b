"""`chronicle jobs`: list and inspect jobs; the failed-jobs toolbox (retry, forget, cancel)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import click
import msgspec

from application.jobs import DispatchRequest
from application.views.jobs import FailedJobFilter, JobFilter, JobRow
from domain.job import QUEUES, JobStatus
from domain.shared import DEFAULT_TENANT
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle
from interfaces.http.schemas.jobs import failed_job, job_item

F = TypeVar("F", bound=Callable[..., Any])

STATUS_CHOICES = [s.value for s in JobStatus] + ["delayed", "ready"]


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
    with open_chronicle() as app:
        catch_up_if_embedded(app)
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
                f"{fmt_time(row.dispatched_at):<20}{row.command_line}"
            )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@jobs.command("show")
@click.argument("job_id", type=click.UUID)
def jobs_show(job_id: UUID) -> None:
    """Show one job with its timeline and comments."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        job = app.job_reads.get(DEFAULT_TENANT, job_id).value
        comments = app.job_reads.comments(DEFAULT_TENANT, job_id)
    row, timeline = job.row, job.timeline
    for key, value in _row_dict(row).items():
        if value not in (None, "") and key not in {"last_error_traceback", "output", "version"}:
            click.echo(f"{key:>22}: {value}")
    if row.output:
        click.echo("\noutput:\n" + row.output.rstrip())
    if row.last_error_traceback:
        click.echo("\nlast error:\n" + row.last_error_traceback.rstrip())
    click.echo("\ntimeline:")
    for entry in timeline:
        who = f" by {entry.actor}" if entry.actor else ""
        click.echo(f"  {fmt_time(entry.at)}  #{entry.position:<8} {entry.event}{who}")
    if comments:
        click.echo("\ncomments:")
        for comment in comments:
            click.echo(f"  {fmt_time(comment.at)}  {comment.author}: {comment.text}")


@jobs.command("failed")
@_failed_filters
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def jobs_failed(limit: int, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """List failed jobs (not forgotten), newest first, with their last error."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
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
                f"{fmt_time(row.failed_at):<20}{error}  [{row.command_line}]"
            )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@jobs.command("retry")
@click.argument("job_id", type=click.UUID)
def jobs_retry(job_id: UUID) -> None:
    """Give a failed job a new round of attempts."""
    with open_chronicle() as app:
        job = app.jobs.retry(job_id, tenant=DEFAULT_TENANT, by=cli_actor())
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
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        flt = _failed_filter(filters)
        count = app.queries.count_failed(flt)
        if count == 0:
            click.echo("no failed jobs match")
            return
        if not yes:
            click.confirm(f"Retry {count} failed job{'s' if count != 1 else ''}?", abort=True)
        outcome = app.jobs.retry_failed(flt, by=cli_actor(), page_size=page_size)
    click.echo(f"retried: {outcome.retried}, skipped: {outcome.skipped}")


@jobs.command("forget")
@click.argument("job_id", type=click.UUID)
def jobs_forget(job_id: UUID) -> None:
    """Take a failed job off the failed list (its history stays)."""
    with open_chronicle() as app:
        app.jobs.forget(job_id, tenant=DEFAULT_TENANT, by=cli_actor())
    click.echo(f"job {job_id} forgotten")


@jobs.command("cancel")
@click.argument("job_id", type=click.UUID)
@click.option("--reason", default="", help="Why (shown on the job's timeline).")
def jobs_cancel(job_id: UUID, reason: str) -> None:
    """Cancel a waiting job now, or ask a running one to stop."""
    with open_chronicle() as app:
        job = app.jobs.cancel(job_id, tenant=DEFAULT_TENANT, by=cli_actor(), reason=reason)
    status = "cancelling" if job.status is JobStatus.RUNNING else job.status.value
    click.echo(f"job {job.id}: {status}")


@click.command()
@click.argument("command_line")
@click.option("--queue", type=click.Choice(QUEUES), default="default", show_default=True)
@click.option("--delay", "delay_seconds", type=click.FloatRange(min=0), default=0.0)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--timeout", "timeout_seconds", type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--idempotency-key",
    help="Run again with the same key (and arguments), dispatch nothing and print the first id.",
)
def dispatch(
    command_line: str,
    queue: str,
    delay_seconds: float,
    max_attempts: int,
    timeout_seconds: float | None,
    idempotency_key: str | None,
) -> None:
    """Dispatch a job, e.g. chronicle dispatch "demo:echo hello --upper"."""
    with open_chronicle() as app:
        [job_id] = app.jobs.dispatch_many(
            [
                DispatchRequest(
                    command_line=command_line,
                    queue=queue,
                    delay_seconds=delay_seconds,
                    max_attempts=max_attempts,
                    timeout_seconds=timeout_seconds,
                    requested_by=cli_actor(),
                )
            ],
            idempotency_key=idempotency_key,
        )
    click.echo(str(job_id))
