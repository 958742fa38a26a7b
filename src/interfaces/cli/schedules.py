"""`chronicle schedules`: create, list, show, edit, pause, resume, run and delete schedules."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import click
import msgspec

from application.frequencies import next_due
from application.schedules import ScheduleRequest
from domain.frequency import Frequency
from domain.job import QUEUES
from domain.schedule import MissedRuns, Schedule
from domain.shared import DEFAULT_TENANT
from interfaces.bootstrap import Chronicle
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle
from interfaces.http.schemas.common import local_iso
from interfaces.http.schemas.schedules import run_item, schedule_view

F = TypeVar("F", bound=Callable[..., Any])

MISSED_RUNS = [m.value for m in MissedRuns]
_INTEGER = re.compile(r"[+-]?\d+")

EVERY_HELP = (
    "A helper, NAME or NAME:ARG,ARG,... (e.g. weekdays, dailyAt:13:00, twiceDailyAt:1,13). "
    "Repeat it to chain helpers, applied in order."
)


def _fmt_late(late_ms: float | None) -> str:
    """How late a tick fired: `-` when it did not (or ran by hand), else ms, s or min."""
    if late_ms is None:
        return "-"
    if late_ms < 1000:
        return f"{late_ms:.0f} ms"
    if late_ms < 60_000:
        return f"{late_ms / 1000:.1f} s"
    return f"{late_ms / 60_000:.1f} min"


def parse_every(values: tuple[str, ...]) -> list[dict[str, Any]]:
    """`--every` values as helper calls: `dailyAt:13:00` → name `dailyAt`, args `["13:00"]`."""
    helpers = []
    for value in values:
        name, _, rest = value.partition(":")
        if not name.strip():
            raise click.BadParameter(f"{value!r}: give a helper name", param_hint="--every")
        args: list[Any] = [
            int(arg) if _INTEGER.fullmatch(arg) else arg
            for arg in (item.strip() for item in rest.split(","))
            if rest.strip()
        ]
        helpers.append({"name": name.strip(), "args": args})
    return helpers


def _frequency(expression: str | None, every: tuple[str, ...], *, required: bool) -> dict[str, Any]:
    if expression is not None and every:
        raise click.UsageError("give --cron or --every, not both")
    if expression is not None:
        return {"expression": expression}
    if every:
        return {"helpers": parse_every(every)}
    if required:
        raise click.UsageError("give the frequency: --cron EXPR or --every HELPER (repeatable)")
    return {}


def _frequency_options(func: F) -> F:
    func = click.option(
        "--every", "every", multiple=True, metavar="HELPER[:ARGS]", help=EVERY_HELP
    )(func)
    return click.option(
        "--cron",
        "expression",
        metavar="EXPR",
        help="A cron expression: 5 fields, or 6 with seconds first ('*/10 * * * * *').",
    )(func)


@click.group()
def schedules() -> None:
    """Create and manage schedules (the scheduler process turns them into jobs)."""


@schedules.command("add")
@click.argument("name")
@click.argument("command_line")
@_frequency_options
@click.option(
    "--timezone", default="UTC", show_default=True, help="IANA timezone, e.g. Europe/Rome."
)
@click.option("--description", default="", help="What the schedule is for.")
@click.option("--queue", type=click.Choice(QUEUES), default="default", show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Time limit of one attempt, in seconds.",
)
@click.option("--without-overlapping", is_flag=True, help="Skip a tick while a run is going.")
@click.option(
    "--missed-runs",
    type=click.Choice(MISSED_RUNS),
    default=MissedRuns.SKIP.value,
    show_default=True,
    help="Ticks missed while no scheduler ran: skip them or run once.",
)
@click.option("--paused", is_flag=True, help="Create it paused.")
def schedules_add(
    name: str,
    command_line: str,
    expression: str | None,
    every: tuple[str, ...],
    timezone: str,
    description: str,
    queue: str,
    max_attempts: int,
    timeout_seconds: float | None,
    without_overlapping: bool,
    missed_runs: str,
    paused: bool,
) -> None:
    """Create a schedule that runs COMMAND_LINE, and print its id.

    Give the frequency as a cron expression (--cron, 5 fields or 6 with seconds first) or as a
    chain of helpers (--every, repeatable, applied in order, each setting only its own fields).
    Each --every is NAME or NAME:ARG,ARG,...: the arguments are split on commas after the first
    colon and whole numbers become integers, so `dailyAt:13:00` is dailyAt("13:00") and
    `twiceDailyAt:1,13` is twiceDailyAt(1, 13). GET /api/frequencies lists the helpers.

    \b
    Examples:
      chronicle schedules add report "demo:echo report" \\
          --every weekdays --every dailyAt:13:00 --timezone Europe/Rome
      chronicle schedules add office "demo:noop" --every hourly --every between:9:00,17:00
      chronicle schedules add ping "demo:noop" --cron "*/30 * * * * *"
    """
    frequency = _frequency(expression, every, required=True)
    with open_chronicle() as app:
        schedule_id = app.schedules.create(
            ScheduleRequest(
                name=name,
                command_line=command_line,
                expression=frequency.get("expression"),
                helpers=frequency.get("helpers"),
                timezone=timezone,
                description=description,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout_seconds,
                without_overlapping=without_overlapping,
                missed_runs=missed_runs,
                active=not paused,
                tenant=DEFAULT_TENANT,
                by=cli_actor(),
            )
        )
    click.echo(str(schedule_id))


@schedules.command("edit")
@click.argument("schedule_id", type=click.UUID)
@click.option("--name")
@click.option("--description")
@click.option("--command-line", help="A new command line.")
@_frequency_options
@click.option("--timezone", help="IANA timezone, e.g. Europe/Rome.")
@click.option("--queue", type=click.Choice(QUEUES))
@click.option("--max-attempts", type=click.IntRange(1, 100))
@click.option("--timeout", "timeout_seconds", type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--without-overlapping/--allow-overlapping",
    "without_overlapping",
    default=None,
    help="Skip ticks while a run is going, or not.",
)
@click.option("--missed-runs", type=click.Choice(MISSED_RUNS))
def schedules_edit(
    schedule_id: UUID,
    name: str | None,
    description: str | None,
    command_line: str | None,
    expression: str | None,
    every: tuple[str, ...],
    timezone: str | None,
    queue: str | None,
    max_attempts: int | None,
    timeout_seconds: float | None,
    without_overlapping: bool | None,
    missed_runs: str | None,
) -> None:
    """Change settings of a schedule; those not given keep their value."""
    given = {
        "name": name,
        "description": description,
        "command_line": command_line,
        "timezone": timezone,
        "queue": queue,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "without_overlapping": without_overlapping,
        "missed_runs": missed_runs,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    changes.update(_frequency(expression, every, required=False))
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    with open_chronicle() as app:
        schedule = app.schedules.edit(schedule_id, changes, tenant=DEFAULT_TENANT, by=cli_actor())
        click.echo(_summary(app, schedule))


def _summary(app: Chronicle, schedule: Schedule) -> str:
    """One line: the schedule, its state, its frequency and its next run."""
    frequency = Frequency.from_dict(schedule.frequency).describe()
    tick = next_due(
        schedule.frequency,
        schedule.timezone,
        active=schedule.active,
        last_due_at=None,
        now=app.clock.now(),
        cron=app.cron,
    )
    when = f"next run {local_iso(tick.due_at, schedule.timezone)}" if tick else "paused"
    return f"{schedule.id} {schedule.name!r}: {frequency} ({schedule.timezone}), {when}"


@schedules.command("list")
@click.option("--active/--paused", "active", default=None, help="Only active or paused ones.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def schedules_list(active: bool | None, limit: int, cursor: str | None, as_json: bool) -> None:
    """List schedules, newest first, with their next run."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows, next_cursor = app.schedule_queries.list_schedules(
            DEFAULT_TENANT, active=active, limit=limit, cursor=cursor
        )
        now = app.clock.now()
        views = [schedule_view(row, now, app.cron, projected=True) for row in rows]
    if as_json:
        for view in views:
            click.echo(msgspec.json.encode(view).decode())
    else:
        click.echo(f"{'id':<38}{'state':<8}{'next run':<27}{'name':<24}frequency")
        for view in views:
            click.echo(
                f"{view.id!s:<38}{'active' if view.active else 'paused':<8}"
                f"{view.next_due_local or '-':<27}{view.name[:22]:<24}{view.description_human}"
            )
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}", err=True)


