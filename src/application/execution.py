"""Running a job on a worker: idempotent start, the command itself, and its recorded outcome."""

from __future__ import annotations

import json
import random
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.commands import CommandContext, CommandRegistry
from application.event_log import ChronicleEvents
from application.ports import Clock, JobQueue, JobTimedOutError, TimeLimiter, WorkerHeartbeats
from domain.job import Job, JobStatus
from domain.shared import InvalidTransitionError

log = structlog.get_logger(__name__)

# A message may arrive a little before its due time (clock skew between machines).
EARLY_TOLERANCE = timedelta(milliseconds=50)
# A worker silent for this long is presumed dead, and the attempt it was running lost.
WORKER_LOST_AFTER = timedelta(seconds=30)
# How soon a message for a job still running elsewhere is looked at again.
RUNNING_RECHECK_SECONDS = 30.0
# How soon a message for a job of a paused queue is looked at again. Only another tenant's
# jobs in the same queue get here: a queue paused for all its waiting jobs is not consumed.
PAUSED_RECHECK_SECONDS = 5.0
CANCEL_CHECK_INTERVAL = 1.0


def _json_safe(value: object) -> object:
    """The command's result as stored: JSON values as they are, anything else as its repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


class Outcome(StrEnum):
    """What processing one message did."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    DEFERRED = "deferred"


