"""Bulk retry, forget and comments as use cases, on in-memory event storage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.commands import CommandRegistry
from application.event_log import ChronicleEvents
from application.jobs import JobService
from application.views.jobs import FailedJobFilter
from domain.job import Job, JobStatus
from domain.shared import InvalidTransitionError, ValidationError
from tests.unit.fakes import FakeClock

ALL = FailedJobFilter("default")


class ListedFailed:
    """FailedJobIds over a fixed list: the read model as it was when it last projected."""

    def __init__(self, ids: list[UUID]) -> None:
        self.rows = list(enumerate(ids, start=1))
        self.pages: list[tuple[int, int]] = []

    def failed_ids(
        self, flt: FailedJobFilter, *, after_seq: int, limit: int
    ) -> list[tuple[int, UUID]]:
        self.pages.append((after_seq, limit))
        return [(seq, job_id) for seq, job_id in self.rows if seq > after_seq][:limit]


@pytest.fixture
def events() -> ChronicleEvents:
    return ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def save_failed(events: ChronicleEvents, clock: FakeClock, count: int, **kwargs: Any) -> list[UUID]:
    jobs = []
    for _ in range(count):
        job = Job.dispatch(
            job_id=uuid4(),
            command="demo:fail",
            command_line="demo:fail",
            arguments={},
            options={},
            at=clock.now(),
            max_attempts=1,
            **kwargs,
        )
        job.start(worker_id="w", at=clock.now())
        job.fail(
            error_type="RuntimeError",
            message="boom",
            traceback="",
            output="",
            duration_ms=1,
            at=clock.now(),
            random_unit=0.5,
        )
        jobs.append(job)
    events.save(*jobs)
    return [job.id for job in jobs]


def service(events: ChronicleEvents, clock: FakeClock, ids: list[UUID]) -> JobService:
    return JobService(events, CommandRegistry(), clock, failed_jobs=ListedFailed(ids))


def last_event(events: ChronicleEvents, job_id: UUID) -> Any:
    return list(events.events.get(job_id))[-1]


def test_bulk_retry_walks_the_list_a_page_at_a_time(events: ChronicleEvents, clock: FakeClock):
    ids = save_failed(events, clock, 7)
    source = ListedFailed(ids)
    jobs = JobService(events, CommandRegistry(), clock, failed_jobs=source)
    clock.advance(60)

    outcome = jobs.retry_failed(ALL, by="op", page_size=3)

    assert (outcome.retried, outcome.skipped) == (7, 0)
    # The last page is short: no further query.
    assert source.pages == [(0, 3), (3, 3), (6, 3)]
    for job_id in ids:
        retried = last_event(events, job_id)
        assert isinstance(retried, Job.Retried)
        assert (retried.by, retried.previous_attempts, retried.at) == ("op", 1, clock.now())
        assert jobs.get(job_id, tenant="default").status is JobStatus.WAITING


def test_bulk_retry_skips_what_is_no_longer_failed_or_not_the_tenants(
    events: ChronicleEvents, clock: FakeClock
):
    ids = save_failed(events, clock, 3)
    [theirs] = save_failed(events, clock, 1, tenant="acme")
    unknown = uuid4()
    jobs = service(events, clock, [*ids, theirs, unknown])
    jobs.retry(ids[0], tenant="default", by="bob")
    jobs.forget(ids[1], tenant="default", by="bob")

    outcome = jobs.retry_failed(ALL, by="op")

    assert (outcome.retried, outcome.skipped) == (1, 4)
    assert isinstance(last_event(events, ids[1]), Job.Forgotten)
    assert jobs.get(theirs, tenant="acme").status is JobStatus.FAILED


def test_a_job_changed_between_load_and_save_is_decided_again(
    events: ChronicleEvents, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    ids = save_failed(events, clock, 5)
    jobs = service(events, clock, ids)
    original = events.repository.get

    def forget(job: Job) -> None:
        job.forget(by="bob", at=clock.now())

    def comment(job: Job) -> None:
        job.add_comment(comment_id=uuid4(), author="bob", text="looking", at=clock.now())

    # Another operator saves these two jobs right after the bulk retry has loaded them.
    races: dict[UUID, Callable[[Job], None]] = {ids[1]: forget, ids[3]: comment}

    def racing_get(job_id: UUID, *args: Any, **kwargs: Any) -> Any:
        job = original(job_id, *args, **kwargs)
        race = races.pop(job_id, None)
        if race is not None:
            theirs = original(job_id)
            race(theirs)
            events.save(theirs)
        return job

    monkeypatch.setattr(events.repository, "get", racing_get)

    outcome = jobs.retry_failed(ALL, by="op", page_size=10)

    # The page's one transaction failed; each job was then saved alone: the forgotten one is
    # skipped, the commented one (still failed) is loaded again and retried.
    assert (outcome.retried, outcome.skipped) == (4, 1)
    statuses = [jobs.get(job_id, tenant="default").status for job_id in ids]
    assert statuses == [JobStatus.WAITING] * 1 + [JobStatus.FAILED] + [JobStatus.WAITING] * 3
    kinds = [type(e).__name__ for e in events.events.get(ids[3])]
    assert kinds[-2:] == ["CommentAdded", "Retried"]
    assert kinds.count("Retried") == 1


def test_page_size_must_be_sensible(events: ChronicleEvents, clock: FakeClock):
    jobs = service(events, clock, [])
    for size in (0, 5001):
        with pytest.raises(ValidationError, match="page_size"):
            jobs.retry_failed(ALL, by="op", page_size=size)


def test_a_job_service_without_a_failed_list_cannot_bulk_retry(
    events: ChronicleEvents, clock: FakeClock
):
    jobs = JobService(events, CommandRegistry(), clock)
    with pytest.raises(RuntimeError, match="failed-jobs source"):
        jobs.retry_failed(ALL, by="op")


def test_forget_and_comment_record_who(events: ChronicleEvents, clock: FakeClock):
    [job_id] = save_failed(events, clock, 1)
    jobs = service(events, clock, [job_id])
    comment = jobs.comment(job_id, tenant="default", author="alice", text="disk full")
    assert (comment.author, comment.text, comment.at) == ("alice", "disk full", clock.now())
    added = last_event(events, job_id)
    assert isinstance(added, Job.CommentAdded)
    assert (added.comment_id, added.author) == (comment.id, "alice")

    jobs.forget(job_id, tenant="default", by="bob")
    forgotten = last_event(events, job_id)
    assert isinstance(forgotten, Job.Forgotten)
    assert forgotten.by == "bob"
    with pytest.raises(InvalidTransitionError, match="already forgotten"):
        jobs.forget(job_id, tenant="default", by="bob")


def test_failed_filter_checks_its_values():
    with pytest.raises(ValidationError, match="queue") as queue:
        FailedJobFilter("default", queue="urgent")
    assert queue.value.field == "queue"
    start = FakeClock().now()
    with pytest.raises(ValidationError, match="before failed_to") as backwards:
        FailedJobFilter("default", failed_from=start, failed_to=start - timedelta(seconds=1))
    assert backwards.value.field == "failed_from"
    with pytest.raises(ValidationError, match="timezone-aware") as naive:
        FailedJobFilter("default", failed_to=start.replace(tzinfo=None))
    assert naive.value.field == "failed_to"
