"""Group commit on real storage: concurrent saves share transactions, conflicts stay isolated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from application.group_commit import GroupCommitter
from domain.job import Job
from domain.shared import ConflictError
from interfaces.bootstrap import Chronicle

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def new_job() -> Job:
    return Job.dispatch(
        job_id=uuid4(),
        command="demo:noop",
        command_line="demo:noop",
        arguments={},
        options={},
        at=NOW,
    )


def test_concurrent_saves_all_commit_in_fewer_transactions(chronicle: Chronicle):
    committer = GroupCommitter(chronicle.events)
    transactions = [0]
    original = chronicle.events.save

    def counting_save(*objs):
        transactions[0] += 1
        return original(*objs)

    chronicle.events.save = counting_save  # type: ignore[method-assign]
    jobs = [new_job() for _ in range(200)]
    barrier = threading.Barrier(8)

    def work(chunk: list[Job]) -> None:
        barrier.wait()
        for job in chunk:
            committer.save(*job.collect_events())

    threads = [threading.Thread(target=work, args=(jobs[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert chronicle.log.head() == 200
    for job in jobs:
        assert chronicle.events.repository.get(job.id).version == 1
    assert transactions[0] < 200


def test_conflict_in_a_shared_batch_fails_only_the_loser(chronicle: Chronicle):
    job = new_job()
    chronicle.events.save(job)
    committer = GroupCommitter(chronicle.events)
    copies = [chronicle.events.repository.get(job.id) for _ in range(2)]
    for copy in copies:
        copy.start(worker_id="w", at=NOW)
    bystanders = [new_job() for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def save(agg: Job) -> None:
        barrier.wait()
        try:
            committer.save(*agg.collect_events())
        except ConflictError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(a,)) for a in [*copies, *bystanders]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1
    assert chronicle.events.repository.get(job.id).version == 2
    for other in bystanders:
        assert chronicle.events.repository.get(other.id).version == 1
