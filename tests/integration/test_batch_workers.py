"""1,000-job batches run by 4 worker threads through the real relay, broker, executor and
runners, with jobs that fail at random (a fixed seed): counts are exact and each callback is
dispatched exactly once. SQLite with the in-process broker, and Postgres with RabbitMQ."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from uuid import UUID

import pytest

from application.batches import BatchRequest
from application.builtin_commands import register_builtins
from application.commands import CommandContext, CommandRegistry, Help
from application.event_log import topic
from application.jobs import DispatchRequest
from application.views.jobs import JobFilter
from domain.batch import CallbackKind, callback_job_id
from domain.job import Job
from infrastructure.broker import ChronicleBroker, DramatiqJobQueue, start_worker
from interfaces.bootstrap import Chronicle, RunnerThreads, bootstrap
from tests.integration.conftest import make_settings
from tests.integration.test_broker import memory, rabbitmq

pytestmark = pytest.mark.integration

__all__ = ["memory", "rabbitmq"]

JOBS = 1_000
SEED = 20_260_105
FAIL_RATE = 0.03


def fails(n: int, seed: int = SEED, rate: float = FAIL_RATE) -> bool:
    """Whether job `n` fails: random, but the same on every run."""
    return random.Random(f"{seed}:{n}").random() < rate


def flaky(
    ctx: CommandContext,
    n: Annotated[int, Help("the job's number in its batch")],
    *,
    seed: Annotated[int, Help("seed of the failures")] = SEED,
    rate: Annotated[float, Help("share of the jobs that fail")] = FAIL_RATE,
) -> dict[str, int]:
    """Work a few milliseconds, then fail if the seeded draw says so."""
    ctx.sleep(0.002)
    if fails(n, seed, rate):
        raise RuntimeError(f"job {n} fails (seed {seed})")
    return {"n": n}


@pytest.fixture(params=[("sqlite", "memory"), ("postgres", "rabbitmq")], ids="+".join)
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chronicle]:
    backend, broker_name = request.param
    broker: ChronicleBroker = request.getfixturevalue(broker_name)
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    registry.register("test:flaky", flaky, description="Fail at random, with a fixed seed")
    app = bootstrap(make_settings(backend, tmp_path, schema), registry=registry)
    queue = DramatiqJobQueue(broker)
    app.add_outbox(queue)
    threads = RunnerThreads(list(app.runners.values())).start()
    heartbeat = app.heartbeat()
    executor = app.executor(queue)
    worker = start_worker(
        broker,
        queues=["high", "default", "low"],
        threads=4,
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


def _statuses(app: Chronicle, batch_id: UUID) -> Counter[str]:
    statuses: Counter[str] = Counter()
    cursor = None
    while True:
        page = app.queries.list(
            JobFilter(tenant="default", batch_id=str(batch_id)),
            limit=500,
            cursor=cursor,
            now=app.clock.now(),
        )
        statuses.update(row.status for row in page.items)
        if page.next_cursor is None:
            return statuses
        cursor = page.next_cursor


def _settled(app: Chronicle, batch_id: UUID) -> bool:
    """Finished, with its callback jobs run, and every runner at the head of the log."""
    row = app.batch_queries.get_batch("default", batch_id)
    if row is None or not row.finished or row.finally_job_id is None:
        return False
    callbacks = [row.then_job_id, row.catch_job_id, row.finally_job_id]
    for job_id in filter(None, callbacks):
        job = app.queries.get("default", job_id)
        if job is None or job.status != "succeeded":
            return False
    return True


def _dispatches(app: Chronicle, batch_id: UUID) -> dict[str, int]:
    events = app.log.read(0, limit=10_000_000, topics=[topic(Job.Dispatched)])
    counted = Counter(logged.event.originator_id for logged in events)
    return {kind.value: counted[callback_job_id(batch_id, kind)] for kind in CallbackKind}


def test_thousand_job_batches_with_random_failures_count_exactly(running: Chronicle):
    app = running
    expected_failures = sum(fails(n) for n in range(JOBS))
    assert expected_failures > 0

    def create(name: str, *, allow_failures: bool, rate: float = FAIL_RATE) -> UUID:
        return app.batches.create(
            BatchRequest(
                name=name,
                jobs=[
                    DispatchRequest(command_line=f"test:flaky {n} --rate={rate}", max_attempts=1)
                    for n in range(JOBS)
                ],
                allow_failures=allow_failures,
                then=f"demo:echo '{name} then'",
                catch=f"demo:echo '{name} catch'",
                finally_=f"demo:echo '{name} finally'",
            )
        )

    started = time.monotonic()
    tolerant = create("tolerant", allow_failures=True)
    strict = create("strict", allow_failures=False)
    clean = create("clean", allow_failures=False, rate=0.0)
    batches = (tolerant, strict, clean)
    deadline = time.monotonic() + 120
    while not all(_settled(app, batch_id) for batch_id in batches):
        assert time.monotonic() < deadline, "the batches did not finish in time"
        time.sleep(0.2)
    # Let every runner reach the head once more: nothing may change any more.
    head = app.log.head()
    for runner in app.runners.values():
        while runner.store.position() < head:
            time.sleep(0.05)
    elapsed = time.monotonic() - started

    report = []
    for batch_id in batches:
        row = app.batch_queries.get_batch("default", batch_id)
        assert row is not None
        statuses = _statuses(app, batch_id)
        # Counts are exactly what the jobs' own rows say.
        assert sum(statuses.values()) == row.total == JOBS
        assert (row.succeeded, row.failed, row.cancelled_jobs, row.pending) == (
            statuses["succeeded"],
            statuses["failed"],
            statuses["cancelled"],
            0,
        )
        assert row.processed == JOBS
        assert row.progress == 100
        failed_rows = app.queries.list(
            JobFilter(tenant="default", batch_id=str(batch_id), status="failed"),
            limit=500,
            cursor=None,
            now=app.clock.now(),
        ).items
        assert app.batch_queries.batch_job_ids(batch_id, "failed") == sorted(
            row.id for row in failed_rows
        )
        dispatches = _dispatches(app, batch_id)
        if batch_id == clean:
            assert dispatches == {"then": 1, "catch": 0, "finally": 1}
            assert (row.succeeded, row.cancelled) == (JOBS, False)
        else:
            assert dispatches == {"then": 0, "catch": 1, "finally": 1}
        report.append(
            f"{row.name}: {row.total} jobs, {row.succeeded} succeeded, {row.failed} failed,"
            f" {row.cancelled_jobs} cancelled, progress {row.progress}%,"
            f" cancelled={row.cancelled}, callbacks dispatched {dispatches}"
        )
    tolerant_row = app.batch_queries.get_batch("default", tolerant)
    strict_row = app.batch_queries.get_batch("default", strict)
    assert tolerant_row is not None
    assert strict_row is not None
    # With allow_failures every job runs: exactly the seeded ones fail.
    assert (tolerant_row.failed, tolerant_row.succeeded) == (
        expected_failures,
        JOBS - expected_failures,
    )
    assert not tolerant_row.cancelled
    # Without it the first failure cancels the batch; jobs already running may still fail.
    assert strict_row.cancelled
    assert strict_row.failed >= 1
    assert strict_row.cancelled_jobs > 0
    print(f"\n{len(batches)} batches x {JOBS} jobs, 4 worker threads, {elapsed:.1f} s")
    for line in report:
        print("  " + line)
