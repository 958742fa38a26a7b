"""Fakes for unit tests: a clock you move by hand, a broker that keeps messages in a list, the
event log and read models in memory, and the worker's and scheduler's other ports."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import OperationalError

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.event_log import ChronicleEvents, LoggedEvent
from application.projections import ProjectionStore, Tracked
from application.views.schedules import Comment, ScheduleRow

W = TypeVar("W")


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class FakeQueue:
    sent: list[tuple[UUID, str, float]] = field(default_factory=list)
    #: What `ready_messages` answers per queue (None: the broker cannot tell).
    ready: dict[str, int | None] = field(default_factory=dict)

    def enqueue(self, job_id: UUID, queue: str, *, delay_seconds: float = 0.0) -> None:
        self.sent.append((job_id, queue, delay_seconds))

    def enqueue_many(self, messages: Sequence[tuple[UUID, str, float]]) -> None:
        for job_id, queue, delay in messages:
            self.enqueue(job_id, queue, delay_seconds=delay)

    def check(self) -> None:
        return None

    def ready_messages(self, queue: str) -> int | None:
        return self.ready.get(queue, 0)

    def take(self) -> list[tuple[UUID, str, float]]:
        sent, self.sent = self.sent, []
        return sent


class NoTimeLimit:
    class _Nothing:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    def limit(self, seconds: float | None) -> NoTimeLimit._Nothing:
        return NoTimeLimit._Nothing()


def memory_events() -> ChronicleEvents:
    """Chronicle's event store on eventsourcing's in-memory storage."""
    return ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def demo_registry() -> CommandRegistry:
    """A command registry with the built-in demo commands only."""
    registry = CommandRegistry()
    register_builtins(registry)
    return registry


# -- the log and read models in memory ----------------------------------------------------------


class MemoryEventLog:
    """EventLog over `memory_events()`: reads its notification log, never blocks in `wait`
    (which records what it was asked, for the loops that call it)."""

    def __init__(self, events: ChronicleEvents) -> None:
        self._events = events
        self.waits: list[tuple[int, float]] = []

    def head(self) -> int:
        return self._events.recorder.max_notification_id() or 0

    def read(
        self, after: int, *, limit: int, upto: int | None = None, topics: Sequence[str] = ()
    ) -> list[LoggedEvent]:
        notifications = self._events.recorder.select_notifications(
            start=after, limit=limit, stop=upto, topics=topics, inclusive_of_start=False
        )
        to_event = self._events.mapper.to_domain_event
        return [LoggedEvent(n.id, to_event(n)) for n in notifications]

    def wait(self, after: int, timeout: float) -> None:
        self.waits.append((after, timeout))


#: A read model's tables: table name -> rows by key.
Tables = dict[str, dict[Any, dict[str, Any]]]


@dataclass
class MemoryTracked(Generic[W]):
    """Tracked: an open transaction of a `MemoryProjectionStore`."""

    position: int
    writer: W

    def advance(self, position: int) -> None:
        self.position = position


class MemoryProjectionStore(Generic[W]):
    """ProjectionStore in memory. A transaction writes on a copy of the tables that, with its
    position, replaces them only when it ends without an error: rows and position commit
    together or not at all. One transaction at a time, as the tracking row's lock does."""

    def __init__(self, name: str, writer: Callable[[Tables], W]) -> None:
        self._name = name
        self._writer = writer
        self._lock = threading.RLock()
        self.tables: Tables = {}
        self._position = 0
        self.commits = 0
        self.shadows: list[MemoryProjectionStore[W]] = []

    @property
    def name(self) -> str:
        return self._name

    @contextmanager
    def transaction(self) -> Iterator[MemoryTracked[W]]:
        with self._lock:
            staged = copy.deepcopy(self.tables)
            tracked = MemoryTracked(self._position, self._writer(staged))
            yield tracked
            self.tables, self._position = staged, tracked.position
            self.commits += 1

    def position(self) -> int:
        return self._position

    def shadow(self) -> MemoryProjectionStore[W]:
        shadow = MemoryProjectionStore(self._name, self._writer)
        self.shadows.append(shadow)
        return shadow

    def replace_with(
        self, shadow: ProjectionStore[W], finish: Callable[[Tracked[W]], None]
    ) -> None:
        assert isinstance(shadow, MemoryProjectionStore)
        with self._lock, shadow.transaction() as tracked:
            finish(tracked)
        with self._lock:
            self.tables, self._position = shadow.tables, shadow.position()
            self.commits += 1


