"""Jobs run end to end on each real broker: outbox relay → Dramatiq worker → executor →
projections, all in this process, on the SQLite store (the Postgres path is in e2e/)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.jobs import DispatchRequest
from infrastructure.broker import ChronicleBroker, DramatiqJobQueue, start_worker
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, RunnerThreads, bootstrap
from tests.conftest import wait_until
from tests.integration.test_broker import any_broker, memory, rabbitmq, redis_broker

pytestmark = pytest.mark.integration

__all__ = ["any_broker", "memory", "rabbitmq", "redis_broker"]


@pytest.fixture
def running(any_broker: ChronicleBroker, tmp_path: Path) -> Iterator[Chronicle]:
    registry = CommandRegistry()
    register_builtins(registry)
    app = bootstrap(Settings(data_dir=tmp_path / "data"), registry=registry)
    queue = DramatiqJobQueue(any_broker)
    app.add_outbox(queue)
    threads = RunnerThreads(list(app.runners.values())).start()
    heartbeat = app.heartbeat()
    executor = app.executor(queue)
    worker = start_worker(
        any_broker,
        queues=["high", "default", "low"],
        threads=2,
        handler=lambda job_id: executor.process(UUID(job_id)) and None,
    )
    try:
        yield app
    finally:
        worker.stop(10)
        heartbeat.stop()
        threads.stop()
        queue.close()
        app.close()


def status_of(app: Chronicle, job_id: UUID) -> str | None:
    row = app.queries.get("default", job_id)
    return row.status if row else None


def test_jobs_succeed_retry_and_time_out_on_each_broker(running: Chronicle):
    app = running
    echo = app.jobs.dispatch(DispatchRequest(command_line="demo:echo hi", queue="high"))
    flaky = app.jobs.dispatch(
        DispatchRequest(command_line="demo:fail --times=1", backoff_seconds=0.2)
    )
    slow = app.jobs.dispatch(
        DispatchRequest(command_line="demo:sleep --seconds=20", timeout_seconds=0.3, max_attempts=1)
    )
    wait_until(lambda: status_of(app, echo) == "succeeded")
    wait_until(lambda: status_of(app, flaky) == "succeeded")
    wait_until(lambda: status_of(app, slow) == "failed")
    flaky_row = app.queries.get("default", flaky)
    assert flaky_row is not None
    assert flaky_row.attempts == 2
    slow_row = app.queries.get("default", slow)
    assert slow_row is not None
    assert slow_row.last_error_type == "JobTimedOutError"
    assert slow_row.duration_ms is not None
    assert slow_row.duration_ms < 5000


def test_delayed_job_waits_for_its_time(running: Chronicle):
    app = running
    started = time.monotonic()
    job_id = app.jobs.dispatch(DispatchRequest(command_line="demo:noop", delay_seconds=1.0))
    wait_until(lambda: status_of(app, job_id) == "succeeded")
    assert time.monotonic() - started >= 1.0
