"""Request and response bodies of the schedules API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from application.frequencies import next_due
from application.ports import CronCalculator
from application.reads.schedules import ScheduleChange
from application.views.schedules import RunRow, ScheduleRow
from domain.frequency import Frequency
from domain.schedule import MAX_DESCRIPTION, MAX_NAME, MissedRuns
from interfaces.http.schemas.common import (
    MAX_ATTEMPTS,
    MAX_TIMEOUT,
    NOT_BLANK,
    QUEUE_RULE,
    local_iso,
    rule,
    schedule_path,
    utc,
    utc_or_none,
)
from interfaces.http.schemas.frequencies import (
    EXPRESSION_RULE,
    HELPERS_RULE,
    TIMEZONE_RULE,
    HelperCallBody,
)

_MISSED_RUNS = rule(
    "Ticks missed while no scheduler ran: `skip` or `run_once`.",
    enum=[policy.value for policy in MissedRuns],
)
_SCHEDULE_NAME = rule(
    f"A name for people, 1 to {MAX_NAME} characters (not blank).",
    min_length=1,
    max_length=MAX_NAME,
    pattern=NOT_BLANK,
)
_DESCRIPTION = rule(
    f"What the schedule is for, at most {MAX_DESCRIPTION} characters.", max_length=MAX_DESCRIPTION
)
_SCHEDULE_ATTEMPTS = rule("Attempts of each job (1 to 100).", **MAX_ATTEMPTS)
_TIMEOUT = rule("Time limit of one attempt (up to 7 days).", **MAX_TIMEOUT)


class CreateSchedule(Struct, forbid_unknown_fields=True, kw_only=True):
    """A new schedule: what to run (a command line or command) and when (cron or helpers)."""

    name: Annotated[str, _SCHEDULE_NAME]
    description: Annotated[str, _DESCRIPTION] = ""
    command_line: Annotated[
        str | None,
        Meta(description="A whole command line instead of command/arguments/options."),
    ] = None
    command: Annotated[str | None, Meta(description="Registered command name.")] = None
    arguments: Annotated[
        list[Any] | dict[str, Any] | None,
        Meta(description="Arguments by position (list) or by name (object)."),
    ] = None
    options: Annotated[dict[str, Any] | None, Meta(description="Options by name.")] = None
    expression: Annotated[str | None, EXPRESSION_RULE] = None
    helpers: Annotated[list[HelperCallBody] | None, HELPERS_RULE] = None
    timezone: Annotated[str, TIMEZONE_RULE] = "UTC"
    queue: Annotated[str, QUEUE_RULE] = "default"
    max_attempts: Annotated[int, _SCHEDULE_ATTEMPTS] = 3
    timeout_seconds: Annotated[float | None, _TIMEOUT] = None
    without_overlapping: Annotated[
        bool, Meta(description="Skip a tick while the previous run is still going.")
    ] = False
    missed_runs: Annotated[str, _MISSED_RUNS] = "skip"
    active: Annotated[bool, Meta(description="False creates the schedule paused.")] = True


class EditSchedule(Struct, forbid_unknown_fields=True, kw_only=True):
    """The settings to change; those left out keep their value."""

    name: Annotated[str | UnsetType, _SCHEDULE_NAME] = UNSET
    description: Annotated[str | UnsetType, _DESCRIPTION] = UNSET
    command_line: Annotated[
        str | UnsetType, Meta(description="A new command line (or command/arguments/options).")
    ] = UNSET
    command: str | UnsetType = UNSET
    arguments: list[Any] | dict[str, Any] | UnsetType | None = UNSET
    options: dict[str, Any] | UnsetType | None = UNSET
    expression: Annotated[str | UnsetType, EXPRESSION_RULE] = UNSET
    helpers: Annotated[list[HelperCallBody] | UnsetType, HELPERS_RULE] = UNSET
    timezone: Annotated[str | UnsetType, TIMEZONE_RULE] = UNSET
    queue: Annotated[str | UnsetType, QUEUE_RULE] = UNSET
    max_attempts: Annotated[int | UnsetType, _SCHEDULE_ATTEMPTS] = UNSET
    timeout_seconds: Annotated[float | UnsetType | None, _TIMEOUT] = UNSET
    without_overlapping: bool | UnsetType = UNSET
    missed_runs: Annotated[str | UnsetType, _MISSED_RUNS] = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields given, as plain values (helpers as `{name, args}` dicts)."""
        given = {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if getattr(self, name) is not UNSET
        }
        if "helpers" in given:
            given["helpers"] = [msgspec.structs.asdict(call) for call in given["helpers"]]
        return given


class ScheduleLinks(Struct, kw_only=True):
    """Where to find a schedule, its runs and its comments."""

    self: str
    runs: str
    comments: str


class LastRun(Struct, kw_only=True):
    """The newest tick seen (`due_at`) and the job a schedule last started (`job_id`, `at`)."""

    due_at: datetime | None
    job_id: UUID | None
    at: datetime | None


