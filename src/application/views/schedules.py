"""Schedules read model (list, detail, last run, comments) and the runs of each schedule."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.job import Job
from domain.schedule import Schedule, SkippedTick, TriggeredTick

SCHEDULE_EVENTS = (
    Schedule.Created,
    Schedule.Edited,
    Schedule.Paused,
    Schedule.Resumed,
    Schedule.Deleted,
    Schedule.CommentAdded,
)
TICK_EVENTS = (TriggeredTick.Triggered, SkippedTick.Skipped)


class SchedulesWriter(Protocol):
    def insert_schedule(self, row: dict[str, Any]) -> None: ...
    def update_schedule(self, schedule_id: UUID, changes: dict[str, Any]) -> None: ...
    def record_due(self, schedule_id: UUID, due_at: datetime, changes: dict[str, Any]) -> None:
        """Apply `changes` when `due_at` is the newest tick seen for the schedule."""
        ...

    def insert_comment(self, row: dict[str, Any]) -> None: ...


class SchedulesProjection:
    """One row per schedule, with its last tick and last job, and the comments."""

    name = "schedules"
    topics = tuple(topic(cls) for cls in (*SCHEDULE_EVENTS, *TICK_EVENTS))

    def process(self, events: Sequence[LoggedEvent], writer: SchedulesWriter) -> None:  # noqa: C901 - one branch per event type
        for logged in events:
            event = logged.event
            if isinstance(event, Schedule.Created):
                writer.insert_schedule(
                    {
                        "id": event.originator_id,
                        "seq": logged.position,
                        "tenant": event.tenant,
                        "name": event.name,
                        "description": event.description,
                        "command": event.command,
                        "command_line": event.command_line,
                        "arguments": json.dumps(event.arguments),
                        "options": json.dumps(event.options),
                        "frequency": json.dumps(event.frequency),
                        "timezone": event.timezone,
                        "queue": event.queue,
                        "max_attempts": event.max_attempts,
                        "timeout_seconds": event.timeout_seconds,
                        "without_overlapping": event.without_overlapping,
                        "missed_runs": event.missed_runs,
                        "active": True,
                        "created_by": event.by,
                        "created_at": event.at,
                        "updated_at": event.at,
                        "version": event.originator_version,
                    }
                )
            elif isinstance(event, Schedule.Edited):
                changes: dict[str, Any] = {}
                for key, change in event.changes.items():
                    value = change["to"]
                    changes[key] = (
                        json.dumps(value) if key in {"arguments", "options", "frequency"} else value
                    )
                writer.update_schedule(
                    event.originator_id,
                    {**changes, "updated_at": event.at, "version": event.originator_version},
                )
            elif isinstance(event, Schedule.Paused | Schedule.Resumed):
                writer.update_schedule(
                    event.originator_id,
                    {
                        "active": isinstance(event, Schedule.Resumed),
                        "paused_at": event.at if isinstance(event, Schedule.Paused) else None,
                        "updated_at": event.at,
                        "version": event.originator_version,
                    },
                )
            elif isinstance(event, Schedule.Deleted):
                writer.update_schedule(
                    event.originator_id,
                    {
                        "active": False,
                        "deleted": True,
                        "updated_at": event.at,
                        "version": event.originator_version,
                    },
                )
            elif isinstance(event, Schedule.CommentAdded):
                writer.insert_comment(
                    {
                        "id": event.comment_id,
                        "schedule_id": event.originator_id,
                        "author": event.author,
                        "text": event.text,
                        "at": event.at,
                        "position": logged.position,
                    }
                )
                # The row's version is the schedule's, comments included: a read compares it
                # with the version in the event store (see `application.reads`).
                writer.update_schedule(event.originator_id, {"version": event.originator_version})
            elif isinstance(event, TriggeredTick.Triggered):
                if not event.manual:
                    writer.record_due(event.schedule_id, event.due_at, {})
                writer.update_schedule(
                    event.schedule_id, {"last_job_id": str(event.job_id), "last_run_at": event.at}
                )
            elif isinstance(event, SkippedTick.Skipped):
                writer.record_due(event.schedule_id, event.due_at, {})


@dataclass(frozen=True)
class ScheduleRow:
    """A schedule as the read model holds it."""

    id: UUID
    seq: int
    tenant: str
    name: str
    description: str
    command: str
    command_line: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    frequency: dict[str, Any]
    timezone: str
    queue: str
    max_attempts: int
    timeout_seconds: float | None
    without_overlapping: bool
    missed_runs: str
    active: bool
    deleted: bool
    paused_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_due_at: datetime | None
    last_job_id: UUID | None
    last_run_at: datetime | None
    #: The schedule's version this row reflects (every event of the schedule moves it).
    version: int


@dataclass(frozen=True)
class Comment:
    id: UUID
    author: str
    text: str
    at: datetime


class SchedulesQueries(Protocol):
    def get_schedule(self, tenant: str, schedule_id: UUID) -> ScheduleRow | None: ...
    def list_schedules(
        self,
        tenant: str,
        *,
        active: bool | None,
        limit: int,
        cursor: str | None,
        name: str | None = None,
    ) -> tuple[list[ScheduleRow], str | None]:
        """Newest first; `name` keeps those whose name holds it (any case)."""
        ...

    def comments(self, schedule_id: UUID) -> list[Comment]: ...
    def active_schedules(self) -> tuple[int, Iterator[ScheduleRow]]:
        """Every active schedule, with the projection position they are as of."""
        ...


# -- runs -----------------------------------------------------------------------------------

RUN_JOB_EVENTS = (
    Job.Started,
    Job.Succeeded,
    Job.AttemptFailed,
    Job.RetryScheduled,
    Job.DeadLettered,
    Job.Cancelled,
)


class RunsWriter(Protocol):
    def insert_run(self, row: dict[str, Any]) -> None: ...
    def update_run_of_job(self, job_id: UUID, changes: dict[str, Any]) -> None: ...


class ScheduleRunsProjection:
    """One row per tick (run or skipped), kept up to date from its job's events."""

    name = "schedule_runs"
    topics = tuple(topic(cls) for cls in (*TICK_EVENTS, *RUN_JOB_EVENTS))

    def process(self, events: Sequence[LoggedEvent], writer: RunsWriter) -> None:
        for logged in events:
            event = logged.event
            if isinstance(event, TriggeredTick.Triggered):
                writer.insert_run(
                    {
                        "id": event.originator_id,
                        "seq": logged.position,
                        "schedule_id": event.schedule_id,
                        "tenant": event.tenant,
                        "due_at": event.due_at,
                        "triggered_at": event.at,
                        # A run-now is due when asked: how late only means something for ticks.
                        "late_ms": None
                        if event.manual
                        else (event.at - event.due_at).total_seconds() * 1000,
                        "manual": event.manual,
                        "job_id": event.job_id,
                        "status": "waiting",
                        "dst": event.dst,
                        "triggered_by": event.by,
                        "skip_count": 0,
                    }
                )
            elif isinstance(event, SkippedTick.Skipped):
                writer.insert_run(
                    {
                        "id": event.originator_id,
                        "seq": logged.position,
                        "schedule_id": event.schedule_id,
                        "tenant": event.tenant,
                        "due_at": event.due_at,
                        "triggered_at": None,
                        "manual": False,
                        "job_id": None,
                        "status": "skipped",
                        "skip_reason": event.reason,
                        "skip_detail": event.detail,
                        "skip_count": event.count,
                        "dst": event.dst,
                        "triggered_by": None,
                    }
                )
            elif isinstance(event, Job.Started):
                writer.update_run_of_job(
                    event.originator_id,
                    {
                        "status": "running",
                        "attempts": event.attempt,
                        "started_at": event.at,
                        "finished_at": None,
                    },
                )
            elif isinstance(event, Job.Succeeded):
                writer.update_run_of_job(
                    event.originator_id,
                    {
                        "status": "succeeded",
                        "outcome": "success",
                        "finished_at": event.at,
                        "duration_ms": event.duration_ms,
                        "output": event.output,
                        "error": None,
                    },
                )
            elif isinstance(event, Job.AttemptFailed):
                writer.update_run_of_job(
                    event.originator_id,
                    {
                        "error": f"{event.error_type}: {event.message}",
                        "output": event.output,
                        "duration_ms": event.duration_ms,
                    },
                )
            elif isinstance(event, Job.RetryScheduled):
                writer.update_run_of_job(event.originator_id, {"status": "waiting"})
            elif isinstance(event, Job.DeadLettered):
                writer.update_run_of_job(
                    event.originator_id,
                    {"status": "failed", "outcome": "failure", "finished_at": event.at},
                )
            elif isinstance(event, Job.Cancelled):
                writer.update_run_of_job(
                    event.originator_id,
                    {"status": "cancelled", "outcome": "cancelled", "finished_at": event.at},
                )


@dataclass(frozen=True)
class RunRow:
    """One tick of a schedule: what ran (or why nothing did) and how it ended."""

    id: UUID
    seq: int
    schedule_id: UUID
    due_at: datetime
    triggered_at: datetime | None
    late_ms: float | None  # triggered_at - due_at, for scheduled ticks that ran
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


class RunsQueries(Protocol):
    def runs(
        self, tenant: str, schedule_id: UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[RunRow], str | None]: ...
