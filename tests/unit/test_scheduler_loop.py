"""The scheduler loop on the in-memory event store: a failed save (or a failed look at who
was running) loses no tick; presence records tell late ticks from missed ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.event_log import ChronicleEvents, LoggedEvent
from application.jobs import JobService
from application.scheduler import Scheduler
from application.scheduler_presence import Coverage
from application.schedules import ScheduleRequest, ScheduleService
from application.views.schedules import Comment, ScheduleRow
from domain.schedule import Schedule, SkippedTick, TriggeredTick, tick_id
from infrastructure.cron import CroniterCalculator
from tests.unit.fakes import FakeClock, FakePresence

T0 = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)


class FakeSchedules:
    """SchedulesQueries over the aggregates themselves (no read model)."""

    def __init__(self, events: ChronicleEvents) -> None:
        self._events = events
        self.ids: list[UUID] = []

    def active_schedules(self) -> tuple[int, Iterator[ScheduleRow]]:
        rows = []
        for schedule_id in self.ids:
            s: Schedule = self._events.repository.get(schedule_id)
            rows.append(
                ScheduleRow(
                    id=s.id,
                    seq=0,
                    tenant=s.tenant,
                    name=s.name,
                    description=s.description,
                    command=s.command,
                    command_line=s.command_line,
                    arguments=s.arguments,
                    options=s.options,
                    frequency=s.frequency,
                    timezone=s.timezone,
                    queue=s.queue,
                    max_attempts=s.max_attempts,
                    timeout_seconds=s.timeout_seconds,
                    without_overlapping=s.without_overlapping,
                    missed_runs=s.missed_runs,
                    active=s.active,
                    deleted=s.deleted,
                    paused_at=s.paused_at,
                    created_by=s.created_by,
                    created_at=s.created_at,
                    updated_at=s.created_at,
                    last_due_at=None,
                    last_job_id=None,
                    last_run_at=None,
                    version=s.version,
                )
            )
        return 0, iter(rows)

    def get_schedule(self, tenant: str, schedule_id: UUID) -> ScheduleRow | None:
        raise NotImplementedError

    def list_schedules(
        self, tenant: str, *, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[ScheduleRow], str | None]:
        raise NotImplementedError

    def comments(self, schedule_id: UUID) -> list[Comment]:
        raise NotImplementedError


class QuietLog:
    """An event log with nothing new: these tests do not follow changes."""

    def head(self) -> int:
        return 0

    def read(
        self, after: int, *, limit: int, upto: int | None = None, topics: Sequence[str] = ()
    ) -> list[LoggedEvent]:
        return []

    def wait(self, after: int, timeout: float) -> None:
        return None


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.events = ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        registry = CommandRegistry()
        register_builtins(registry)
        self.cron = CroniterCalculator()
        self.jobs = JobService(self.events, registry, self.clock)
        self.service = ScheduleService(self.events, registry, self.jobs, self.cron, self.clock)
        self.schedules = FakeSchedules(self.events)
        self.presence = FakePresence()

    def every_minute(self, name: str = "report") -> UUID:
        schedule_id = self.service.create(
            ScheduleRequest(
                name=name, command_line="demo:noop", helpers=[{"name": "everyMinute", "args": []}]
            )
        )
        self.schedules.ids.append(schedule_id)
        return schedule_id

    def scheduler(self, name: str = "scheduler") -> Scheduler:
        return Scheduler(
            self.events,
            self.jobs,
            self.schedules,
            QuietLog(),
            self.cron,
            self.clock,
            presence=self.presence,
            name=name,
        )

    def ticks(self, schedule_id: UUID, *minutes: int) -> list[object]:
        found: list[object] = []
        for minute in minutes:
            due = datetime(2026, 6, 1, 12, minute, tzinfo=UTC)
            tick = self.events.repository.get(tick_id(schedule_id, due))
            found.append(tick)
        return found


@pytest.fixture
def world() -> World:
    return World()


def fail_once(save: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def flaky(*objs: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("the database is down")
        return save(*objs, **kwargs)

    return flaky


def test_a_failed_save_puts_the_ticks_back_and_they_fire_late_once_the_database_is_back(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    first, second = world.every_minute("a"), world.every_minute("b")
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = datetime(2026, 6, 1, 12, 1, 0, 10_000, tzinfo=UTC)
    monkeypatch.setattr(world.events, "save", fail_once(world.events.save))
    with pytest.raises(OperationalError):
        scheduler.fire_due()
    # Nothing was recorded, and the 12:01 ticks are due again: not lost.
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)
    assert scheduler.stats.triggered == 0
    world.clock.current = datetime(2026, 6, 1, 12, 1, 8, tzinfo=UTC)  # the database is back
    assert scheduler.fire_due() == 2
    for schedule_id in (first, second):
        [tick] = world.ticks(schedule_id, 1)
        assert isinstance(tick, TriggeredTick)
        assert tick.due_at == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)
    assert scheduler.stats.triggered == 2
    assert min(scheduler.stats.lateness_ms) >= 8000  # late, and saying so
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 2, tzinfo=UTC)


def test_a_failed_save_of_several_ticks_of_one_schedule_retries_from_the_first(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    """Three minutes behind: 12:01, 12:02 and 12:03 are decided together and the save fails;
    all three fire on the retry, none is skipped over."""
    schedule_id = world.every_minute()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = datetime(2026, 6, 1, 12, 3, 1, tzinfo=UTC)
    monkeypatch.setattr(world.events, "save", fail_once(world.events.save))
    with pytest.raises(OperationalError):
        scheduler.fire_due()
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)
    assert scheduler.fire_due() == 3
    ticks = world.ticks(schedule_id, 1, 2, 3)
    assert all(isinstance(t, TriggeredTick) for t in ticks)


def test_a_failed_look_at_who_was_running_puts_the_tick_back(world: World):
    """Deciding whether a tick was missed reads the presence records; when that read fails,
    the tick is kept for the next step."""
    schedule_id = world.every_minute()
    world.clock.current = datetime(2026, 6, 1, 12, 3, 10, tzinfo=UTC)
    scheduler = world.scheduler()  # started after 12:01 to 12:03: only presence can tell
    scheduler.load()
    world.presence.fail = 1
    with pytest.raises(OperationalError):
        scheduler.fire_due()
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)
    scheduler.fire_due()
    ticks = world.ticks(schedule_id, 1, 2, 3)
    assert all(isinstance(t, SkippedTick) and t.reason == "missed" for t in ticks)


def test_presence_rows_older_than_the_retention_are_pruned(world: World):
    old = uuid4()
    world.presence.beat(old, "old", T0 - timedelta(days=9), T0 - timedelta(days=8))
    scheduler = world.scheduler()
    scheduler.beat()
    assert old not in world.presence.rows
    assert [name for name, _, _ in world.presence.rows.values()] == ["scheduler"]


def test_coverage_merges_spans_widened_by_the_grace():
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    coverage = Coverage(
        [(at, at + minute), (at + 3 * minute, at + 4 * minute), (at + minute, at + 2 * minute)],
        grace=timedelta(seconds=5),
    )
    assert coverage.covers(at - timedelta(seconds=5))
    assert not coverage.covers(at - timedelta(seconds=6))
    assert coverage.covers(at + 2 * minute + timedelta(seconds=5))
    assert not coverage.covers(at + 2 * minute + timedelta(seconds=6))
    assert coverage.covers(at + timedelta(minutes=3, seconds=30))
    assert not coverage.covers(at + 5 * minute)
    assert not Coverage([], grace=timedelta(seconds=5)).covers(at)
