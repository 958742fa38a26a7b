"""The Schedule aggregate (what to run, when, with which policies) and its ticks.

Each tick — a due time that ran or was skipped — is an aggregate of its own, with an id derived
from (schedule, due time). That keeps a schedule's event stream short (an every-second schedule
makes 86,400 ticks a day) and makes triggering exactly-once without a lock: two schedulers that
try to record the same tick write the same aggregate id, and the event store lets one win.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.job import validate_queue
from domain.shared import (
    DEFAULT_TENANT,
    InvalidTransitionError,
    ValidationError,
    deterministic_id,
    require_utc,
)

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_COMMENT = 10_000

#: Settings an operator may edit, with the event field that carries each.
EDITABLE = (
    "name",
    "description",
    "command",
    "command_line",
    "arguments",
    "options",
    "frequency",
    "timezone",
    "queue",
    "max_attempts",
    "timeout_seconds",
    "without_overlapping",
    "missed_runs",
)


class MissedRuns(StrEnum):
    """What to do with ticks that fell due while no scheduler was running."""

    SKIP = "skip"
    RUN_ONCE = "run_once"


class SkipReason(StrEnum):
    """Why a tick did not start a job."""

    OVERLAP = "overlap"
    PAUSED = "paused"
    MISSED = "missed"
    DST_GAP = "dst_gap"


def tick_id(schedule_id: UUID, due_at: datetime, slot: str | None = None) -> UUID:
    """The id of the tick of `schedule_id` due at `due_at`.

    `slot` tells apart local times that fall due at the same instant: the slots inside a
    spring-forward gap are all recorded at the first instant after it, next to the real run.
    """
    due = require_utc(due_at, "due_at").isoformat()
    if slot is None:
        return deterministic_id("tick", str(schedule_id), due)
    return deterministic_id("tick", str(schedule_id), due, slot)


def job_id_for(schedule_id: UUID, due_at: datetime) -> UUID:
    """The id of the job a scheduled tick starts: the same on every scheduler."""
    return deterministic_id("job", str(schedule_id), require_utc(due_at, "due_at").isoformat())


def _check_settings(settings: dict[str, Any]) -> None:
    name = settings.get("name")
    if name is not None and not (isinstance(name, str) and 0 < len(name.strip()) <= MAX_NAME):
        raise ValidationError(f"name must be 1 to {MAX_NAME} characters", field="name")
    description = settings.get("description")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValidationError(
            f"description must be at most {MAX_DESCRIPTION} characters", field="description"
        )
    if "queue" in settings:
        validate_queue(settings["queue"])
    attempts = settings.get("max_attempts")
    if attempts is not None and not 1 <= attempts <= 100:
        raise ValidationError("max_attempts must be between 1 and 100", field="max_attempts")
    timeout = settings.get("timeout_seconds")
    if timeout is not None and not 0 < timeout <= 7 * 86400:
        raise ValidationError(
            "timeout_seconds must be greater than 0 and at most 7 days", field="timeout_seconds"
        )
    missed = settings.get("missed_runs")
    if missed is not None and missed not in {m.value for m in MissedRuns}:
        raise ValidationError("missed_runs must be 'skip' or 'run_once'", field="missed_runs")


class Schedule(Aggregate):
    """A registered command with its arguments, a frequency, a timezone and policies."""

    class Created(Aggregate.Created):
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
        by: str
        at: datetime

    class Edited(Aggregate.Event):
        changes: dict[str, dict[str, Any]]
        by: str
        at: datetime

    class Paused(Aggregate.Event):
        by: str
        at: datetime

    class Resumed(Aggregate.Event):
        by: str
        at: datetime

    class Deleted(Aggregate.Event):
        by: str
        at: datetime

    class CommentAdded(Aggregate.Event):
        comment_id: UUID
        author: str
        text: str
        at: datetime

    @event(Created)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        name: str,
        description: str,
        command: str,
        command_line: str,
        arguments: dict[str, Any],
        options: dict[str, Any],
        frequency: dict[str, Any],
        timezone: str,
        queue: str,
        max_attempts: int,
        timeout_seconds: float | None,
        without_overlapping: bool,
        missed_runs: str,
        by: str,
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.name = name
        self.description = description
        self.command = command
        self.command_line = command_line
        self.arguments = arguments
        self.options = options
        self.frequency = frequency
        self.timezone = timezone
        self.queue = queue
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self.without_overlapping = without_overlapping
        self.missed_runs = missed_runs
        self.created_by = by
        self.created_at = at
        self.active = True
        self.deleted = False
        self.paused_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        schedule_id: UUID,
        name: str,
        command: str,
        command_line: str,
        arguments: dict[str, Any],
        options: dict[str, Any],
        frequency: dict[str, Any],
        timezone: str,
        by: str,
        at: datetime,
        tenant: str = DEFAULT_TENANT,
        description: str = "",
        queue: str = "default",
        max_attempts: int = 3,
        timeout_seconds: float | None = None,
        without_overlapping: bool = False,
        missed_runs: str = MissedRuns.SKIP.value,
    ) -> Schedule:
        """Check the settings, then record Created. Command and frequency are validated by the
        application (against the command registry and the cron calculator) before this."""
        _check_settings(
            {
                "name": name,
                "description": description,
                "queue": queue,
                "max_attempts": max_attempts,
                "timeout_seconds": timeout_seconds,
                "missed_runs": missed_runs,
            }
        )
        return cls(
            id=schedule_id,
            tenant=tenant,
            name=name.strip(),
            description=description,
            command=command,
            command_line=command_line,
            arguments=arguments,
            options=options,
            frequency=frequency,
            timezone=timezone,
            queue=queue,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            without_overlapping=without_overlapping,
            missed_runs=missed_runs,
            by=by,
            at=require_utc(at, "at"),
        )

    def _require_not_deleted(self) -> None:
        if self.deleted:
            raise InvalidTransitionError(f"schedule {self.id} was deleted")

    def edit(self, *, changes: dict[str, Any], by: str, at: datetime) -> bool:
        """Apply the changed settings; returns False (and records nothing) if none changed."""
        self._require_not_deleted()
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValidationError(f"cannot edit {', '.join(sorted(unknown))}", field=min(unknown))
        _check_settings(changes)
        if "name" in changes:
            changes = {**changes, "name": changes["name"].strip()}
        diff = {
            key: {"from": getattr(self, key), "to": value}
            for key, value in changes.items()
            if getattr(self, key) != value
        }
        if not diff:
            return False
        self._edited(changes=diff, by=by, at=require_utc(at, "at"))
        return True

    def pause(self, *, by: str, at: datetime) -> None:
        self._require_not_deleted()
        if not self.active:
            raise InvalidTransitionError(f"schedule {self.id} is already paused")
        self._paused(by=by, at=require_utc(at, "at"))

    def resume(self, *, by: str, at: datetime) -> None:
        self._require_not_deleted()
        if self.active:
            raise InvalidTransitionError(f"schedule {self.id} is not paused")
        self._resumed(by=by, at=require_utc(at, "at"))

    def delete(self, *, by: str, at: datetime) -> None:
        self._require_not_deleted()
        self._deleted(by=by, at=require_utc(at, "at"))

    def add_comment(self, *, comment_id: UUID, author: str, text: str, at: datetime) -> None:
        self._require_not_deleted()
        if not text.strip():
            raise ValidationError("a comment needs some text", field="text")
        if len(text) > MAX_COMMENT:
            raise ValidationError(f"a comment is at most {MAX_COMMENT} characters", field="text")
        self._comment_added(comment_id=comment_id, author=author, text=text, at=at)

    @event(Edited)
    def _edited(self, changes: dict[str, dict[str, Any]], by: str, at: datetime) -> None:
        for key, change in changes.items():
            setattr(self, key, change["to"])

    @event(Paused)
    def _paused(self, by: str, at: datetime) -> None:
        self.active = False
        self.paused_at = at

    @event(Resumed)
    def _resumed(self, by: str, at: datetime) -> None:
        self.active = True
        self.paused_at = None

    @event(Deleted)
    def _deleted(self, by: str, at: datetime) -> None:
        self.deleted = True
        self.active = False

    @event(CommentAdded)
    def _comment_added(self, comment_id: UUID, author: str, text: str, at: datetime) -> None:
        pass


class TriggeredTick(Aggregate):
    """A tick that started a job (scheduled, or "run now" by an operator)."""

    class Triggered(Aggregate.Created):
        schedule_id: UUID
        tenant: str
        due_at: datetime
        job_id: UUID
        manual: bool
        dst: str | None
        by: str
        at: datetime

    @event(Triggered)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002
        schedule_id: UUID,
        tenant: str,
        due_at: datetime,
        job_id: UUID,
        manual: bool,
        dst: str | None,
        by: str,
        at: datetime,
    ) -> None:
        self.schedule_id = schedule_id
        self.due_at = due_at
        self.job_id = job_id
        self.manual = manual


class SkippedTick(Aggregate):
    """A tick that did not start a job, and why; `count` > 1 stands for several missed ticks."""

    class Skipped(Aggregate.Created):
        schedule_id: UUID
        tenant: str
        due_at: datetime
        reason: str
        detail: str
        count: int
        dst: str | None
        at: datetime

    @event(Skipped)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002
        schedule_id: UUID,
        tenant: str,
        due_at: datetime,
        reason: str,
        detail: str,
        count: int,
        dst: str | None,
        at: datetime,
    ) -> None:
        self.schedule_id = schedule_id
        self.due_at = due_at
        self.reason = reason


def trigger(
    schedule_id: UUID,
    *,
    tenant: str,
    due_at: datetime,
    job_id: UUID,
    at: datetime,
    dst: str | None = None,
    manual: bool = False,
    by: str = "scheduler",
    tick: UUID | None = None,
) -> TriggeredTick:
    """Record that the schedule started `job_id` for the tick due at `due_at`."""
    return TriggeredTick(
        id=tick or tick_id(schedule_id, due_at),
        schedule_id=schedule_id,
        tenant=tenant,
        due_at=require_utc(due_at, "due_at"),
        job_id=job_id,
        manual=manual,
        dst=dst,
        by=by,
        at=require_utc(at, "at"),
    )


def skip(
    schedule_id: UUID,
    *,
    tenant: str,
    due_at: datetime,
    reason: SkipReason,
    at: datetime,
    detail: str = "",
    count: int = 1,
    dst: str | None = None,
    slot: str | None = None,
) -> SkippedTick:
    """Record that the tick of `schedule_id` due at `due_at` did not run, and why."""
    if count < 1:
        raise ValidationError("a skipped tick stands for at least one tick", field="count")
    return SkippedTick(
        id=tick_id(schedule_id, due_at, slot),
        schedule_id=schedule_id,
        tenant=tenant,
        due_at=require_utc(due_at, "due_at"),
        reason=reason.value,
        detail=detail,
        count=count,
        dst=dst,
        at=require_utc(at, "at"),
    )
