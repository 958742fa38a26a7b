"""Pause and resume on each real broker with a real worker, wired as `chronicle worker` is:
outbox relay → Dramatiq worker (skipping paused queues) → executor → projections."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.jobs import DispatchRequest
from application.queue_control import PauseWatcher
from infrastructure.broker import ChronicleBroker, DramatiqJobQueue, start_worker
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, RunnerThreads, bootstrap
from tests.integration.test_broker import (
    Recorder,
    any_broker,
    enqueue_many,
    job_queue,
    memory,
    rabbitmq,
    redis_broker,
)
from tests.integration.test_broker import waiting as in_broker

pytestmark = pytest.mark.integration

__all__ = ["any_broker", "job_queue", "memory", "rabbitmq", "redis_broker"]

# How long paused jobs are watched to stay waiting.
HOLD_SECONDS = 2.0


@dataclass
class Running:
    app: Chronicle
    pauses: PauseWatcher
    setup: ChronicleBroker
    #: Job ids whose message the worker took, in order.
    handled: list[UUID]


@pytest.fixture
def running(any_broker: ChronicleBroker, tmp_path: Path) -> Iterator[Running]:
    registry = CommandRegistry()
    register_builtins(registry)
    app = bootstrap(Settings(data_dir=tmp_path / "data"), registry=registry)
    queue = DramatiqJobQueue(any_broker)
    app.add_outbox(queue)
    threads = RunnerThreads(list(app.runners.values())).start()
    pauses = app.pause_watcher()
    executor = app.executor(queue, pauses=pauses)
    heartbeat = app.heartbeat(executor, pauses)
    handled: list[UUID] = []

    def handle(job_id: str) -> None:
        handled.append(UUID(job_id))
        executor.process(UUID(job_id))

    worker = start_worker(
        any_broker,
        queues=["high", "default", "low"],
        threads=2,
        handler=handle,
        paused=pauses.skipped,
    )
    try:
        yield Running(app, pauses, any_broker, handled)
    finally:
        worker.stop(10)
        pauses.stop()
        heartbeat.stop()
        threads.stop()
        queue.close()
        app.close()


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def statuses(app: Chronicle, job_ids: list[UUID], tenant: str = "default") -> set[str | None]:
    rows = [app.queries.get(tenant, job_id) for job_id in job_ids]
    return {row.status if row else None for row in rows}


def waiting(app: Chronicle, queue: str, tenant: str = "default") -> int:
    counts = app.queries.queue_stats(tenant, app.clock.now()).queues
    return next(q.waiting for q in counts if q.queue == queue)


def dispatch(app: Chronicle, queue: str, count: int, tenant: str = "default") -> list[UUID]:
    return app.jobs.dispatch_many(
        [DispatchRequest(command_line="demo:noop", queue=queue, tenant=tenant)] * count
    )


def test_paused_queue_waits_while_others_run_then_runs_on_resume(running: Running):
    app = running.app
    app.queue_control.pause(tenant="default", queue="default", by="ops", reason="deploy")
    wait_for(lambda: running.pauses.skipped() == {"default"})
    held = dispatch(app, "default", 3)
    free = dispatch(app, "high", 3)
    wait_for(lambda: statuses(app, free) == {"succeeded"})
    time.sleep(HOLD_SECONDS)
    assert statuses(app, held) == {"waiting"}
    assert waiting(app, "default") == 3  # counted as waiting, not delayed or running
    # Not taken and deferred: their messages never left the broker.
    assert not set(held) & set(running.handled)
    assert in_broker(running.setup, "default") == 3

    app.queue_control.resume(tenant="default", queue="default", by="ops")
    wait_for(lambda: statuses(app, held) == {"succeeded"})
    assert waiting(app, "default") == 0


def test_a_pause_once_held_lets_no_job_of_the_queue_start(running: Running):
    """The pause is answered once the worker acts on it: a job dispatched right after never
    starts, even though the projector has not projected the pause yet."""
    app = running.app
    for queue in ("low", "default", "high"):
        app.queue_control.pause(tenant="default", queue=queue, by="ops")
        assert app.queue_control.wait_until_held(app.log.head(), timeout=10) == []
        held = dispatch(app, queue, 2)
        time.sleep(HOLD_SECONDS / 2)
        events = [type(e).__name__ for job_id in held for e in app.events.events.get(job_id)]
        assert "Started" not in events, f"a job of paused {queue} started"
        app.queue_control.resume(tenant="default", queue=queue, by="ops")
        wait_for(lambda held=held: statuses(app, held) == {"succeeded"})


def test_maintenance_pause_stops_every_queue_until_lifted(running: Running):
    app = running.app
    app.queue_control.pause(tenant="default", queue=None, by="ops", reason="db upgrade")
    wait_for(lambda: running.pauses.skipped() == {"high", "default", "low"})
    held = dispatch(app, "high", 2) + dispatch(app, "low", 2)
    time.sleep(HOLD_SECONDS)
    assert statuses(app, held) == {"waiting"}
    assert (waiting(app, "high"), waiting(app, "low")) == (2, 2)
    assert running.handled == []

    app.queue_control.resume(tenant="default", queue=None, by="ops")
    wait_for(lambda: statuses(app, held) == {"succeeded"})


@pytest.mark.parametrize("any_broker", ["memory"], indirect=True)
def test_one_tenants_pause_does_not_stop_another_tenants_jobs(running: Running):
    app = running.app
    app.queue_control.pause(tenant="acme", queue="default", by="alice")
    wait_for(lambda: running.pauses.is_paused("acme", "default"))
    theirs = dispatch(app, "default", 2, tenant="acme")
    ours = dispatch(app, "default", 2)
    wait_for(lambda: statuses(app, ours) == {"succeeded"})
    time.sleep(HOLD_SECONDS)
    assert statuses(app, theirs, tenant="acme") == {"waiting"}
    assert waiting(app, "default", tenant="acme") == 2
    # `default` stays consumed for the other tenant: acme's messages are taken and deferred.
    assert set(theirs) <= set(running.handled)

    app.queue_control.resume(tenant="acme", queue="default", by="alice")
    # Their messages were deferred by the executor: they come back within its recheck delay.
    wait_for(lambda: statuses(app, theirs, tenant="acme") == {"succeeded"}, timeout=30)


def test_worker_takes_no_message_from_a_queue_named_by_paused(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
):
    """The consumer alone: a paused higher queue is passed over as if empty, until unpaused."""
    paused = [frozenset({"high"})]
    recorder = Recorder()
    worker = start_worker(
        any_broker,
        queues=["high", "default", "low"],
        threads=2,
        handler=recorder,
        paused=lambda: paused[0],
    )
    try:
        high = enqueue_many(job_queue, "high", 3)
        low = enqueue_many(job_queue, "low", 2)
        recorder.wait_started(2)
        time.sleep(1.0)
        assert set(recorder.started) == set(low)
        assert in_broker(any_broker, "high") == 3
        paused[0] = frozenset()
        recorder.wait_started(5)
        assert set(recorder.started[2:]) == set(high)
    finally:
        worker.stop(10)
