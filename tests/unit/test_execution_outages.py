"""The executor when the database is unreachable: no message dropped, no outcome lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError

from application import retrying
from application.execution import JobExecutor, Outcome
from application.jobs import DispatchRequest, JobService
from application.ports import HandBackError, WorkerBeat
from domain.job import Job, JobStatus
from tests.unit.fakes import FakeClock, FakeQueue, NoTimeLimit, demo_registry, memory_events


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrying, "FIRST_DELAY", 0.001)
    monkeypatch.setattr(retrying, "MAX_DELAY", 0.005)


class Flaky:
    """Wraps an operation: the next `failures` calls raise the store's OperationalError;
    with `commit_then_fail`, the call is made and then reported as failed."""

    def __init__(self, operation: Callable[..., Any]) -> None:
        self.operation = operation
        self.failures = 0
        self.commit_then_fail = False
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            if self.commit_then_fail:
                self.operation(*args)
            raise OperationalError("terminating connection due to administrator command")
        return self.operation(*args)


class Beats:
    def __init__(self) -> None:
        self.beats: dict[str, WorkerBeat] = {}

    def beat(self, worker_id: str, at: datetime, running: frozenset[UUID] = frozenset()) -> None:
        self.beats[worker_id] = WorkerBeat(worker_id, at, running)

    def latest(self, worker_id: str) -> WorkerBeat | None:
        return self.beats.get(worker_id)


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        registry = demo_registry()
        self.clock = FakeClock()
        self.jobs = JobService(self.events, registry, self.clock)
        self.queue = FakeQueue()
        self.save = Flaky(self.events.save)
        self.beats = Beats()
        self.stopping = threading.Event()
        self.executor = JobExecutor(
            self.events,
            registry,
            self.clock,
            self.queue,
            NoTimeLimit(),
            worker_id="w-1",
            save=self.save,
            heartbeats=self.beats,
            stopping=self.stopping,
            hand_back_after=0.2,
        )

    def job(self, job_id: UUID) -> Job:
        job: Job = self.events.repository.get(job_id)
        return job


@pytest.fixture
def world() -> World:
    return World()


def test_a_start_that_fails_for_a_while_is_retried_and_the_job_runs(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    world.save.failures = 3
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    assert world.job(job_id).status is JobStatus.SUCCEEDED
    assert world.executor.running() == frozenset()


def test_a_start_committed_although_its_save_failed_is_run_not_skipped(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    world.save.failures = 1
    world.save.commit_then_fail = True
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    job = world.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)


def test_an_outage_longer_than_the_hold_hands_the_message_back(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    world.save.failures = 10_000
    with pytest.raises(HandBackError) as raised:
        world.executor.process(job_id)
    assert raised.value.delay_seconds > 0
    assert world.job(job_id).status is JobStatus.WAITING
    assert world.executor.running() == frozenset()
    # Once the database answers again, the message handed back runs the job.
    world.save.failures = 0
    assert world.executor.process(job_id) is Outcome.SUCCEEDED


def test_an_outcome_is_saved_once_the_database_answers_again(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    original = world.save.operation
    saves: list[int] = []

    def fail_outcome(*events: Any) -> Any:
        saves.append(len(saves))
        # The first save (Started) goes through; the outcome fails 20 times, then passes.
        if 1 <= len(saves) <= 20:
            raise OperationalError("server closed the connection unexpectedly")
        return original(*events)

    world.save.operation = fail_outcome
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    assert len(saves) == 22
    assert world.job(job_id).status is JobStatus.SUCCEEDED


def test_an_outcome_committed_although_its_save_failed_is_not_saved_twice(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    original = world.save.operation
    saves: list[int] = []

    def commit_outcome_then_fail(*events: Any) -> Any:
        saves.append(len(saves))
        result = original(*events)
        if len(saves) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return result

    world.save.operation = commit_outcome_then_fail
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    succeeded = [e for e in world.events.events.get(job_id) if isinstance(e, Job.Succeeded)]
    assert len(succeeded) == 1


def test_a_stopping_worker_gives_up_an_outcome_it_cannot_save(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    original = world.save.operation
    saves: list[int] = []

    def outcome_never_saves(*events: Any) -> Any:
        saves.append(len(saves))
        if len(saves) > 1:
            world.stopping.set()
            raise OperationalError("no connection to the server")
        return original(*events)

    world.save.operation = outcome_never_saves
    assert world.executor.process(job_id) is Outcome.SKIPPED
    # Left running for recovery to find: its worker no longer names it.
    assert world.job(job_id).status is JobStatus.RUNNING
    assert world.executor.running() == frozenset()


def test_a_redelivered_message_of_a_lost_attempt_runs_it_again_uncounted(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi", max_attempts=1))
    job = world.job(job_id)
    job.start(worker_id="gone", at=world.clock.now())
    world.events.save(job)
    world.beats.beat("gone", world.clock.now() - timedelta(seconds=31))
    assert world.executor.process(job_id) is Outcome.FAILED
    job = world.job(job_id)
    assert (job.status, job.attempt_limit) == (JobStatus.WAITING, 2)
    assert world.executor.process(job_id) is Outcome.SUCCEEDED


def test_a_live_worker_that_no_longer_runs_the_attempt_has_lost_it(world: World) -> None:
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    job = world.job(job_id)
    job.start(worker_id="alive", at=world.clock.now() - timedelta(seconds=10))
    world.events.save(job)
    world.beats.beat("alive", world.clock.now(), frozenset())
    assert world.executor.process(job_id) is Outcome.FAILED
    # While it names the job, the message is only deferred.
    other = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    job = world.job(other)
    job.start(worker_id="alive", at=world.clock.now() - timedelta(seconds=10))
    world.events.save(job)
    world.beats.beat("alive", world.clock.now(), frozenset({other}))
    assert world.executor.process(other) is Outcome.DEFERRED


def test_an_attempt_recorded_lost_meanwhile_keeps_no_outcome_from_here(world: World) -> None:
    """The worker was taken for dead while its command ran; the job was started again
    elsewhere. This worker's outcome must not land on the other worker's attempt."""
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    original = world.save.operation
    saves: list[int] = []

    def lost_while_running(*events: Any) -> Any:
        saves.append(len(saves))
        if len(saves) == 2:  # before the outcome: recovery and another worker step in
            job = world.job(job_id)
            job.lose_attempt(detail="silent", at=world.clock.now())
            job.start(worker_id="w-2", at=world.clock.now())
            original(*job.collect_events())
        return original(*events)

    world.save.operation = lost_while_running
    assert world.executor.process(job_id) is Outcome.SKIPPED
    job = world.job(job_id)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "w-2", 2)


def test_a_cancel_request_saved_while_the_outcome_was_decided_ends_it_cancelled(
    world: World,
) -> None:
    """The request has the version the outcome would have had: the executor must not take
    the stored request for its own outcome (that left jobs running for good)."""
    job_id = world.jobs.dispatch(DispatchRequest(command_line="demo:echo hi"))
    original = world.save.operation
    saves: list[int] = []

    def cancel_first(*events: Any) -> Any:
        saves.append(len(saves))
        if len(saves) == 2:
            world.jobs.cancel(job_id, tenant="default", by="op", reason="batch cancelled")
        return original(*events)

    world.save.operation = cancel_first
    assert world.executor.process(job_id) is Outcome.CANCELLED
    assert world.job(job_id).status is JobStatus.CANCELLED