class JobExecutor:
    """Processes one broker message for a job. Running it twice for one message is safe."""

    def __init__(
        self,
        events: ChronicleEvents,
        registry: CommandRegistry,
        clock: Clock,
        queue: JobQueue,
        time_limiter: TimeLimiter,
        *,
        worker_id: str,
        random_unit: Callable[[], float] = random.random,
        max_output_chars: int = 64_000,
        save: Callable[..., object] | None = None,
        heartbeats: WorkerHeartbeats | None = None,
        paused: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._heartbeats = heartbeats
        self._paused = paused
        self._events = events
        # Saves go through a group committer in workers (many jobs per transaction).
        self._save = save or events.save
        self._registry = registry
        self._clock = clock
        self._queue = queue
        self._time_limiter = time_limiter
        self._worker_id = worker_id
        self._random_unit = random_unit
        self._max_output_chars = max_output_chars

    def _load(self, job_id: UUID) -> Job | None:
        try:
            job: Job = self._events.repository.get(job_id)
        except AggregateNotFoundError:
            return None
        return job

    def process(self, job_id: UUID) -> Outcome:  # noqa: PLR0911 - one return per outcome
        with structlog.contextvars.bound_contextvars(job_id=str(job_id)):
            job = self._load(job_id)
            if job is None:
                log.warning("message for an unknown job, dropped")
                return Outcome.SKIPPED
            if job.status is JobStatus.RUNNING:
                return self._running_elsewhere(job)
            if job.status is not JobStatus.WAITING:
                # Redelivered or duplicated message: the job already ran or was cancelled.
                log.info("job is not waiting, message skipped", status=job.status.value)
                return Outcome.SKIPPED
            now = self._clock.now()
            if job.available_at > now + EARLY_TOLERANCE:
                delay = (job.available_at - now).total_seconds()
                self._queue.enqueue(job_id, job.queue, delay_seconds=delay)
                log.info("message arrived before the job is due, deferred", delay=delay)
                return Outcome.DEFERRED
            if self._paused is not None and self._paused(job.tenant, job.queue):
                # The job stays waiting; its message comes back until the queue is resumed.
                self._queue.enqueue(job_id, job.queue, delay_seconds=PAUSED_RECHECK_SECONDS)
                log.info("queue is paused for this job's tenant, message deferred")
                return Outcome.DEFERRED
            try:
                job.start(worker_id=self._worker_id, at=now)
                self._save(job)
            except IntegrityError:
                log.info("another worker started this job first, message skipped")
                return Outcome.SKIPPED
            with structlog.contextvars.bound_contextvars(
                command=job.command, queue=job.queue, attempt=job.attempts
            ):
                return self._run(job)

    def _running_elsewhere(self, job: Job) -> Outcome:
        """A message for a running job: a duplicate, or a redelivery after a worker died.

        The message is never simply dropped while the job runs, or a job whose worker died
        would stay running forever: it comes back later, and once the worker has been silent
        long enough the attempt is recorded as lost and the retry policy takes over.
        """
        now = self._clock.now()
        last_seen = (
            self._heartbeats.last_seen(job.worker_id)
            if self._heartbeats is not None and job.worker_id
            else None
        )
        if self._heartbeats is None or (
            last_seen is not None and now - last_seen < WORKER_LOST_AFTER
        ):
            if self._heartbeats is not None:
                self._queue.enqueue(job.id, job.queue, delay_seconds=RUNNING_RECHECK_SECONDS)
            log.info("job is running on a live worker, message deferred", worker_id=job.worker_id)
            return Outcome.DEFERRED if self._heartbeats is not None else Outcome.SKIPPED
        job.fail(
            error_type="WorkerLost",
            message=f"worker {job.worker_id} went silent while running attempt {job.attempts}",
            traceback="",
            output="",
            duration_ms=(now - job.started_at).total_seconds() * 1000 if job.started_at else 0.0,
            at=now,
            random_unit=self._random_unit(),
        )
        try:
            self._save(job)
        except IntegrityError:
            return Outcome.SKIPPED
        log.warning("worker lost, attempt recorded as failed", worker_id=job.worker_id)
        return Outcome.FAILED

    def _run(self, job: Job) -> Outcome:
        last_check = [0.0, False]

        def is_cancelled() -> bool:
            # Re-reading the job (a short stream) at most once a second sees a cancel request.
            if time.monotonic() - last_check[0] >= CANCEL_CHECK_INTERVAL:
                last_check[0] = time.monotonic()
                current = self._load(job.id)
                last_check[1] = bool(current and current.cancellation_requested)
            return bool(last_check[1])

        context = CommandContext(
            job_id=job.id,
            attempt=job.attempts,
            is_cancelled=is_cancelled,
            max_output_chars=self._max_output_chars,
        )
        log.info("job started", worker_id=self._worker_id)
        started = time.perf_counter()
        result: object = None
        error: BaseException | None = None
        try:
            command = self._registry.get(job.command)
            with self._time_limiter.limit(job.timeout_seconds):
                result = command.run(context, job.arguments, job.options)
        except (Exception, JobTimedOutError) as exc:
            error = exc
        duration_ms = (time.perf_counter() - started) * 1000
        return self._record(job, context, _json_safe(result), error, duration_ms)

    def _record(
        self,
        job: Job,
        context: CommandContext,
        result: object,
        error: BaseException | None,
        duration_ms: float,
    ) -> Outcome:
        # Only a cancellation request can be appended while the job runs; on conflict reload
        # and decide again with it.
        for _ in range(5):
            now = self._clock.now()
            outcome = self._decide(
                job, context=context, result=result, error=error, duration_ms=duration_ms, now=now
            )
            try:
                self._save(job)
            except IntegrityError:
                reloaded = self._load(job.id)
                if reloaded is None or reloaded.status is not JobStatus.RUNNING:
                    return Outcome.SKIPPED
                job = reloaded
                continue
            log.info("job finished", outcome=outcome.value, duration_ms=round(duration_ms, 3))
            return outcome
        log.error("could not record the outcome of the job")
        return Outcome.SKIPPED

    def _decide(
        self,
        job: Job,
        *,
        context: CommandContext,
        result: object,
        error: BaseException | None,
        duration_ms: float,
        now: datetime,
    ) -> Outcome:
        # However the command ended, a job asked to cancel ends cancelled.
        if job.cancellation_requested:
            job.stop_cancelled(at=now)
            return Outcome.CANCELLED
        if error is None:
            try:
                job.succeed(result=result, output=context.output, duration_ms=duration_ms, at=now)
            except InvalidTransitionError:
                job.stop_cancelled(at=now)
                return Outcome.CANCELLED
            return Outcome.SUCCEEDED
        timed_out = isinstance(error, JobTimedOutError)
        message = (
            f"time limit of {job.timeout_seconds:g} s exceeded"
            if timed_out and job.timeout_seconds
            else str(error)
        )
        job.fail(
            error_type=type(error).__name__,
            message=message,
            traceback="".join(traceback.format_exception(error)),
            output=context.output,
            duration_ms=duration_ms,
            at=now,
            random_unit=self._random_unit(),
            timed_out=timed_out,
        )
        return Outcome.CANCELLED if job.status is JobStatus.CANCELLED else Outcome.FAILED
