"""The scheduler on real storage with a fake clock: exactly-once triggering, overlap,
missed runs, edits and pauses seen from the log, and the run history read model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.schedules import ScheduleRequest
from domain.schedule import SkippedTick, TriggeredTick
from interfaces.bootstrap import Chronicle, bootstrap
from interfaces.cli.schedules import _fmt_late
from interfaces.http.schemas.schedules import run_item
from tests.integration.conftest import make_settings
from tests.unit.fakes import FakeClock, FakeQueue

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Chronicle]:
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    chronicle = bootstrap(make_settings(backend, tmp_path, schema), registry=registry, clock=clock)
    yield chronicle
    chronicle.close()


def project(app: Chronicle) -> None:
    for name in ("jobs", "job_timeline", "schedules", "schedule_runs"):
        app.runners[name].catch_up()


def ticks(app: Chronicle) -> list[object]:
    return [
        e.event
        for e in app.log.read(0, limit=100_000)
        if isinstance(e.event, TriggeredTick.Triggered | SkippedTick.Skipped)
    ]


def every_minute(app: Chronicle, **overrides: object) -> object:
    fields: dict[str, object] = {
        "name": "report",
        "command_line": "demo:echo tick",
        "helpers": [{"name": "everyMinute", "args": []}],
    }
    fields.update(overrides)
    return app.schedules.create(ScheduleRequest(**fields))  # type: ignore[arg-type]


def test_due_tick_starts_one_job_even_with_two_schedulers(app: Chronicle, clock: FakeClock):
    schedule_id = every_minute(app)
    project(app)
    first, second = app.scheduler("a"), app.scheduler("b")
    first.load()
    second.load()
    assert first.next_due() == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 20_000, tzinfo=UTC)
    assert first.fire_due() == 1
    assert second.fire_due() == 1  # the same tick: it loses the race, quietly
    recorded = ticks(app)
    assert len(recorded) == 1
    assert isinstance(recorded[0], TriggeredTick.Triggered)
    assert recorded[0].schedule_id == schedule_id
    assert (first.stats.triggered, second.stats.lost_races) == (1, 1)
    # The job carries the schedule and its id derives from (schedule, due time).
    job = app.events.repository.get(recorded[0].job_id)
    assert job.schedule_id == str(schedule_id)
    assert job.requested_by == "schedule:report"


def test_without_overlapping_skips_while_the_previous_job_runs(app: Chronicle, clock: FakeClock):
    every_minute(app, without_overlapping=True)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    clock.current = datetime(2026, 6, 1, 12, 2, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    recorded = ticks(app)
    assert [type(t).__name__ for t in recorded] == ["Triggered", "Skipped"]
    assert recorded[1].reason == "overlap"
    # The job ends (however it ends): the next tick runs normally.
    queue = FakeQueue()
    executor = app.executor(queue, worker_id="w")
    executor.process(recorded[0].job_id)
    clock.current = datetime(2026, 6, 1, 12, 3, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    assert [type(t).__name__ for t in ticks(app)] == ["Triggered", "Skipped", "Triggered"]


def test_overlap_ends_when_the_previous_job_is_cancelled(app: Chronicle, clock: FakeClock):
    every_minute(app, without_overlapping=True)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    job_id = ticks(app)[0].job_id
    app.jobs.cancel(job_id, tenant="default", by="op")
    clock.current = datetime(2026, 6, 1, 12, 2, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    assert [type(t).__name__ for t in ticks(app)] == ["Triggered", "Triggered"]


def test_missed_ticks_are_skipped_and_bounded(app: Chronicle, clock: FakeClock):
    every_minute(app)
    project(app)
    clock.current = T0 + timedelta(minutes=30, seconds=10)  # 30 ticks fell due while down
    scheduler = app.scheduler()
    scheduler._missed_limit = 5
    scheduler.load()
    scheduler.fire_due()
    recorded = ticks(app)
    assert all(isinstance(t, SkippedTick.Skipped) for t in recorded)
    assert [t.reason for t in recorded] == ["missed"] * 5
    assert [t.count for t in recorded] == [1, 1, 1, 1, 26]
    assert sum(t.count for t in recorded) == 30
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 31, tzinfo=UTC)


def test_run_once_catches_up_with_one_run(app: Chronicle, clock: FakeClock):
    every_minute(app, missed_runs="run_once")
    project(app)
    clock.current = T0 + timedelta(minutes=10, seconds=10)
    scheduler = app.scheduler()
    scheduler.load()
    scheduler.fire_due()
    recorded = ticks(app)
    triggered = [t for t in recorded if isinstance(t, TriggeredTick.Triggered)]
    skipped = [t for t in recorded if isinstance(t, SkippedTick.Skipped)]
    assert len(triggered) == 1
    assert triggered[0].due_at == datetime(2026, 6, 1, 12, 10, tzinfo=UTC)
    assert sum(t.count for t in skipped) == 9


def test_edits_pauses_and_deletes_are_followed(app: Chronicle, clock: FakeClock):
    schedule_id = every_minute(app)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    app.schedules.edit(
        schedule_id,
        {"helpers": [{"name": "hourlyAt", "args": [30]}]},
        tenant="default",
        by="op",
    )
    scheduler.follow()
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    app.schedules.pause(schedule_id, tenant="default", by="op")
    scheduler.follow()
    assert scheduler.next_due() is None
    clock.current = datetime(2026, 6, 1, 15, 45, tzinfo=UTC)
    app.schedules.resume(schedule_id, tenant="default", by="op")
    scheduler.follow()
    assert scheduler.next_due() == datetime(2026, 6, 1, 16, 30, tzinfo=UTC)
    paused = [t for t in ticks(app) if isinstance(t, SkippedTick.Skipped)]
    assert [(t.reason, t.count) for t in paused] == [("paused", 4)]
    app.schedules.delete(schedule_id, tenant="default", by="op")
    scheduler.follow()
    assert scheduler.next_due() is None


def test_a_tick_due_before_an_edit_still_runs_when_the_scheduler_sees_the_edit_late(
    app: Chronicle, clock: FakeClock
):
    """12:01 is due under the old frequency; the edit lands at 12:01:00.4, before this
    scheduler fired it. The tick belongs to the schedule as it was: it runs, once."""
    schedule_id = every_minute(app)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 400_000, tzinfo=UTC)
    app.schedules.edit(
        schedule_id, {"helpers": [{"name": "hourlyAt", "args": [30]}]}, tenant="default", by="op"
    )
    scheduler.follow()
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    triggered = [t for t in ticks(app) if isinstance(t, TriggeredTick.Triggered)]
    assert [t.due_at for t in triggered] == [datetime(2026, 6, 1, 12, 1, tzinfo=UTC)]
    # Another scheduler that fired 12:01 in time would hold the same tick: no second job.
    other = app.scheduler()
    other.load()
    other.fire_due()
    assert len([t for t in ticks(app) if isinstance(t, TriggeredTick.Triggered)]) == 1


def test_new_schedule_is_seen_by_a_running_scheduler(app: Chronicle, clock: FakeClock):
    scheduler = app.scheduler()
    scheduler.load()
    assert scheduler.next_due() is None
    every_minute(app)
    scheduler.follow()
    assert scheduler.next_due() == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)


def test_run_history_shows_outcome_and_skips(app: Chronicle, clock: FakeClock):
    schedule_id = every_minute(app, command_line="demo:echo hello", without_overlapping=True)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    clock.current = datetime(2026, 6, 1, 12, 2, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    job_id = ticks(app)[0].job_id
    app.executor(FakeQueue(), worker_id="w").process(job_id)
    manual_job = app.schedules.run_now(schedule_id, tenant="default", by="op")
    project(app)
    runs, cursor = app.schedule_queries.runs("default", schedule_id, limit=10, cursor=None)
    assert cursor is None
    assert [(r.manual, r.status) for r in runs] == [
        (True, "waiting"),
        (False, "skipped"),
        (False, "succeeded"),
    ]
    assert runs[0].job_id == manual_job
    assert runs[1].skip_reason == "overlap"
    done = runs[2]
    assert done.outcome == "success"
    assert done.output == "hello\n"
    assert done.duration_ms is not None
    row = app.schedule_queries.get_schedule("default", schedule_id)
    assert row is not None
    assert row.last_job_id == manual_job
    assert row.last_due_at == datetime(2026, 6, 1, 12, 2, tzinfo=UTC)


def test_spring_forward_gap_is_skipped_and_the_run_after_it_kept(app: Chronicle, clock: FakeClock):
    clock.current = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 in Rome (CET)
    app.schedules.create(
        ScheduleRequest(
            name="hourly in Rome",
            command_line="demo:noop",
            helpers=[{"name": "hourly", "args": []}],
            timezone="Europe/Rome",
        )
    )
    scheduler = app.scheduler()
    scheduler.load()
    scheduler.follow()
    for minute in range(0, 181, 5):
        clock.current = datetime(2026, 3, 28, 23, 30, tzinfo=UTC) + timedelta(minutes=minute)
        scheduler.fire_due()
    recorded = [
        (t.due_at.strftime("%H:%M"), type(t).__name__, getattr(t, "reason", None), t.dst)
        for t in ticks(app)
    ]
    assert recorded == [
        ("00:00", "Triggered", None, None),  # 01:00 CET
        ("01:00", "Skipped", "dst_gap", None),  # 02:00 does not exist that night
        ("01:00", "Triggered", None, None),  # 03:00 CEST
        ("02:00", "Triggered", None, None),  # 04:00 CEST
    ]


def test_daily_time_inside_the_gap_runs_once_right_after_it(app: Chronicle, clock: FakeClock):
    clock.current = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    app.schedules.create(
        ScheduleRequest(
            name="nightly",
            command_line="demo:noop",
            helpers=[{"name": "dailyAt", "args": ["02:30"]}],
            timezone="Europe/Rome",
        )
    )
    scheduler = app.scheduler()
    scheduler.load()
    scheduler.follow()
    assert scheduler.next_due() == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    clock.current = datetime(2026, 3, 29, 1, 0, 1, tzinfo=UTC)
    scheduler.fire_due()
    [tick] = ticks(app)
    assert isinstance(tick, TriggeredTick.Triggered)
    assert tick.dst == "shifted_after_gap"


# -- late, not missed: a scheduler that was running at a tick's due time fires it late --------


def test_a_stalled_scheduler_fires_its_overdue_ticks_late(app: Chronicle, clock: FakeClock):
    """Starved of CPU, paused or waiting on a slow commit for over three minutes: the
    scheduler was running all along, so every tick it is late for fires, late."""
    every_minute(app)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 3, 10, tzinfo=UTC)
    assert scheduler.fire_due() == 3
    recorded = ticks(app)
    assert all(isinstance(t, TriggeredTick.Triggered) for t in recorded), recorded
    assert [t.due_at.strftime("%H:%M") for t in recorded] == ["12:01", "12:02", "12:03"]
    assert [t.at for t in recorded] == [clock.current] * 3


def test_ticks_due_while_the_scheduler_loads_fire_late(app: Chronicle, clock: FakeClock):
    """The process started at 12:00:00.5; loading took until 12:01:30. The 12:01 tick fell
    due while it ran (loading): it fires 30 s late instead of counting as missed."""
    every_minute(app)
    project(app)
    scheduler = app.scheduler()  # the process starts
    clock.current = datetime(2026, 6, 1, 12, 1, 30, tzinfo=UTC)
    scheduler.load()
    scheduler.fire_due()
    [tick] = ticks(app)
    assert isinstance(tick, TriggeredTick.Triggered)
    assert tick.due_at == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)


def test_a_scheduler_starting_while_another_is_stalled_fires_its_ticks_late(
    app: Chronicle, clock: FakeClock
):
    """A runs from 12:00:00.5 and stalls; its presence is refreshed (by its own thread)
    until 12:03:09. B starts at 12:03:10: A was alive at 12:01, 12:02 and 12:03, so B fires
    those ticks late; A, once it moves again, finds them done."""
    every_minute(app)
    project(app)
    first = app.scheduler("a")
    first.beat()
    first.load()
    clock.current = datetime(2026, 6, 1, 12, 3, 9, tzinfo=UTC)
    first.beat()
    clock.current = datetime(2026, 6, 1, 12, 3, 10, tzinfo=UTC)
    second = app.scheduler("b")
    second.load()
    assert second.fire_due() == 3
    recorded = ticks(app)
    assert all(isinstance(t, TriggeredTick.Triggered) for t in recorded), recorded
    assert {t.by for t in recorded} == {"b"}
    assert first.fire_due() == 3
    assert len(ticks(app)) == 3
    assert first.stats.lost_races == 3


def test_only_ticks_due_while_no_scheduler_ran_are_missed(app: Chronicle, clock: FakeClock):
    """A ran from 12:00:00.5 until 12:02:20 (its last sign of life), then nothing ran until
    B started at 12:05:10. 12:01 and 12:02 fell due while A ran: late. 12:03 to 12:05 fell
    due while none ran: missed."""
    every_minute(app)
    project(app)
    first = app.scheduler("a")
    first.beat()
    first.load()
    clock.current = datetime(2026, 6, 1, 12, 0, 50, tzinfo=UTC)
    first.fire_due()
    clock.current = datetime(2026, 6, 1, 12, 2, 20, tzinfo=UTC)
    first.beat()  # its loop was stuck: it never fired 12:01 or 12:02, and then it died
    clock.current = datetime(2026, 6, 1, 12, 5, 10, tzinfo=UTC)
    second = app.scheduler("b")
    second.load()
    second.fire_due()
    recorded = sorted(ticks(app), key=lambda t: t.due_at)
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
    assert second.next_due() == datetime(2026, 6, 1, 12, 6, tzinfo=UTC)


def test_a_scheduler_that_stopped_leaves_a_gap_whose_ticks_are_missed(
    app: Chronicle, clock: FakeClock
):
    """A deploy gap: the old scheduler's presence ended at 12:00:30, the new one starts at
    12:10:10; the ten ticks in between are missed even though a scheduler ran before."""
    every_minute(app)
    project(app)
    old = app.scheduler("old")
    old.beat()
    old.load()
    clock.current = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    old.beat()
    clock.current = datetime(2026, 6, 1, 12, 10, 10, tzinfo=UTC)
    new = app.scheduler("new")
    new.load()
    new.fire_due()
    recorded = ticks(app)
    assert all(isinstance(t, SkippedTick.Skipped) for t in recorded)
    assert sum(t.count for t in recorded) == 10
    assert {t.reason for t in recorded} == {"missed"}


def test_run_history_shows_how_late_each_tick_fired(app: Chronicle, clock: FakeClock):
    schedule_id = every_minute(app)
    project(app)
    scheduler = app.scheduler()
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 10_000, tzinfo=UTC)
    scheduler.fire_due()
    clock.current = datetime(2026, 6, 1, 12, 3, 4, 500_000, tzinfo=UTC)  # stalled
    scheduler.fire_due()
    app.schedules.run_now(schedule_id, tenant="default", by="op")
    project(app)
    runs, _ = app.schedule_queries.runs("default", schedule_id, limit=10, cursor=None)
    assert [(r.due_at.strftime("%H:%M"), r.manual, r.late_ms) for r in runs] == [
        ("12:03", True, None),
        ("12:03", False, 4500.0),
        ("12:02", False, 64_500.0),
        ("12:01", False, 10.0),
    ]
    # The API and `chronicle schedules runs --json` show it as well.
    items = [run_item(r) for r in runs]
    assert [i.late_ms for i in items] == [None, 4500.0, 64_500.0, 10.0]
    assert [_fmt_late(i.late_ms) for i in items] == ["-", "4.5 s", "1.1 min", "10 ms"]
