"""Job recovery: lost attempts run again, due jobs without a message get one again."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import pytest

from application.event_log import ChronicleEvents
from application.jobs import DispatchRequest, JobService
from application.recovery import JobRecovery, RunningJob, WaitingJob
from application.views.queue_pauses import QueuePause
from domain.job import Job, JobStatus
from tests.unit.fakes import FakeClock, FakeQueue, demo_registry, memory_events
from tests.unit.test_execution_outages import Beats

LOST_AFTER = timedelta(seconds=30)
STRANDED_AFTER = timedelta(minutes=2)


class ReadModel:
    """RecoveryQueries answered from the aggregates themselves (an up-to-date read model)."""

    def __init__(self, events: ChronicleEvents) -> None:
        self.events = events
        self.ids: list[UUID] = []
        self.updated: dict[UUID, datetime] = {}

    def jobs(self) -> list[Job]:
        return [self.events.repository.get(job_id) for job_id in self.ids]

    def tenant_queues(self, status: JobStatus) -> set[tuple[str, str]]:
        return {(job.tenant, job.queue) for job in self.jobs() if job.status is status}

    def running_jobs(self, tenant: str, *, limit: int) -> list[RunningJob]:
        return [
            RunningJob(job.id, job.worker_id, job.started_at, job.attempts)
            for job in self.jobs()
            if job.tenant == tenant and job.status is JobStatus.RUNNING
        ][:limit]

    def waiting_jobs(
        self,
        tenant: str,
        queue: str,
        *,
        due_before: datetime | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[WaitingJob]:
        rows = sorted(
            (job.available_at, job.id)
            for job in self.jobs()
            if (job.tenant, job.queue, job.status) == (tenant, queue, JobStatus.WAITING)
            and (
                due_before is None
                or (job.available_at < due_before and self.updated[job.id] < due_before)
            )
        )
        rows = [row for row in rows if after is None or row > after]
        return [WaitingJob(job_id, queue, at) for at, job_id in rows[:limit]]


class Pauses:
    def __init__(self) -> None:
        self.held: list[QueuePause] = []

    def pauses(self, tenant: str | None = None) -> list[QueuePause]:
        return list(self.held)

    def waiting(self) -> set[tuple[str, str]]:
        return set()


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        registry = demo_registry()
        self.clock = FakeClock()
        self.jobs = JobService(self.events, registry, self.clock)
        self.read_model = ReadModel(self.events)
        self.beats = Beats()
        self.queue = FakeQueue()
        self.pauses = Pauses()
        self.recovery = JobRecovery(
            self.events,
            self.read_model,
            self.beats,
            self.queue,
            self.pauses,
            self.clock,
            lost_after=LOST_AFTER,
            stranded_after=STRANDED_AFTER,
        )

    def dispatch(self, queue: str = "default", **fields: object) -> UUID:
        job_id = self.jobs.dispatch(
            DispatchRequest(command_line="demo:noop", queue=queue, **fields)  # type: ignore[arg-type]
        )
        self.read_model.ids.append(job_id)
        self.read_model.updated[job_id] = self.clock.now()
        return job_id

    def start(self, job_id: UUID, worker: str) -> None:
        job: Job = self.events.repository.get(job_id)
        job.start(worker_id=worker, at=self.clock.now())
        self.events.save(job)
        self.read_model.updated[job_id] = self.clock.now()

    def status(self, job_id: UUID) -> JobStatus:
        job: Job = self.events.repository.get(job_id)
        return job.status


@pytest.fixture
def world() -> World:
    return World()


def test_attempts_of_gone_workers_are_lost_and_run_again(world: World) -> None:
    stopped, silent, alive_without, alive_with = (world.dispatch() for _ in range(4))
    world.start(stopped, "stopped")  # no heartbeat: it stopped
    world.start(silent, "silent")
    world.start(alive_without, "busy")
    world.start(alive_with, "busy-too")
    world.clock.advance(40)
    world.beats.beat("silent", world.clock.now() - timedelta(seconds=35))
    world.beats.beat("busy", world.clock.now(), frozenset())
    world.beats.beat("busy-too", world.clock.now(), frozenset({alive_with}))
    assert world.recovery.recover_lost_attempts() == 3
    for job_id in (stopped, silent, alive_without):
        assert world.status(job_id) is JobStatus.WAITING
        job: Job = world.events.repository.get(job_id)
        assert job.attempt_limit == 4  # the lost attempt was not counted
    assert world.status(alive_with) is JobStatus.RUNNING
    assert world.recovery.recover_lost_attempts() == 0


def test_silence_is_not_judged_until_sweeps_have_reached_the_database_for_a_while(
    world: World,
) -> None:
    job_id = world.dispatch()
    world.start(job_id, "w")
    world.clock.advance(60)
    # Right after an outage, every heartbeat is old: the first sweep does not call it lost.
    world.beats.beat("w", world.clock.now() - timedelta(seconds=60), frozenset({job_id}))
    assert world.recovery.sweep().lost_attempts == 0
    world.clock.advance(10)
    assert world.recovery.sweep().lost_attempts == 0
    world.clock.advance(25)
    assert world.recovery.sweep().lost_attempts == 1


def test_due_jobs_without_a_message_get_one_when_their_queue_is_empty(world: World) -> None:
    stranded = world.dispatch("low")
    backlog = world.dispatch("high")
    paused = world.dispatch("default")
    world.pauses.held.append(QueuePause("default", "default", "op", "", world.clock.now()))
    world.clock.advance(STRANDED_AFTER.total_seconds() + 1)
    fresh = world.dispatch("low")  # due only just now: its message may be on its way
    world.queue.ready = {"high": 3, "low": 0, "default": 0}
    assert world.recovery.resend_stranded() == 1
    assert world.queue.take() == [(stranded, "low", 0.0)]
    assert {backlog, paused, fresh}.isdisjoint(sent for sent, _, _ in world.queue.take())
    # A broker that cannot tell is trusted to hold them.
    world.queue.ready = {"low": None, "high": 3}
    assert world.recovery.resend_stranded() == 0


def test_a_fresh_broker_gets_a_message_for_every_waiting_job(world: World) -> None:
    now_due = world.dispatch()
    later = world.dispatch("high", delay_seconds=600)
    running = world.dispatch()
    world.start(running, "w")
    assert world.recovery.resend_waiting() == 2
    sent = {job_id: delay for job_id, _, delay in world.queue.take()}
    assert sent == {now_due: 0.0, later: 600.0}
