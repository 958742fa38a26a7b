"""Pause and resume on each real broker with a real worker, wired as `chronicle worker` is:
outbox relay → Dramatiq worker (skipping paused queues) → executor → projections.

That a job of a paused queue does not start is shown by the worker's decision, not by
watching for a while: its consumer asked for work after the job's message was in the
broker and passed the queue over (`passed_over`), or its executor deferred the job."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.execution import Outcome
from application.jobs import DispatchRequest
from application.queue_control import PauseWatcher
from domain.job import Job
from infrastructure.broker import ChronicleBroker, DramatiqJobQueue, start_worker
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, RunnerThreads, bootstrap
from tests.conftest import wait_until
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


@dataclass
class Running:
    app: Chronicle
    pauses: PauseWatcher
    setup: ChronicleBroker
    #: Job ids whose message the worker took, in order.
    handled: list[UUID]
    #: What the executor decided for each message taken, by job.
    outcomes: dict[UUID, list[Outcome]]
    #: The queues the consumer was told to pass over, each time it asked before a take.
    looks: list[frozenset[str]]


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
    outcomes: dict[UUID, list[Outcome]] = {}
    looks: list[frozenset[str]] = []

    def handle(job_id: str) -> None:
        handled.append(UUID(job_id))
        outcomes.setdefault(UUID(job_id), []).append(executor.process(UUID(job_id)))

    def skipped() -> frozenset[str]:
        answer = pauses.skipped()
        looks.append(answer)
        return answer

    worker = start_worker(
        any_broker,
        queues=["high", "default", "low"],
        threads=2,
        handler=handle,
        paused=skipped,
    )
    try:
        yield Running(app, pauses, any_broker, handled, outcomes, looks)
    finally:
        worker.stop(10)
        pauses.stop()
        heartbeat.stop()
        threads.stop()
        queue.close()
        app.close()


def passed_over(running: Running, queue: str, count: int) -> None:
    """Wait until `count` messages wait in `queue` and the consumer, asking for work twice
    since they got there (one full take in between), was told to pass `queue` over each time:
    the decision not to start them, taken with them in sight."""
    wait_until(lambda: in_broker(running.setup, queue) == count)
    seen = len(running.looks)
    wait_until(lambda: len(running.looks) >= seen + 2)
    assert all(queue in look for look in running.looks[seen : seen + 2])
    assert in_broker(running.setup, queue) == count


def deferred(running: Running, job_ids: list[UUID]) -> bool:
    """Whether the executor took the message of each job and deferred it."""
    return all(Outcome.DEFERRED in running.outcomes.get(job_id, []) for job_id in job_ids)


def started(app: Chronicle, job_ids: list[UUID]) -> list[UUID]:
    """The jobs with a `Started` event in the log (not waiting for any projection)."""
    return [
        job_id
        for job_id in job_ids
        if any(isinstance(e, Job.Started) for e in app.events.events.get(job_id))
    ]


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
    wait_until(lambda: running.pauses.skipped() == {"default"})
    held = dispatch(app, "default", 3)
    free = dispatch(app, "high", 3)
    wait_until(lambda: statuses(app, free) == {"succeeded"})
    passed_over(running, "default", 3)
    assert started(app, held) == []
    wait_until(lambda: waiting(app, "default") == 3)  # the read models caught up
    assert statuses(app, held) == {"waiting"}
    assert waiting(app, "default") == 3  # counted as waiting, not delayed or running
    # Not taken and deferred: their messages never left the broker.
    assert not set(held) & set(running.handled)
    assert in_broker(running.setup, "default") == 3

    app.queue_control.resume(tenant="default", queue="default", by="ops")
    wait_until(lambda: statuses(app, held) == {"succeeded"})
    assert waiting(app, "default") == 0


def test_a_pause_once_held_lets_no_job_of_the_queue_start(running: Running):
    """The pause is answered once the worker acts on it: a job dispatched right after never
    starts, even though the projector has not projected the pause yet."""
    app = running.app
    for queue in ("low", "default", "high"):
        app.queue_control.pause(tenant="default", queue=queue, by="ops")
        assert app.queue_control.wait_until_held(app.log.head(), timeout=10) == []
        held = dispatch(app, queue, 2)
        passed_over(running, queue, 2)
        events = [type(e).__name__ for job_id in held for e in app.events.events.get(job_id)]
        assert "Started" not in events, f"a job of paused {queue} started"
        app.queue_control.resume(tenant="default", queue=queue, by="ops")
        wait_until(lambda held=held: statuses(app, held) == {"succeeded"})


def test_maintenance_pause_stops_every_queue_until_lifted(running: Running):
    app = running.app
    app.queue_control.pause(tenant="default", queue=None, by="ops", reason="db upgrade")
    wait_until(lambda: running.pauses.skipped() == {"high", "default", "low"})
    held = dispatch(app, "high", 2) + dispatch(app, "low", 2)
    passed_over(running, "high", 2)
    passed_over(running, "low", 2)
    assert started(app, held) == []
    wait_until(lambda: statuses(app, held) == {"waiting"})  # the read model caught up
    assert statuses(app, held) == {"waiting"}
    assert (waiting(app, "high"), waiting(app, "low")) == (2, 2)
    assert running.handled == []

    app.queue_control.resume(tenant="default", queue=None, by="ops")
    wait_until(lambda: statuses(app, held) == {"succeeded"})


@pytest.mark.parametrize("any_broker", ["memory"], indirect=True)
def test_one_tenants_pause_does_not_stop_another_tenants_jobs(running: Running):
    app = running.app
    app.queue_control.pause(tenant="acme", queue="default", by="alice")
    wait_until(lambda: running.pauses.is_paused("acme", "default"))
    theirs = dispatch(app, "default", 2, tenant="acme")
    ours = dispatch(app, "default", 2)
    wait_until(lambda: statuses(app, ours) == {"succeeded"})
    wait_until(lambda: deferred(running, theirs))  # the executor's decision on each
    assert started(app, theirs) == []
    wait_until(lambda: waiting(app, "default", tenant="acme") == 2)  # the read model caught up
    assert statuses(app, theirs, tenant="acme") == {"waiting"}
    assert waiting(app, "default", tenant="acme") == 2
    # `default` stays consumed for the other tenant: acme's messages are taken and deferred.
    assert set(theirs) <= set(running.handled)

    app.queue_control.resume(tenant="acme", queue="default", by="alice")
    # Their messages were deferred by the executor: they come back within its recheck delay.
    wait_until(lambda: statuses(app, theirs, tenant="acme") == {"succeeded"}, timeout=30)


def test_worker_takes_no_message_from_a_queue_named_by_paused(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
):
    """The consumer alone: a paused higher queue is passed over as if empty, until unpaused."""
    paused = [frozenset({"high"})]
    looks: list[frozenset[str]] = []

    def paused_now() -> frozenset[str]:
        looks.append(paused[0])
        return paused[0]

    recorder = Recorder()
    worker = start_worker(
        any_broker,
        queues=["high", "default", "low"],
        threads=2,
        handler=recorder,
        paused=paused_now,
    )
    try:
        high = enqueue_many(job_queue, "high", 3)
        low = enqueue_many(job_queue, "low", 2)
        # The low jobs start only if `high`, already holding its messages, was passed over.
        recorder.wait_started(2)
        # And it goes on passing it over: two more asks, one full take in between.
        seen = len(looks)
        wait_until(lambda: len(looks) >= seen + 2)
        assert set(recorder.started) == set(low)
        assert in_broker(any_broker, "high") == 3
        paused[0] = frozenset()
        recorder.wait_started(5)
        assert set(recorder.started[2:]) == set(high)
    finally:
        worker.stop(10)