@schedules.command("show")
@click.argument("schedule_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the API answers).")
def schedules_show(schedule_id: UUID, as_json: bool) -> None:
    """Show one schedule: settings, frequency, next and last run, comments."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        current = app.schedule_reads.get(DEFAULT_TENANT, schedule_id)
        view = schedule_view(current.value, app.clock.now(), app.cron, projected=current.projected)
        comments = app.schedule_reads.comments(DEFAULT_TENANT, schedule_id)
    if as_json:
        click.echo(msgspec.json.encode(view).decode())
        return
    fields = msgspec.structs.asdict(view)
    for key in ("seq", "tenant", "links", "projected", "frequency", "last_run"):
        fields.pop(key)
    for key, value in fields.items():
        if value not in (None, "", {}):
            click.echo(f"{key:>20}: {value}")
    if view.last_run is not None:
        run = view.last_run
        click.echo(f"{'last run':>20}: due {fmt_time(run.due_at)}, job {run.job_id or '-'}")
    if comments:
        click.echo("\ncomments:")
        for comment in comments:
            click.echo(f"  {fmt_time(comment.at)}  {comment.author}: {comment.text}")


@schedules.command("runs")
@click.argument("schedule_id", type=click.UUID)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def schedules_runs(schedule_id: UUID, limit: int, cursor: str | None, as_json: bool) -> None:
    """List a schedule's runs (and skipped ticks), newest first."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows, next_cursor = app.schedule_reads.runs(
            DEFAULT_TENANT, schedule_id, limit=limit, cursor=cursor
        )
    items = [run_item(row) for row in rows]
    if as_json:
        for item in items:
            click.echo(msgspec.json.encode(item).decode())
    else:
        click.echo(f"{'due':<20}{'late':<10}{'status':<11}{'kind':<8}{'job':<38}detail")
        for item in items:
            detail = (
                f"{item.skip_reason}: {item.skip_detail}" if item.skip_reason else item.error or ""
            )
            click.echo(
                f"{fmt_time(item.due_at):<20}{_fmt_late(item.late_ms):<10}{item.status:<11}"
                f"{'manual' if item.manual else 'tick':<8}{item.job_id or '-'!s:<38}{detail}"
            )
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}", err=True)


