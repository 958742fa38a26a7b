"""Job recovery: jobs that no worker will start or finish by itself are set going again.

Two kinds of job can be stranded, whatever the cause (a worker killed, a database or broker
outage, a broker that lost its messages):

- a **running** job whose attempt can no longer complete: its worker stopped or went silent
  for `lost_after`, or is alive but no longer runs it. The attempt is recorded as lost
  (`WorkerLost`, not counted as one of the job's attempts) and the job runs again;
- a **waiting** job that is due but has no message: it has been due for `stranded_after`
  while its queue holds no message a worker could take. Its message is sent again
  (a duplicate message is harmless: a worker starts a job only while it is waiting).

A recovery sweep judges silence only after it has itself reached the database without a
failure for `lost_after`: right after an outage every heartbeat looks old.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents
from application.execution import WORKER_LOST_AFTER, attempt_lost
from application.ports import Clock, JobQueue, WorkerBeat, WorkerHeartbeats
from application.saving import saved
from application.views.queue_pauses import QueuePausesQueries
from domain.job import QUEUES, Job, JobStatus

log = structlog.get_logger(__name__)

#: How long a due job may wait with no message in its queue before its message is sent again.
STRANDED_AFTER = timedelta(minutes=2)
#: Jobs looked at per (tenant, queue) and per sweep.
SWEEP_PAGE = 1000


@dataclass(frozen=True)
class RunningJob:
    """A running job as the jobs read model shows it."""

    id: UUID
    worker_id: str | None
    started_at: datetime | None
    attempts: int


@dataclass(frozen=True)
class WaitingJob:
    """A waiting job as the jobs read model shows it."""

    id: UUID
    queue: str
    available_at: datetime


class RecoveryQueries(Protocol):
    """What recovery reads from the jobs read model (every query indexed)."""

    def tenant_queues(self, status: JobStatus) -> set[tuple[str, str]]:
        """(tenant, queue) pairs that have jobs in `status`."""
        ...

    def running_jobs(self, tenant: str, *, limit: int) -> list[RunningJob]: ...

    def waiting_jobs(
        self,
        tenant: str,
        queue: str,
        *,
        due_before: datetime | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[WaitingJob]:
        """Waiting jobs ordered by (available_at, id), after `after`; with `due_before`,
        only those due before it and unchanged since."""
        ...


@dataclass
class RecoveryReport:
    """What one sweep did."""

    lost_attempts: int = 0
    messages_resent: int = 0


class JobRecovery:
    """Finds stranded jobs and sets them going again (see the module's docstring)."""

    def __init__(  # noqa: PLR0917 - the collaborators of one sweep
        self,
        events: ChronicleEvents,
        queries: RecoveryQueries,
        heartbeats: WorkerHeartbeats,
        queue: JobQueue,
        pauses: QueuePausesQueries,
        clock: Clock,
        *,
        lost_after: timedelta = WORKER_LOST_AFTER,
        stranded_after: timedelta = STRANDED_AFTER,
    ) -> None:
        self._events = events
        self._queries = queries
        self._heartbeats = heartbeats
        self._queue = queue
        self._pauses = pauses
        self._clock = clock
        self._lost_after = lost_after
        self._stranded_after = stranded_after
        # Since when sweeps have reached the database without failing (None: not yet).
        self._healthy_since: datetime | None = None

    def sweep(self) -> RecoveryReport:
        """One recovery pass; raises (and starts its healthy period again) on failure."""
        started = self._clock.now()
        try:
            report = RecoveryReport(
                lost_attempts=self.recover_lost_attempts(
                    judge_silence=self._healthy_since is not None
                    and started - self._healthy_since >= self._lost_after
                ),
                messages_resent=self.resend_stranded(),
            )
        except Exception:
            self._healthy_since = None
            raise
        if self._healthy_since is None:
            self._healthy_since = started
        if report.lost_attempts or report.messages_resent:
            log.warning(
                "stranded jobs recovered",
                lost_attempts=report.lost_attempts,
                messages_resent=report.messages_resent,
            )
        return report

    # -- running jobs whose attempt cannot complete ------------------------------------------

    def recover_lost_attempts(self, *, judge_silence: bool = True) -> int:
        """Record the lost attempts of running jobs; returns how many.

        Without `judge_silence`, only workers known to be gone (no heartbeat) or alive but
        not running the job count; silence is not judged (see the module's docstring).
        """
        now = self._clock.now()
        lost_after = self._lost_after if judge_silence else timedelta.max
        beats: dict[str, WorkerBeat | None] = {}
        recovered = 0
        for tenant in sorted({t for t, _ in self._queries.tenant_queues(JobStatus.RUNNING)}):
            for row in self._queries.running_jobs(tenant, limit=SWEEP_PAGE):
                if row.worker_id is None:
                    continue
                if row.worker_id not in beats:
                    beats[row.worker_id] = self._heartbeats.latest(row.worker_id)
                lost = attempt_lost(
                    row.id,
                    row.attempts,
                    row.worker_id,
                    row.started_at,
                    beats[row.worker_id],
                    now=now,
                    lost_after=lost_after,
                )
                if lost is not None and self._lose(row, lost, now):
                    recovered += 1
        return recovered

    def _lose(self, row: RunningJob, detail: str, now: datetime) -> bool:
        try:
            job: Job = self._events.repository.get(row.id)
        except AggregateNotFoundError:
            return False
        # Judged on the read model, which may lag: only the attempt it saw is lost.
        if (
            job.status is not JobStatus.RUNNING
            or job.worker_id != row.worker_id
            or job.attempts != row.attempts
        ):
            return False
        job.lose_attempt(detail=detail, at=now)
        if not saved(self._events.save, job):
            return False  # it changed meanwhile: its worker is there after all
        log.warning("lost attempt recovered", job_id=str(row.id), detail=detail)
        return True

    # -- waiting jobs with no message --------------------------------------------------------

    def resend_stranded(self) -> int:
        """Send a message again for due jobs stranded without one; returns how many."""
        now = self._clock.now()
        due_before = now - self._stranded_after
        paused = {(p.tenant, p.queue) for p in self._pauses.pauses()}
        by_queue: dict[str, list[str]] = {}
        for tenant, queue in self._queries.tenant_queues(JobStatus.WAITING):
            if queue not in QUEUES or (tenant, queue) in paused or (tenant, None) in paused:
                continue  # a paused queue's jobs are meant to wait
            by_queue.setdefault(queue, []).append(tenant)
        resent = 0
        for queue, tenants in sorted(by_queue.items()):
            stranded = [
                job
                for tenant in sorted(tenants)
                for job in self._queries.waiting_jobs(
                    tenant, queue, due_before=due_before, after=None, limit=SWEEP_PAGE
                )
            ]
            # The broker is asked only about queues with candidates (usually none).
            if not stranded:
                continue
            ready = self._queue.ready_messages(queue)
            if ready is None or ready > 0:
                # Messages are waiting for a worker: these jobs will get their turn.
                continue
            resent += self._send(stranded, now)
        return resent

    def resend_waiting(self) -> int:
        """Send a message for every waiting job, due or not (a broker that starts empty: the
        in-process one of `chronicle up`); returns how many."""
        now = self._clock.now()
        sent = 0
        for tenant, queue in sorted(self._queries.tenant_queues(JobStatus.WAITING)):
            after: tuple[datetime, UUID] | None = None
            while True:
                jobs = self._queries.waiting_jobs(
                    tenant, queue, due_before=None, after=after, limit=SWEEP_PAGE
                )
                sent += self._send(jobs, now)
                if len(jobs) < SWEEP_PAGE:
                    break
                after = (jobs[-1].available_at, jobs[-1].id)
        if sent:
            log.info("messages sent for the waiting jobs of a fresh broker", jobs=sent)
        return sent

    def _send(self, jobs: Iterable[WaitingJob], now: datetime) -> int:
        messages = [
            (job.id, job.queue, max(0.0, (job.available_at - now).total_seconds())) for job in jobs
        ]
        if messages:
            self._queue.enqueue_many(messages)
        return len(messages)
