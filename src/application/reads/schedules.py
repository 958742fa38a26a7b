"""A schedule as of at least a write, its comments, history and runs (see `ScheduleReads`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent
from application.reads.read_your_writes import Current, ReadYourWrites, not_found, replay
from application.views.job_timeline import event_name
from application.views.schedules import (
    Comment,
    RunRow,
    RunsQueries,
    ScheduleRow,
    SchedulesProjection,
    SchedulesQueries,
)


class SchedulesReadModel(SchedulesQueries, RunsQueries, Protocol):
    """Everything the schedules and schedule runs read models answer."""


@dataclasses.dataclass(frozen=True)
class ScheduleChange:
    """One event of a schedule's own life and who caused it: created, edited (what changed),
    paused, resumed, commented on."""

    version: int
    event: str
    at: datetime
    by: str
    changes: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class _Comments:
    items: list[Comment]
    version: int


_ROW_FIELDS = {f.name for f in dataclasses.fields(ScheduleRow)}
#: Kept from the read model's row: ticks are aggregates of their own, none is in the stream.
_FROM_TICKS = ("last_due_at", "last_job_id", "last_run_at")


class _OneSchedule:
    """A SchedulesWriter that keeps one schedule's row and comments in memory."""

    def __init__(self) -> None:
        self.row: dict[str, Any] | None = None
        self.comments: list[Comment] = []

    def insert_schedule(self, row: dict[str, Any]) -> None:
        self.row = {**dict.fromkeys(_ROW_FIELDS), "deleted": False, **row}

    def update_schedule(self, schedule_id: UUID, changes: dict[str, Any]) -> None:  # noqa: ARG002
        if self.row is not None:
            self.row.update(changes)

    def record_due(self, schedule_id: UUID, due_at: datetime, changes: dict[str, Any]) -> None:
        """Ticks are aggregates of their own: none is in a schedule's stream."""

    def insert_comment(self, row: dict[str, Any]) -> None:
        self.comments.append(Comment(row["id"], row["author"], row["text"], row["at"]))

    def visible(self, tenant: str) -> bool:
        """Whether the events made a schedule of `tenant` that is not deleted."""
        return self.row is not None and self.row["tenant"] == tenant and not self.row["deleted"]


def _own_schedule(events: Sequence[LoggedEvent]) -> _OneSchedule:
    return replay(SchedulesProjection(), events, _OneSchedule())


def _schedule_row(own: dict[str, Any], stored: ScheduleRow | None) -> ScheduleRow:
    row = ScheduleRow(
        **{
            **{key: value for key, value in own.items() if key in _ROW_FIELDS},
            "arguments": json.loads(own["arguments"]),
            "options": json.loads(own["options"]),
            "frequency": json.loads(own["frequency"]),
        }
    )
    if stored is None:
        return row
    return dataclasses.replace(row, **{key: getattr(stored, key) for key in _FROM_TICKS})


def _change(event: Any) -> ScheduleChange:
    return ScheduleChange(
        version=event.originator_version,
        event=event_name(type(event)),
        at=event.at,
        by=str(getattr(event, "by", None) or getattr(event, "author", "")),
        changes=getattr(event, "changes", None),
    )


class ScheduleReads:
    """Schedules as HTTP, the CLI and the dashboard read them; the list is on
    `SchedulesReadModel`. Another tenant's schedule, a deleted one or an id that is not a
    schedule's is not found."""

    def __init__(self, reads: ReadYourWrites, queries: SchedulesReadModel) -> None:
        self._reads = reads
        self._queries = queries

    def get(
        self, tenant: str, schedule_id: UUID, *, at_least: int | None = None
    ) -> Current[ScheduleRow]:
        """The schedule as of at least version `at_least` (by default its current one)."""

        def own(events: Sequence[LoggedEvent], stored: ScheduleRow | None) -> ScheduleRow | None:
            schedule = _own_schedule(events)
            if schedule.row is None or not schedule.visible(tenant):
                return None
            return _schedule_row(schedule.row, stored)

        stored = self._queries.get_schedule(tenant, schedule_id)
        return self._reads.read("schedule", schedule_id, stored, own, at_least=at_least)

    def comments(
        self, tenant: str, schedule_id: UUID, *, at_least: int | None = None
    ) -> list[Comment]:
        """The schedule's comments, oldest first, as of at least version `at_least`."""

        def own(events: Sequence[LoggedEvent], _: _Comments | None) -> _Comments | None:
            schedule = _own_schedule(events)
            if schedule.row is None or not schedule.visible(tenant):
                return None
            return _Comments(schedule.comments, schedule.row["version"])

        row = self._queries.get_schedule(tenant, schedule_id)
        stored = (
            None if row is None else _Comments(self._queries.comments(schedule_id), row.version)
        )
        return self._reads.read("schedule", schedule_id, stored, own, at_least=at_least).value.items

    def history(self, tenant: str, schedule_id: UUID) -> list[ScheduleChange]:
        """Every event of the schedule, oldest first: its history is its stream."""
        events = self._reads.events(schedule_id)
        if not _own_schedule(events).visible(tenant):
            raise not_found("schedule", schedule_id)
        return [_change(logged.event) for logged in events]

    def runs(
        self, tenant: str, schedule_id: UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[RunRow], str | None]:
        """The schedule's runs (and skipped ticks), newest first."""
        self.get(tenant, schedule_id)
        return self._queries.runs(tenant, schedule_id, limit=limit, cursor=cursor)
