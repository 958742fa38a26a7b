"""The scheduler on real storage with a fake clock: a duplicate tick refused by the store,
and the run history read model. Its decisions (overlap, missed and late ticks, edits and
pauses followed, DST) are tested on in-memory storage in
tests/unit/test_scheduler_decisions.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
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
