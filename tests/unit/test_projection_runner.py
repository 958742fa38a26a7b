"""The projection runner's decisions on the in-memory log and store: batches, topic filters
and the short-page rule, catch-up, rows and position committed together, rebuild into a
shadow then swap, and errors retried with back-off. The SQL stores are tested in
tests/integration/test_pipeline.py."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest

from application import projections
from application.event_log import LoggedEvent, topic
from application.jobs import DispatchRequest, JobService
from application.projections import ProjectionRunner
from domain.job import Job
from tests.unit.fakes import (
    FakeClock,
    MemoryEventLog,
    MemoryProjectionStore,
    Tables,
    demo_registry,
    memory_events,
)


class Seen:
    """The test projection's writer: one row per event it was given, by log position."""

    def __init__(self, tables: Tables) -> None:
        self.rows = tables.setdefault("seen", {})

    def add(self, position: int, name: str) -> None:
        assert position not in self.rows, f"position {position} written twice"
        self.rows[position] = {"event": name}


class SeenProjection:
    """Writes a row per event; fails on the `process` calls numbered in `failing` (from 1)."""

    name = "seen"

    def __init__(self, topics: Sequence[str] = (), failing: Sequence[int] = ()) -> None:
        self.topics = tuple(topics)
        self.failing = set(failing)
        self.batches: list[list[int]] = []

    def process(self, events: Sequence[LoggedEvent], writer: Seen) -> None:
        self.batches.append([e.position for e in events])
        for logged in events:
            writer.add(logged.position, type(logged.event).__qualname__)
        if len(self.batches) in self.failing:
            raise RuntimeError("projection bug")


class StopAfter(threading.Event):
    """A stop event whose `wait` returns at once, recording the delay asked; it is set at
    the `waits`-th wait."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.waits = waits
        self.delays: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(timeout)
        if len(self.delays) >= self.waits:
            self.set()
        return self.is_set()


class SaidLog:
    """Stands for the module's logger: keeps what was said (rendering tracebacks is slow)."""

    def __init__(self) -> None:
        self.said: list[tuple[str, dict[str, Any]]] = []

    def exception(self, event: str, **fields: Any) -> None:
        self.said.append((event, fields))

    info = exception


@pytest.fixture
def said(monkeypatch: pytest.MonkeyPatch) -> SaidLog:
    log = SaidLog()
    monkeypatch.setattr(projections, "log", log)
    return log


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        self.clock = FakeClock()
        self.jobs = JobService(self.events, demo_registry(), self.clock)
        self.log = MemoryEventLog(self.events)
        self.store = MemoryProjectionStore("seen", Seen)

    def dispatch(self, count: int) -> list[UUID]:
        return self.jobs.dispatch_many([DispatchRequest(command_line="demo:noop")] * count)

    def cancel(self, job_id: UUID) -> None:
        self.jobs.cancel(job_id, tenant="default", by="op")

    def runner(self, projection: SeenProjection, **options: Any) -> ProjectionRunner[Seen]:
        return ProjectionRunner(projection, self.store, self.log, **options)

    def rows(self, store: MemoryProjectionStore[Seen] | None = None) -> dict[int, str]:
        tables = (store or self.store).tables
        return {position: row["event"] for position, row in tables.get("seen", {}).items()}


@pytest.fixture
def world() -> World:
    return World()


def test_a_step_processes_one_batch_and_commits_its_rows_with_its_position(world: World):
    world.dispatch(5)
    projection = SeenProjection()
    runner = world.runner(projection, batch_size=2)
    assert runner.step() == 2
    assert (world.store.position(), sorted(world.rows())) == (2, [1, 2])
    assert runner.step() == 2
    assert runner.step() == 1
    assert runner.step() == 0
    assert projection.batches == [[1, 2], [3, 4], [5]]
    assert world.store.position() == 5
    assert set(world.rows().values()) == {"Job.Dispatched"}


def test_catch_up_processes_every_event_to_the_head_in_batches(world: World):
    world.dispatch(7)
    projection = SeenProjection()
    assert world.runner(projection, batch_size=3).catch_up() == 7
    assert projection.batches == [[1, 2, 3], [4, 5, 6], [7]]
    assert sorted(world.rows()) == list(range(1, 8))


