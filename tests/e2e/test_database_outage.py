"""A database outage in the middle of a load: every committed dispatch still ends.

The workers and the projector run as real processes on a database of their own; while they
work through jobs, that database refuses new connections and every open one is terminated
every 100 ms, for 6 s (longer than the event store's own retries, about 2 s). No job may
stay `waiting` or `running`, and none may succeed twice.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.jobs import DispatchRequest
from domain.job import Job, JobStatus
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, bootstrap
from tests.conftest import (
    RABBITMQ_URL,
    ScratchDatabase,
    require_service,
    scratch_database,
    wait_until,
)
from tests.e2e.conftest import Processes, delete_queues

pytestmark = pytest.mark.e2e

JOBS = 300


@pytest.fixture
def database() -> Iterator[ScratchDatabase]:
    """A database of its own, so cutting its connections touches nothing else."""
    with scratch_database("chronicle_outage") as database:
        yield database


def cut_off(database: ScratchDatabase, stop: threading.Event, counts: list[int]) -> None:
    """Refuse connections to `database` and terminate its connections every 100 ms, until
    `stop` is set; then let connections in again."""
    database.refuse_connections()
    try:
        while True:
            counts.append(database.cut_connections())
            if stop.wait(0.1):
                break
    finally:
        database.allow_connections()


def statuses(chronicle: Chronicle, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
    return {job_id: chronicle.events.repository.get(job_id) for job_id in job_ids}


def test_jobs_survive_a_database_outage_mid_load(database: ScratchDatabase, tmp_path: Path) -> None:
    require_service("RabbitMQ", RABBITMQ_URL)
    prefix = f"outage-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "CHRONICLE_DATABASE_URL": database.url,
        "CHRONICLE_BROKER_URL": RABBITMQ_URL,
        "CHRONICLE_QUEUE_PREFIX": prefix,
        "CHRONICLE_LOG_FORMAT": "json",
        "CHRONICLE_DATA_DIR": str(tmp_path / "data"),
        # Recovery acts within seconds here, so a stranded job shows up inside the deadline.
        "CHRONICLE_WORKER_LOST_AFTER_SECONDS": "10",
        "CHRONICLE_STRANDED_AFTER_SECONDS": "10",
    }
    procs = Processes(env, tmp_path)
    settings = Settings(database_url=database.url, broker_url=RABBITMQ_URL, queue_prefix=prefix)
    chronicle = bootstrap(settings)
    try:
        procs.start("projector")
        procs.start("worker", "--processes", "2", "--threads", "4")
        job_ids = chronicle.jobs.dispatch_many(
            [DispatchRequest(command_line="demo:sleep --seconds=0.5") for _ in range(JOBS)]
        )

        def some_running() -> bool:
            jobs = statuses(chronicle, job_ids[:40])
            return any(job.status is not JobStatus.WAITING for job in jobs.values())

        wait_until(some_running, 60, "the workers to start jobs")
        stop = threading.Event()
        cuts: list[int] = []
        cutter = threading.Thread(target=cut_off, args=(database, stop, cuts))
        cutter.start()
        time.sleep(6)  # the length of the outage, not a wait for something to happen
        stop.set()
        cutter.join()
        assert sum(cuts) > 0, "no connection was cut"

        def all_ended() -> bool:
            try:
                jobs = statuses(chronicle, job_ids)
            except Exception:
                return False  # our own connections were cut too
            return all(job.status.is_final for job in jobs.values())

        try:
            wait_until(all_ended, 150, f"all {JOBS} jobs to end")
        except AssertionError:
            jobs = statuses(chronicle, job_ids)
            stuck = [
                (str(job_id), job.status.value)
                for job_id, job in jobs.items()
                if not job.status.is_final
            ]
            raise AssertionError(f"{len(stuck)} jobs never ended: {stuck[:10]}") from None
        jobs = statuses(chronicle, job_ids)
        assert {job.status for job in jobs.values()} == {JobStatus.SUCCEEDED}
        # Exactly one success per job: the aggregate allows no second one, and no job was
        # recorded as succeeding after a lost attempt of the same run.
        for job_id in job_ids:
            succeeded = [
                e for e in chronicle.events.events.get(job_id) if isinstance(e, Job.Succeeded)
            ]
            assert len(succeeded) == 1, job_id
        for _, proc in procs.running:
            assert proc.poll() is None, "a process died during the outage"
    finally:
        procs.stop_all()
        print(procs.dump_logs())
        chronicle.close()
        delete_queues(prefix)
