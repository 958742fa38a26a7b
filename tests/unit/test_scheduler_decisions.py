"""The scheduler's decisions on in-memory storage with a fake clock: which ticks fire, late
ticks fired or recorded missed, overlap and missed-run policies, one tick per due time when
schedulers race, schedule changes followed from the log, and DST.

Its schedules are loaded from the schedules read model, built here by the real projection
into memory; storage itself (the SQL read models, duplicate ticks refused by PostgreSQL and
SQLite, the run history) is tested in tests/integration/test_scheduler.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from application.execution import JobExecutor
from application.jobs import JobService
from application.projections import ProjectionRunner
from application.scheduler import Scheduler
from application.schedules import ScheduleRequest, ScheduleService
from application.views.schedules import SchedulesProjection
from domain.job import Job
from domain.schedule import SkippedTick, TriggeredTick
from infrastructure.cron import CroniterCalculator
from tests.unit.fakes import (
    FakeClock,
    FakePresence,
    FakeQueue,
    MemoryEventLog,
    MemorySchedules,
    NoTimeLimit,
    demo_registry,
    memory_events,
)

T0 = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)


class World:
    """Chronicle's write side in memory, the schedules read model its projection keeps, and
    schedulers built as `Chronicle.scheduler` builds them."""

    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.events = memory_events()
        self.registry = demo_registry()
        self.cron = CroniterCalculator()
        self.jobs = JobService(self.events, self.registry, self.clock)
        self.schedules = ScheduleService(
            self.events, self.registry, self.jobs, self.cron, self.clock
        )
        self.log = MemoryEventLog(self.events)
        self.read_model = MemorySchedules()
        self.projector = ProjectionRunner(SchedulesProjection(), self.read_model.store, self.log)
        self.presence = FakePresence()

    def project(self) -> None:
        self.projector.catch_up()

    def scheduler(self, name: str = "scheduler", **options: Any) -> Scheduler:
        return Scheduler(
            self.events,
            self.jobs,
            self.read_model,
            self.log,
            self.cron,
            self.clock,
            presence=self.presence,
            name=name,
            **options,
        )

    def every_minute(self, **overrides: Any) -> UUID:
        fields: dict[str, Any] = {
            "name": "report",
            "command_line": "demo:echo tick",
            "helpers": [{"name": "everyMinute", "args": []}],
        }
        fields.update(overrides)
        return self.schedules.create(ScheduleRequest(**fields))

    def ticks(self) -> list[Any]:
        return [
            e.event
            for e in self.log.read(0, limit=100_000)
            if isinstance(e.event, TriggeredTick.Triggered | SkippedTick.Skipped)
        ]

    def run_job(self, job_id: UUID) -> None:
        JobExecutor(
            self.events, self.registry, self.clock, FakeQueue(), NoTimeLimit(), worker_id="w"
        ).process(job_id)


@pytest.fixture
def world() -> World:
    return World()


def at(hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 6, 1, hour, minute, second, micro, tzinfo=UTC)


def kinds(world: World) -> list[str]:
    return [type(t).__name__ for t in world.ticks()]


# -- which ticks fire ---------------------------------------------------------------------------


def test_nothing_fires_before_its_due_time_and_a_due_tick_starts_its_job(world: World):
    schedule_id = world.every_minute(queue="high", max_attempts=5)
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = at(12, 0, 59, 990_000)
    assert scheduler.fire_due() == 0
    assert world.ticks() == []
    world.clock.current = at(12, 1, 0, 20_000)
    assert scheduler.fire_due() == 1
    [tick] = world.ticks()
    assert isinstance(tick, TriggeredTick.Triggered)
    assert (tick.schedule_id, tick.due_at, tick.at, tick.by) == (
        schedule_id,
        at(12, 1),
        world.clock.current,
        "scheduler",
    )
    job: Job = world.events.repository.get(tick.job_id)
    assert (job.command, job.arguments, job.queue, job.max_attempts) == (
        "demo:echo",
        {"message": "tick"},
        "high",
        5,
    )
    assert (job.schedule_id, job.requested_by) == (str(schedule_id), "schedule:report")
    assert scheduler.next_due() == at(12, 2)


def test_ticks_due_together_are_saved_in_one_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    for name in ("a", "b", "c"):
        world.every_minute(name=name)
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    saves: list[int] = []
    save = world.events.save

    def counted(*objs: Any) -> Any:
        saves.append(len(objs))
        return save(*objs)

    monkeypatch.setattr(world.events, "save", counted)
    world.clock.current = at(12, 1, 0, 10_000)
    assert scheduler.fire_due() == 3
    assert len(saves) == 1  # three ticks and their three jobs, together
    assert kinds(world) == ["Triggered"] * 3


def test_a_restarted_scheduler_does_not_decide_a_recorded_tick_again(world: World):
    """The read model says which tick a schedule last had: a scheduler loading after it
    starts from the next one (no second decision, no lost race)."""
    world.every_minute()
    world.project()
    first = world.scheduler("a")
    first.load()
    world.clock.current = at(12, 1, 0, 10_000)
    first.fire_due()
    world.project()
    world.clock.current = at(12, 1, 30)
    second = world.scheduler("b")
    second.load()
    assert second.next_due() == at(12, 2)
    assert second.fire_due() == 0
    assert second.stats.lost_races == 0
    assert len(world.ticks()) == 1


# -- one tick per due time when schedulers race ---------------------------------------------------


def test_the_loser_of_a_race_learns_the_winners_job_for_its_overlap_check(world: World):
    """A fires 12:01; B, a moment later, loses the race for the same tick. B must know A's
    job is still waiting: at 12:02 B, firing first this time, skips for overlap."""
    world.every_minute(without_overlapping=True)
    world.project()
    first, second = world.scheduler("a"), world.scheduler("b")
    first.load()
    second.load()
    world.clock.current = at(12, 1, 0, 20_000)
    assert first.fire_due() == 1
    assert second.fire_due() == 1
    assert (first.stats.triggered, second.stats.triggered, second.stats.lost_races) == (1, 0, 1)
    world.clock.current = at(12, 2, 0, 20_000)
    second.fire_due()
    ticks = world.ticks()
    assert [type(t).__name__ for t in ticks] == ["Triggered", "Skipped"]
    assert (ticks[1].reason, ticks[1].detail) == (
        "overlap",
        f"previous job {ticks[0].job_id} is still waiting",
    )


# -- overlap --------------------------------------------------------------------------------------


def test_without_overlapping_skips_while_the_previous_job_runs(world: World):
    world.every_minute(without_overlapping=True)
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = at(12, 1, 0, 10_000)
    scheduler.fire_due()
    world.clock.current = at(12, 2, 0, 10_000)
    scheduler.fire_due()
    recorded = world.ticks()
    assert [type(t).__name__ for t in recorded] == ["Triggered", "Skipped"]
    assert recorded[1].reason == "overlap"
    # The job ends (however it ends): the next tick runs normally.
    world.run_job(recorded[0].job_id)
    world.clock.current = at(12, 3, 0, 10_000)
    scheduler.fire_due()
    assert kinds(world) == ["Triggered", "Skipped", "Triggered"]


def test_overlap_ends_when_the_previous_job_is_cancelled(world: World):
    world.every_minute(without_overlapping=True)
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = at(12, 1, 0, 10_000)
    scheduler.fire_due()
    job_id = world.ticks()[0].job_id
    world.jobs.cancel(job_id, tenant="default", by="op")
    world.clock.current = at(12, 2, 0, 10_000)
    scheduler.fire_due()
    assert kinds(world) == ["Triggered", "Triggered"]


def test_overlapping_schedules_run_every_tick_whatever_the_previous_job_does(world: World):
    world.every_minute()
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = at(12, 1, 0, 10_000)
    scheduler.fire_due()
    world.clock.current = at(12, 2, 0, 10_000)
    scheduler.fire_due()
    assert kinds(world) == ["Triggered", "Triggered"]


# -- missed runs ----------------------------------------------------------------------------------


def test_missed_ticks_are_skipped_and_bounded(world: World):
    world.every_minute()
    world.project()
    world.clock.current = T0 + timedelta(minutes=30, seconds=10)  # 30 ticks fell due while down
    scheduler = world.scheduler(missed_limit=5)
    scheduler.load()
    scheduler.fire_due()
    recorded = world.ticks()
    assert all(isinstance(t, SkippedTick.Skipped) for t in recorded)
    assert [t.reason for t in recorded] == ["missed"] * 5
    assert [t.count for t in recorded] == [1, 1, 1, 1, 26]
    assert sum(t.count for t in recorded) == 30
    assert scheduler.next_due() == at(12, 31)


def test_run_once_catches_up_with_one_run(world: World):
    world.every_minute(missed_runs="run_once")
    world.project()
    world.clock.current = T0 + timedelta(minutes=10, seconds=10)
    scheduler = world.scheduler()
    scheduler.load()
    scheduler.fire_due()
    recorded = world.ticks()
    triggered = [t for t in recorded if isinstance(t, TriggeredTick.Triggered)]
    skipped = [t for t in recorded if isinstance(t, SkippedTick.Skipped)]
    assert len(triggered) == 1
    assert triggered[0].due_at == at(12, 10)
    assert triggered[0].by == "scheduler (catch-up)"
    assert sum(t.count for t in skipped) == 9


# -- late, not missed: a scheduler that was running at a tick's due time fires it late -------------


def test_a_stalled_scheduler_fires_its_overdue_ticks_late(world: World):
    """Starved of CPU, paused or waiting on a slow commit for over three minutes: the
    scheduler was running all along, so every tick it is late for fires, late."""
    world.every_minute()
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = at(12, 3, 10)
    assert scheduler.fire_due() == 3
    recorded = world.ticks()
    assert all(isinstance(t, TriggeredTick.Triggered) for t in recorded), recorded
    assert [t.due_at.strftime("%H:%M") for t in recorded] == ["12:01", "12:02", "12:03"]
    assert [t.at for t in recorded] == [world.clock.current] * 3


def test_ticks_due_while_the_scheduler_loads_fire_late(world: World):
    """The process started at 12:00:00.5; loading took until 12:01:30. The 12:01 tick fell
    due while it ran (loading): it fires 30 s late instead of counting as missed."""
    world.every_minute()
    world.project()
    scheduler = world.scheduler()  # the process starts
    world.clock.current = at(12, 1, 30)
    scheduler.load()
    scheduler.fire_due()
    [tick] = world.ticks()
    assert isinstance(tick, TriggeredTick.Triggered)
    assert tick.due_at == at(12, 1)


def test_a_scheduler_starting_while_another_is_stalled_fires_its_ticks_late(world: World):
    """A runs from 12:00:00.5 and stalls; its presence is refreshed (by its own thread)
    until 12:03:09. B starts at 12:03:10: A was alive at 12:01, 12:02 and 12:03, so B fires
    those ticks late; A, once it moves again, finds them done."""
    world.every_minute()
    world.project()
    first = world.scheduler("a")
    first.beat()
    first.load()
    world.clock.current = at(12, 3, 9)
    first.beat()
    world.clock.current = at(12, 3, 10)
    second = world.scheduler("b")
    second.load()
    assert second.fire_due() == 3
    recorded = world.ticks()
    assert all(isinstance(t, TriggeredTick.Triggered) for t in recorded), recorded
    assert {t.by for t in recorded} == {"b"}
    assert first.fire_due() == 3
    assert len(world.ticks()) == 3
    assert first.stats.lost_races == 3


def test_only_ticks_due_while_no_scheduler_ran_are_missed(world: World):
    """A ran from 12:00:00.5 until 12:02:20 (its last sign of life), then nothing ran until
    B started at 12:05:10. 12:01 and 12:02 fell due while A ran: late. 12:03 to 12:05 fell
    due while none ran: missed."""
    world.every_minute()
    world.project()
    first = world.scheduler("a")
    first.beat()
    first.load()
    world.clock.current = at(12, 0, 50)
    first.fire_due()
    world.clock.current = at(12, 2, 20)
    first.beat()  # its loop was stuck: it never fired 12:01 or 12:02, and then it died
    world.clock.current = at(12, 5, 10)
    second = world.scheduler("b")
    second.load()
    second.fire_due()
    recorded = sorted(world.ticks(), key=lambda t: t.due_at)
    assert [
        (t.due_at.strftime("%H:%M"), getattr(t, "reason", "triggered"), getattr(t, "count", 1))
        for t in recorded
    ] == [
        ("12:01", "triggered", 1),
        ("12:02", "triggered", 1),
        ("12:03", "missed", 1),
        ("12:04", "missed", 1),
        ("12:05", "missed", 1),
    ]
    assert second.next_due() == at(12, 6)


def test_a_scheduler_that_stopped_leaves_a_gap_whose_ticks_are_missed(world: World):
    """A deploy gap: the old scheduler's presence ended at 12:00:30, the new one starts at
    12:10:10; the ten ticks in between are missed even though a scheduler ran before."""
    world.every_minute()
    world.project()
    old = world.scheduler("old")
    old.beat()
    old.load()
    world.clock.current = at(12, 0, 30)
    old.beat()
    world.clock.current = at(12, 10, 10)
    new = world.scheduler("new")
    new.load()
    new.fire_due()
    recorded = world.ticks()
    assert all(isinstance(t, SkippedTick.Skipped) for t in recorded)
    assert sum(t.count for t in recorded) == 10
    assert {t.reason for t in recorded} == {"missed"}


# -- schedule changes followed from the log -------------------------------------------------------


def test_edits_pauses_and_deletes_are_followed(world: World):
    schedule_id = world.every_minute()
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.schedules.edit(
        schedule_id,
        {"helpers": [{"name": "hourlyAt", "args": [30]}]},
        tenant="default",
        by="op",
    )
    scheduler.follow()
    assert scheduler.next_due() == at(12, 30)
    world.schedules.pause(schedule_id, tenant="default", by="op")
    scheduler.follow()
    assert scheduler.next_due() is None
    world.clock.current = at(15, 45)
    assert scheduler.fire_due() == 0  # paused: 12:30 to 15:30 start nothing
    world.schedules.resume(schedule_id, tenant="default", by="op")
    scheduler.follow()
    assert scheduler.next_due() == at(16, 30)
    paused = [t for t in world.ticks() if isinstance(t, SkippedTick.Skipped)]
    assert [(t.reason, t.count) for t in paused] == [("paused", 4)]
    assert not [t for t in world.ticks() if isinstance(t, TriggeredTick.Triggered)]
    world.schedules.delete(schedule_id, tenant="default", by="op")
    scheduler.follow()
    assert scheduler.next_due() is None


def test_an_edit_of_the_job_settings_applies_to_the_next_tick(world: World):
    schedule_id = world.every_minute()
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.schedules.edit(
        schedule_id,
        {"command_line": "demo:echo edited", "queue": "low"},
        tenant="default",
        by="op",
    )
    scheduler.follow()
    assert scheduler.next_due() == at(12, 1)  # the frequency did not change
    world.clock.current = at(12, 1, 0, 10_000)
    scheduler.fire_due()
    [tick] = world.ticks()
    job: Job = world.events.repository.get(tick.job_id)
    assert (job.arguments, job.queue) == ({"message": "edited"}, "low")


def test_a_tick_due_before_an_edit_still_runs_when_the_scheduler_sees_the_edit_late(
    world: World,
):
    """12:01 is due under the old frequency; the edit lands at 12:01:00.4, before this
    scheduler fired it. The tick belongs to the schedule as it was: it runs, once."""
    schedule_id = world.every_minute()
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    world.clock.current = at(12, 1, 0, 400_000)
    world.schedules.edit(
        schedule_id, {"helpers": [{"name": "hourlyAt", "args": [30]}]}, tenant="default", by="op"
    )
    scheduler.follow()
    assert scheduler.next_due() == at(12, 30)
    triggered = [t for t in world.ticks() if isinstance(t, TriggeredTick.Triggered)]
    assert [t.due_at for t in triggered] == [at(12, 1)]
    # Another scheduler that fired 12:01 in time would hold the same tick: no second job.
    other = world.scheduler()
    other.load()
    other.fire_due()
    assert len([t for t in world.ticks() if isinstance(t, TriggeredTick.Triggered)]) == 1


def test_new_schedule_is_seen_by_a_running_scheduler(world: World):
    scheduler = world.scheduler()
    scheduler.load()
    assert scheduler.next_due() is None
    world.every_minute()
    scheduler.follow()
    assert scheduler.next_due() == at(12, 1)


def test_a_schedule_created_paused_is_not_loaded(world: World):
    world.every_minute(active=False)
    world.project()
    scheduler = world.scheduler()
    scheduler.load()
    assert scheduler.next_due() is None
    world.clock.current = at(12, 5)
    assert scheduler.fire_due() == 0
    assert world.ticks() == []


# -- DST ------------------------------------------------------------------------------------------


def test_spring_forward_gap_is_skipped_and_the_run_after_it_kept(world: World):
    world.clock.current = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 in Rome (CET)
    world.schedules.create(
        ScheduleRequest(
            name="hourly in Rome",
            command_line="demo:noop",
            helpers=[{"name": "hourly", "args": []}],
            timezone="Europe/Rome",
        )
    )
    scheduler = world.scheduler()
    scheduler.load()
    scheduler.follow()
    for minute in range(0, 181, 5):
        world.clock.current = datetime(2026, 3, 28, 23, 30, tzinfo=UTC) + timedelta(minutes=minute)
        scheduler.fire_due()
    recorded = [
        (t.due_at.strftime("%H:%M"), type(t).__name__, getattr(t, "reason", None), t.dst)
        for t in world.ticks()
    ]
    assert recorded == [
        ("00:00", "Triggered", None, None),  # 01:00 CET
        ("01:00", "Skipped", "dst_gap", None),  # 02:00 does not exist that night
        ("01:00", "Triggered", None, None),  # 03:00 CEST
        ("02:00", "Triggered", None, None),  # 04:00 CEST
    ]


def test_daily_time_inside_the_gap_runs_once_right_after_it(world: World):
    world.clock.current = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    world.schedules.create(
        ScheduleRequest(
            name="nightly",
            command_line="demo:noop",
            helpers=[{"name": "dailyAt", "args": ["02:30"]}],
            timezone="Europe/Rome",
        )
    )
    scheduler = world.scheduler()
    scheduler.load()
    scheduler.follow()
    assert scheduler.next_due() == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    world.clock.current = datetime(2026, 3, 29, 1, 0, 1, tzinfo=UTC)
    scheduler.fire_due()
    [tick] = world.ticks()
    assert isinstance(tick, TriggeredTick.Triggered)
    assert tick.dst == "shifted_after_gap"


def test_slots_of_the_repeated_hour_run_in_both_occurrences_but_a_daily_time_once(
    world: World,
):
    """Rome falls back on 2026-10-25: 02:00-03:00 local happens twice (CEST, then CET)."""
    world.clock.current = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 00:30 CEST
    for name, helpers in (
        ("hourly", [{"name": "hourly", "args": []}]),
        ("nightly", [{"name": "dailyAt", "args": ["02:30"]}]),
    ):
        world.schedules.create(
            ScheduleRequest(
                name=name, command_line="demo:noop", helpers=helpers, timezone="Europe/Rome"
            )
        )
    scheduler = world.scheduler()
    scheduler.load()
    scheduler.follow()
    for minute in range(0, 241, 5):
        world.clock.current = datetime(2026, 10, 24, 22, 30, tzinfo=UTC) + timedelta(minutes=minute)
        scheduler.fire_due()
    recorded = sorted((t.due_at.strftime("%H:%M"), type(t).__name__, t.dst) for t in world.ticks())
    assert recorded == [
        ("00:00", "Triggered", "first_occurrence"),  # hourly: 02:00 CEST
        ("00:30", "Triggered", "first_occurrence"),  # nightly: 02:30 CEST, and only then
        ("01:00", "Triggered", "second_occurrence"),  # hourly: 02:00 CET
        ("02:00", "Triggered", None),  # hourly: 03:00 CET
        ("23:00", "Triggered", None),  # hourly: 01:00 CEST
    ]