@schedules.command("pause")
@click.argument("schedule_id", type=click.UUID)
def schedules_pause(schedule_id: UUID) -> None:
    """Pause a schedule: its ticks are skipped until it is resumed."""
    with open_chronicle() as app:
        schedule = app.schedules.pause(schedule_id, tenant=DEFAULT_TENANT, by=cli_actor())
        click.echo(_summary(app, schedule))


@schedules.command("resume")
@click.argument("schedule_id", type=click.UUID)
def schedules_resume(schedule_id: UUID) -> None:
    """Resume a paused schedule."""
    with open_chronicle() as app:
        schedule = app.schedules.resume(schedule_id, tenant=DEFAULT_TENANT, by=cli_actor())
        click.echo(_summary(app, schedule))


@schedules.command("run")
@click.argument("schedule_id", type=click.UUID)
def schedules_run(schedule_id: UUID) -> None:
    """Run a schedule's command now (a manual run) and print the job id."""
    with open_chronicle() as app:
        job_id = app.schedules.run_now(schedule_id, tenant=DEFAULT_TENANT, by=cli_actor())
    click.echo(str(job_id))


@schedules.command("delete")
@click.argument("schedule_id", type=click.UUID)
def schedules_delete(schedule_id: UUID) -> None:
    """Delete a schedule."""
    with open_chronicle() as app:
        app.schedules.delete(schedule_id, tenant=DEFAULT_TENANT, by=cli_actor())
    click.echo(f"deleted {schedule_id}")