def test_a_topic_filter_gives_only_its_events_and_a_short_page_reaches_the_head(world: World):
    """Positions 1-6 are dispatches, 7-9 cancels, 10 a dispatch. Reading cancels two at a
    time: a full page may have more after it (the position stops at its last event); a
    short page means nothing else matches up to the head (the position moves to it)."""
    jobs = world.dispatch(6)
    for job_id in jobs[:3]:
        world.cancel(job_id)
    world.dispatch(1)
    projection = SeenProjection(topics=[topic(Job.Cancelled)])
    runner = world.runner(projection, batch_size=2)
    assert runner.step() == 8
    assert world.store.position() == 8
    assert runner.step() == 2
    assert world.store.position() == 10
    assert runner.step() == 0
    assert projection.batches == [[7, 8], [9]]
    assert set(world.rows().values()) == {"Job.Cancelled"}


def test_a_batch_with_no_matching_event_moves_the_position_without_processing(world: World):
    world.dispatch(4)
    projection = SeenProjection(topics=[topic(Job.Cancelled)])
    assert world.runner(projection).step() == 4
    assert world.store.position() == 4
    assert projection.batches == []


def test_a_failed_batch_commits_neither_its_rows_nor_its_position(world: World):
    world.dispatch(5)
    projection = SeenProjection(failing=[1])
    runner = world.runner(projection)
    with pytest.raises(RuntimeError):
        runner.step()
    assert (world.store.position(), world.rows()) == (0, {})
    # The next run resumes from the committed position: every event lands once.
    assert runner.catch_up() == 5
    assert sorted(world.rows()) == [1, 2, 3, 4, 5]


def test_rebuild_replays_into_a_shadow_while_live_serves_then_swaps_it_in(world: World):
    world.dispatch(5)
    projection = SeenProjection()
    runner = world.runner(projection, batch_size=2)
    runner.catch_up()
    # What an old definition of the read model left: gone once rebuilt.
    world.store.tables["seen"][99] = {"event": "stale"}
    live_during: list[tuple[int, int]] = []
    progress: list[tuple[int, int]] = []
    late: list[UUID] = []

    def seen(done: int, total: int) -> None:
        progress.append((done, total))
        live_during.append((world.store.position(), len(world.rows())))
        if progress[-2:] == [(5, 5), (5, 5)] and not late:
            # Saved after the replay's last step, before the swap: the swap takes it in.
            late.extend(world.dispatch(1))

    assert runner.rebuild(progress=seen) == 6
    assert progress == [(2, 5), (4, 5), (5, 5), (5, 5)]
    assert set(live_during) == {(5, 6)}  # the live read model served as it was
    assert world.store.position() == 6
    assert sorted(world.rows()) == [1, 2, 3, 4, 5, 6]
    # The runner follows on from the swapped-in position: nothing is projected twice.
    before = len(projection.batches)
    assert runner.catch_up() == 6
    assert len(projection.batches) == before


def test_errors_are_retried_with_back_off_reset_by_a_success(world: World, said: SaidLog):
    """Calls 1, 2 and 4 of the projection fail: waits of 1 s, 2 s, then 1 s again; once at
    the head the runner waits on the log, then gathers what arrived."""
    world.dispatch(4)
    projection = SeenProjection(failing=[1, 2, 4])
    runner = world.runner(projection, batch_size=2, gather_seconds=0.02)
    stop = StopAfter(waits=4)
    runner.run(stop, idle_timeout=1.5)
    assert stop.delays == [1.0, 2.0, 1.0, 0.02]
    assert said.said == [
        ("projection failed, retrying", {"projection": "seen", "delay": delay})
        for delay in (1.0, 2.0, 1.0)
    ]
    assert world.log.waits == [(4, 1.5)]
    assert sorted(world.rows()) == [1, 2, 3, 4]


def test_the_back_off_doubles_up_to_thirty_seconds(world: World, said: SaidLog):
    world.dispatch(1)
    runner = world.runner(SeenProjection(failing=range(1, 100)))
    stop = StopAfter(waits=7)
    runner.run(stop)
    assert stop.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert world.store.position() == 0