_SCHEDULE_COLUMNS = frozenset(f.name for f in fields(ScheduleRow))
_SCHEDULE_DEFAULTS: dict[str, Any] = {
    "deleted": False,
    "paused_at": None,
    "last_due_at": None,
    "last_job_id": None,
    "last_run_at": None,
}


class MemorySchedulesWriter:
    """SchedulesWriter on in-memory tables, with the SQL writer's rules: known columns only,
    and `record_due` only moves `last_due_at` forward."""

    def __init__(self, tables: Tables) -> None:
        self._schedules = tables.setdefault("schedules", {})
        self._comments = tables.setdefault("schedule_comments", {})

    def insert_schedule(self, row: dict[str, Any]) -> None:
        self._schedules[row["id"]] = {**_SCHEDULE_DEFAULTS, **row}

    def update_schedule(self, schedule_id: UUID, changes: dict[str, Any]) -> None:
        unknown = set(changes) - _SCHEDULE_COLUMNS
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)} for schedules")
        if schedule_id in self._schedules:
            self._schedules[schedule_id].update(changes)

    def record_due(self, schedule_id: UUID, due_at: datetime, changes: dict[str, Any]) -> None:
        row = self._schedules.get(schedule_id)
        if row is not None and (row["last_due_at"] is None or row["last_due_at"] < due_at):
            self.update_schedule(schedule_id, {**changes, "last_due_at": due_at})

    def insert_comment(self, row: dict[str, Any]) -> None:
        self._comments[row["id"]] = dict(row)


class MemorySchedules:
    """The schedules read model in memory: its store (for a ProjectionRunner of
    `SchedulesProjection`) and the SchedulesQueries the scheduler loads from."""

    def __init__(self) -> None:
        self.store = MemoryProjectionStore("schedules", MemorySchedulesWriter)

    def _rows(self) -> list[ScheduleRow]:
        rows = self.store.tables.get("schedules", {}).values()
        return [_schedule_row(row) for row in sorted(rows, key=lambda r: r["seq"])]

    def get_schedule(self, tenant: str, schedule_id: UUID) -> ScheduleRow | None:
        return next(
            (
                r
                for r in self._rows()
                if (r.id, r.tenant, r.deleted) == (schedule_id, tenant, False)
            ),
            None,
        )

    def list_schedules(
        self, tenant: str, *, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[ScheduleRow], str | None]:
        raise NotImplementedError  # not what the scheduler reads

    def comments(self, schedule_id: UUID) -> list[Comment]:
        raise NotImplementedError  # not what the scheduler reads

    def active_schedules(self) -> tuple[int, Iterator[ScheduleRow]]:
        position = self.store.position()
        return position, iter([row for row in self._rows() if row.active])


def _schedule_row(row: dict[str, Any]) -> ScheduleRow:
    last_job_id = row["last_job_id"]
    return ScheduleRow(
        **{
            **row,
            "arguments": json.loads(row["arguments"]),
            "options": json.loads(row["options"]),
            "frequency": json.loads(row["frequency"]),
            "last_job_id": UUID(last_job_id) if last_job_id else None,
        }
    )


# -- worker-side ports ---------------------------------------------------------------------------


class FakePauses:
    """PauseGate: the (tenant, queue) pairs paused (queue None: every queue of the tenant);
    records whether each pause check was made inside `starting()`."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, str | None]] = set()
        self.holding = False
        self.checks: list[tuple[str, str, bool]] = []

    def is_paused(self, tenant: str, queue: str) -> bool:
        self.checks.append((tenant, queue, self.holding))
        return (tenant, queue) in self.paused or (tenant, None) in self.paused

    @contextmanager
    def starting(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False


class FakePresence:
    """SchedulerPresence in memory; `fail` makes the next look raise."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[str, datetime, datetime]] = {}
        self.fail = 0

    def beat(self, run_id: UUID, name: str, started_at: datetime, seen_at: datetime) -> None:
        self.rows[run_id] = (name, started_at, seen_at)

    def spans(self, since: datetime) -> list[tuple[datetime, datetime]]:
        if self.fail:
            self.fail -= 1
            raise OperationalError("the database is down")
        return [(start, seen) for _, start, seen in self.rows.values() if seen >= since]

    def prune(self, before: datetime) -> None:
        for key in [k for k, (_, _, seen) in self.rows.items() if seen < before]:
            del self.rows[key]
