"""`chronicle batches`: create, list, show, cancel batches and retry their failed jobs."""

from __future__ import annotations

from uuid import UUID

import click
import msgspec

from application.batches import BatchRequest
from application.jobs import DispatchRequest
from domain.job import QUEUES
from domain.shared import DEFAULT_TENANT
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle
from interfaces.http.schemas.batches import BatchView, batch_view


def _state(view: BatchView) -> str:
    if view.cancelled:
        return "cancelled"
    return "finished" if view.finished else "running"


def _print(view: BatchView) -> None:
    click.echo(f"{'id':>16}: {view.id}")
    click.echo(f"{'name':>16}: {view.name}")
    click.echo(f"{'state':>16}: {_state(view)}")
    click.echo(
        f"{'progress':>16}: {view.progress}% ({view.processed} of {view.total} processed,"
        f" {view.pending} pending)"
    )
    click.echo(
        f"{'jobs':>16}: {view.succeeded} succeeded, {view.failed} failed,"
        f" {view.cancelled_jobs} cancelled"
    )
    click.echo(f"{'allow failures':>16}: {'yes' if view.allow_failures else 'no'}")
    click.echo(f"{'created':>16}: {fmt_time(view.created_at)} by {view.created_by}")
    if view.finished_at:
        click.echo(f"{'finished':>16}: {fmt_time(view.finished_at)}")
    if view.cancelled:
        reason = f": {view.cancel_reason}" if view.cancel_reason else ""
        click.echo(
            f"{'cancelled':>16}: {fmt_time(view.cancelled_at)} by {view.cancelled_by}{reason}"
        )
    for kind, callback in view.callbacks.items():
        job = f"job {callback.job_id}" if callback.job_id else "not dispatched"
        click.echo(f"{kind:>16}: {callback.command_line} ({job})")


@click.group()
def batches() -> None:
    """Batches of jobs with then/catch/finally callbacks (Laravel's Bus::batch)."""


@batches.command("create")
@click.argument("name")
@click.argument("command_lines", nargs=-1, required=True)
@click.option("--allow-failures", is_flag=True, help="A failed job does not cancel the batch.")
@click.option("--then", "then", help="Command line run once every job succeeded.")
@click.option("--catch", "catch", help="Command line run once on the first failed job.")
@click.option("--finally", "finally_", help="Command line run once every job has finished.")
@click.option("--queue", type=click.Choice(QUEUES), default="default", show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option(
    "--idempotency-key",
    help="Run again with the same key (and arguments), create nothing and print the first id.",
)
def batches_create(
    name: str,
    command_lines: tuple[str, ...],
    allow_failures: bool,
    then: str | None,
    catch: str | None,
    finally_: str | None,
    queue: str,
    max_attempts: int,
    idempotency_key: str | None,
) -> None:
    """Create a batch NAME of one job per COMMAND_LINE, and print its id.

    \b
    Example:
      chronicle batches create import "demo:echo one" "demo:echo two" \\
          --then "demo:echo done" --finally "demo:echo cleanup"
    """
    with open_chronicle() as app:
        batch_id = app.batches.create(
            BatchRequest(
                name=name,
                jobs=[
                    DispatchRequest(command_line=line, queue=queue, max_attempts=max_attempts)
                    for line in command_lines
                ],
                allow_failures=allow_failures,
                then=then,
                catch=catch,
                finally_=finally_,
                tenant=DEFAULT_TENANT,
                by=cli_actor(),
            ),
            idempotency_key=idempotency_key,
        )
    click.echo(str(batch_id))


@batches.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def batches_list(limit: int, cursor: str | None, as_json: bool) -> None:
    """List batches, newest first, with their progress."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows, next_cursor = app.batch_queries.list_batches(
            DEFAULT_TENANT, limit=limit, cursor=cursor
        )
    views = [batch_view(row) for row in rows]
    if as_json:
        for view in views:
            click.echo(msgspec.json.encode(view).decode())
    else:
        click.echo(f"{'id':<38}{'state':<11}{'progress':>9}{'jobs':>8}{'failed':>8}  name")
        for view in views:
            click.echo(
                f"{view.id!s:<38}{_state(view):<11}{view.progress:>8}%{view.total:>8}"
                f"{view.failed:>8}  {view.name}"
            )
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}", err=True)


@batches.command("show")
@click.argument("batch_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the API answers).")
def batches_show(batch_id: UUID, as_json: bool) -> None:
    """Show one batch: counts, progress, state and callbacks."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        current = app.batch_reads.get(DEFAULT_TENANT, batch_id)
    view = batch_view(current.value, projected=current.projected)
    if as_json:
        click.echo(msgspec.json.encode(view).decode())
    else:
        _print(view)


@batches.command("cancel")
@click.argument("batch_id", type=click.UUID)
@click.option("--reason", default="", help="Why (recorded on the batch and its jobs).")
def batches_cancel(batch_id: UUID, reason: str) -> None:
    """Cancel a batch: its waiting jobs are cancelled, its running ones asked to stop."""
    with open_chronicle() as app:
        app.batches.cancel(batch_id, tenant=DEFAULT_TENANT, by=cli_actor(), reason=reason)
        catch_up_if_embedded(app, batch_process=True)
        batch = app.batch_reads.get(DEFAULT_TENANT, batch_id).value
    click.echo(
        f"cancelled {batch_id}: {batch.cancelled_jobs} job(s) cancelled, {batch.pending} still"
        " running"
    )


@batches.command("retry-failed")
@click.argument("batch_id", type=click.UUID)
def batches_retry_failed(batch_id: UUID) -> None:
    """Retry the failed jobs of a batch."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        retried = app.batches.retry_failed(batch_id, tenant=DEFAULT_TENANT, by=cli_actor())
    click.echo(f"retried {len(retried)} failed job(s) of batch {batch_id}")
