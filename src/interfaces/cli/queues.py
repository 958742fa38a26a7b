"""`chronicle queues`: counts and activity per queue; pause and resume queues."""

from __future__ import annotations

import click
import msgspec

from domain.job import QUEUES
from domain.shared import DEFAULT_TENANT
from interfaces.cli.common import catch_up_if_embedded, cli_actor, open_chronicle
from interfaces.http.schemas.queues import PauseView, QueueOverview, TimingView, queue_overview


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.1f}ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms / 60_000:.1f}m"


def _timing(timing: TimingView) -> str:
    return f"{_duration(timing.avg)}/{_duration(timing.p95)}"


def _pause(what: str, pause: PauseView | None) -> str:
    if pause is None:
        return f"{what}: running"
    reason = f": {pause.reason}" if pause.reason else ""
    return f"{what}: paused by {pause.by} at {pause.at:%Y-%m-%d %H:%M:%S}{reason}"


def _table(overview: QueueOverview) -> list[str]:
    header = (
        f"{'queue':<9}{'state':<8}{'waiting':>8}{'delayed':>8}{'running':>8}{'succeeded':>10}"
        f"{'failed':>8}{'cancelled':>10}{'done/1h':>9}{'done/min':>9}"
        f"  {'wait avg/p95':<18}run avg/p95"
    )
    lines = [header]
    for name, q in overview.queues.items():
        # The current minute is still filling up: the last full one is the one before.
        lines.append(
            f"{name:<9}{'paused' if q.paused else 'running':<8}{q.waiting:>8}{q.delayed:>8}"
            f"{q.running:>8}{q.succeeded:>10}{q.failed:>8}{q.cancelled:>10}"
            f"{sum(q.processed_per_minute):>9}{q.processed_per_minute[-2]:>9}"
            f"  {_timing(q.wait_ms):<18}{_timing(q.run_ms)}"
        )
    lines.append(_pause("maintenance pause", overview.pause))
    lines.extend(_pause(name, q.pause) for name, q in overview.queues.items() if q.pause)
    return lines


@click.group()
def queues() -> None:
    """Counts and activity per queue; pause and resume queues."""


@queues.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/queues).")
def queues_stats(as_json: bool) -> None:
    """Jobs per queue and status, jobs done and wait/run times over the last hour, pauses."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        now = app.clock.now()
        overview = queue_overview(
            app.queries.queue_stats(DEFAULT_TENANT, now),
            app.queue_metrics.activity(DEFAULT_TENANT, now),
            app.queue_pauses.pauses(DEFAULT_TENANT),
        )
    if as_json:
        click.echo(msgspec.json.encode(overview).decode())
        return
    for line in _table(overview):
        click.echo(line)


@queues.command("pause")
@click.argument("queue", required=False, type=click.Choice(QUEUES))
@click.option("--reason", default="", help="Why, shown to other operators.")
def queues_pause(queue: str | None, reason: str) -> None:
    """Pause QUEUE, or every queue (maintenance) when QUEUE is omitted.

    Workers take no new job from it within about a second; its jobs stay waiting.
    """
    with open_chronicle() as app:
        app.queue_control.pause(tenant=DEFAULT_TENANT, queue=queue, by=cli_actor(), reason=reason)
        # The answer waits until every live worker acts on the pause, as the API's does.
        pending = app.queue_control.wait_until_held(app.log.head())
    click.echo(f"paused {queue}" if queue else "paused every queue (maintenance)")
    if pending:
        click.echo(
            "not yet confirmed by worker(s) "
            + ", ".join(pending)
            + ": they may start one more job",
            err=True,
        )


@queues.command("resume")
@click.argument("queue", required=False, type=click.Choice(QUEUES))
def queues_resume(queue: str | None) -> None:
    """Resume QUEUE, or lift the maintenance pause when QUEUE is omitted."""
    with open_chronicle() as app:
        app.queue_control.resume(tenant=DEFAULT_TENANT, queue=queue, by=cli_actor())
    click.echo(f"resumed {queue}" if queue else "lifted the maintenance pause")