class ScheduleView(Struct, kw_only=True):
    """A schedule and its next due time (UTC, and local with offset; null while paused)."""

    id: UUID
    seq: int | None
    tenant: str
    name: str
    description: str
    command: str
    command_line: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    frequency: dict[str, Any]
    expression: str
    description_human: str
    timezone: str
    queue: str
    max_attempts: int
    timeout_seconds: float | None
    without_overlapping: bool
    missed_runs: str
    active: bool
    paused_at: datetime | None
    next_due_at: datetime | None
    next_due_local: str | None
    next_due_dst: Annotated[
        str | None, Meta(description="`shifted_after_gap`, `first_occurrence`, ... or null.")
    ]
    last_run: LastRun | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    projected: Annotated[
        bool, Meta(description="False while the read model has not caught up with a change.")
    ]
    links: ScheduleLinks
    history: Annotated[
        list[ScheduleHistoryEntry] | None,
        Meta(description="Every change to the schedule and who made it (detail view only)."),
    ] = None


class ScheduleHistoryEntry(Struct, kw_only=True):
    """One event of a schedule's own life: created, edited (what changed), paused, …"""

    version: int
    event: str
    at: datetime
    by: str
    changes: dict[str, Any] | None = None


class SchedulePage(Struct, kw_only=True):
    """A page of schedules, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[ScheduleView]
    next_cursor: str | None


class RunItem(Struct, kw_only=True):
    """One tick of a schedule: the job it started and how that went, or why it was skipped."""

    tick_id: UUID
    due_at: datetime
    triggered_at: datetime | None
    late_ms: Annotated[
        float | None,
        Meta(description="How late the tick fired (triggered_at - due_at); null if manual."),
    ]
    manual: bool
    job_id: UUID | None
    status: str
    attempts: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    outcome: str | None
    error: str | None
    output: str | None
    skip_reason: str | None
    skip_detail: str | None
    skip_count: int
    dst: str | None
    triggered_by: str | None


class RunPage(Struct, kw_only=True):
    """A page of a schedule's runs, newest first."""

    items: list[RunItem]
    next_cursor: str | None


class RunNowLinks(Struct, kw_only=True):
    """Where to follow the job a manual run started."""

    job: str


class RunNowAccepted(Struct, kw_only=True):
    """The job a manual run started."""

    job_id: UUID
    links: RunNowLinks


def schedule_view(
    row: ScheduleRow, now: datetime, cron: CronCalculator, *, projected: bool
) -> ScheduleView:
    frequency = Frequency.from_dict(row.frequency)
    tick = next_due(
        row.frequency,
        row.timezone,
        active=row.active,
        last_due_at=row.last_due_at,
        now=now,
        cron=cron,
    )
    seen = (row.last_due_at, row.last_job_id, row.last_run_at)
    return ScheduleView(
        id=row.id,
        seq=row.seq if projected else None,
        tenant=row.tenant,
        name=row.name,
        description=row.description,
        command=row.command,
        command_line=row.command_line,
        arguments=row.arguments,
        options=row.options,
        frequency=row.frequency,
        expression=frequency.expression,
        description_human=frequency.describe(),
        timezone=row.timezone,
        queue=row.queue,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        without_overlapping=row.without_overlapping,
        missed_runs=row.missed_runs,
        active=row.active,
        paused_at=utc_or_none(row.paused_at),
        next_due_at=utc(tick.due_at) if tick else None,
        next_due_local=local_iso(tick.due_at, row.timezone) if tick else None,
        next_due_dst=tick.dst if tick else None,
        last_run=None
        if seen == (None, None, None)
        else LastRun(
            due_at=utc_or_none(row.last_due_at),
            job_id=row.last_job_id,
            at=utc_or_none(row.last_run_at),
        ),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        version=row.version,
        projected=projected,
        links=ScheduleLinks(
            self=schedule_path(row.id),
            runs=f"{schedule_path(row.id)}/runs",
            comments=f"{schedule_path(row.id)}/comments",
        ),
    )


def history_entry(change: ScheduleChange) -> ScheduleHistoryEntry:
    return ScheduleHistoryEntry(
        version=change.version,
        event=change.event,
        at=change.at,
        by=change.by,
        changes=change.changes,
    )


def run_item(row: RunRow) -> RunItem:
    return RunItem(
        tick_id=row.id,
        due_at=utc(row.due_at),
        triggered_at=utc_or_none(row.triggered_at),
        late_ms=row.late_ms,
        manual=row.manual,
        job_id=row.job_id,
        status=row.status,
        attempts=row.attempts,
        started_at=utc_or_none(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        duration_ms=row.duration_ms,
        outcome=row.outcome,
        error=row.error,
        output=row.output,
        skip_reason=row.skip_reason,
        skip_detail=row.skip_detail,
        skip_count=row.skip_count,
        dst=row.dst,
        triggered_by=row.triggered_by,
    )
