"""Running a job on a worker: idempotent start, the command itself, and its recorded outcome."""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, Protocol
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.commands import CommandContext, CommandRegistry
from application.event_log import ChronicleEvents
from application.ports import (
    Clock,
    HandBackError,
    JobQueue,
    JobTimedOutError,
    TimeLimiter,
    WorkerBeat,
    WorkerHeartbeats,
)
from application.retrying import OutageGaveUpError, is_outage, ride_out
from application.saving import CHANGE_ATTEMPTS, saved
from domain.job import Job, JobStatus
from domain.shared import InvalidTransitionError

log = structlog.get_logger(__name__)

# A message may arrive a little before its due time (clock skew between machines).
EARLY_TOLERANCE = timedelta(milliseconds=50)
# A worker silent for this long is presumed dead, and the attempt it was running lost
# (the default of CHRONICLE_WORKER_LOST_AFTER_SECONDS).
WORKER_LOST_AFTER = timedelta(seconds=30)
# A live worker's beat that does not name a job it started this long before it beat: the
# worker no longer runs that attempt (the beat's list is taken before `Started` is saved).
NOT_RUNNING_GRACE = timedelta(seconds=1)
# How long a message is held while the database cannot be reached before it goes back to the
# broker, and how soon it comes back then.
HAND_BACK_AFTER_SECONDS = 10.0
HAND_BACK_DELAY_SECONDS = 5.0
# How soon a message for a job of a paused queue is looked at again. Only another tenant's
# jobs in the same queue get here: a queue paused for all its waiting jobs is not consumed.
PAUSED_RECHECK_SECONDS = 5.0


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


class PauseGate(Protocol):
    """The queue pauses as a worker acts on them (`PauseWatcher`)."""

    def is_paused(self, tenant: str, queue: str) -> bool: ...

    def starting(self) -> AbstractContextManager[None]:
        """Held from the pause check to the committed `Started` of a job."""
        ...


def attempt_lost(
    job_id: UUID,
    attempt: int,
    worker_id: str | None,
    started_at: datetime | None,
    beat: WorkerBeat | None,
    *,
    now: datetime,
    lost_after: timedelta,
) -> str | None:
    """Why a running attempt can no longer complete, or None while it may.

    Its worker is gone (no heartbeat: it stopped; or silent for `lost_after`), or alive but
    no longer naming the job among those it runs (it gave up recording the outcome).
    """
    if beat is None:
        return f"worker {worker_id} stopped while running attempt {attempt}"
    silent = now - beat.last_seen
    if silent >= lost_after:
        return (
            f"worker {worker_id} went silent for {silent.total_seconds():.0f} s while running"
            f" attempt {attempt}"
        )
    if (
        job_id not in beat.running
        and started_at is not None
        and beat.last_seen - started_at > NOT_RUNNING_GRACE
    ):
        return f"worker {worker_id} is alive but no longer runs attempt {attempt}"
    return None


class RunningJobs:
    """The jobs a worker runs, shared by its threads and read by its heartbeat.

    Counted, not a plain set: a duplicate message for a job another thread runs adds and
    discards it too, and must not take it off the list meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[UUID] = Counter()

    def add(self, job_id: UUID) -> None:
        with self._lock:
            self._counts[job_id] += 1

    def discard(self, job_id: UUID) -> None:
        with self._lock:
            self._counts[job_id] -= 1
            if self._counts[job_id] <= 0:
                del self._counts[job_id]

    def snapshot(self) -> frozenset[UUID]:
        with self._lock:
            return frozenset(self._counts)


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
        pauses: PauseGate | None = None,
        worker_lost_after: timedelta = WORKER_LOST_AFTER,
        stopping: threading.Event | None = None,
        hand_back_after: float = HAND_BACK_AFTER_SECONDS,
    ) -> None:
        self._worker_lost_after = worker_lost_after
        self._stopping = stopping
        self._hand_back_after = hand_back_after
        self._running = RunningJobs()
        self._heartbeats = heartbeats
        self._pauses = pauses
        self._events = events
        # Saves go through a group committer in workers (many jobs per transaction); it is
        # given the events, collected once, so a save retried after an outage saves them.
        self._save: Callable[..., Any] = save or events.save
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

    def process(self, job_id: UUID) -> Outcome:
        """Handle one message for `job_id`: start and run the job if it is due and waiting.

        While the database is unreachable the message is held (retrying with back-off) for
        up to `HAND_BACK_AFTER_SECONDS`, then `HandBackError` asks the broker to take it back:
        a message is never acknowledged without its job having been started or judged.
        """
        with structlog.contextvars.bound_contextvars(job_id=str(job_id)):
            # When this call tried to start the job (and at what time): a `Started` whose save
            # reported an error may have been committed; on retry it is recognised as ours.
            tried: list[datetime] = []
            try:
                taken = ride_out(
                    lambda: self._take(job_id, tried),
                    what="start the job",
                    give_up_after=self._hand_back_after,
                    stop=self._stopping,
                )
            except OutageGaveUpError as exc:
                if tried:
                    self._running.discard(job_id)
                log.warning("database unreachable, message handed back to the broker")
                raise HandBackError(str(exc), delay_seconds=HAND_BACK_DELAY_SECONDS) from exc
            if isinstance(taken, Outcome):
                if tried:
                    self._running.discard(job_id)
                return taken
            with structlog.contextvars.bound_contextvars(
                command=taken.command, queue=taken.queue, attempt=taken.attempts
            ):
                try:
                    return self._run(taken)
                finally:
                    self._running.discard(job_id)

    def running(self) -> frozenset[UUID]:
        """The jobs this executor has started (or is starting) and not yet recorded."""
        return self._running.snapshot()

    def _take(  # noqa: PLR0911 - one return per outcome
        self, job_id: UUID, tried: list[datetime]
    ) -> Job | Outcome:
        """Load the job and decide: start it (returned), or skip / defer the message."""
        job = self._load(job_id)
        if job is None:
            log.warning("message for an unknown job, dropped")
            return Outcome.SKIPPED
        if job.status is JobStatus.RUNNING:
            if tried and job.worker_id == self._worker_id and job.started_at == tried[-1]:
                # Our `Started` was committed although its save reported an error.
                return job
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
        # From the pause check to the committed `Started`: a pause this worker says it acts
        # on cannot slip in between (see `PauseWatcher`).
        with self._pauses.starting() if self._pauses is not None else nullcontext():
            if self._pauses is not None and self._pauses.is_paused(job.tenant, job.queue):
                # The job stays waiting; its message comes back until the queue is resumed.
                self._queue.enqueue(job_id, job.queue, delay_seconds=PAUSED_RECHECK_SECONDS)
                log.info("queue is paused for this job's tenant, message deferred")
                return Outcome.DEFERRED
            # Named as running before `Started` is saved, so no heartbeat after the save can
            # leave it out while it runs (see `attempt_lost`).
            if not tried:
                self._running.add(job_id)
            tried.append(now)
            job.start(worker_id=self._worker_id, at=now)
            if not saved(self._save, *job.collect_events()):
                log.info("another worker started this job first, message skipped")
                return Outcome.SKIPPED
        return job

    def _running_elsewhere(self, job: Job) -> Outcome:
        """A message for a running job: a duplicate, or a redelivery after a worker died.

        The message is never simply dropped while the job runs, or a job whose worker died
        would stay running forever: it comes back later, and once the worker is known to be
        gone (silent, or alive but no longer running it) the attempt is recorded as lost and
        the job runs again (a lost attempt does not count as one of its attempts).
        """
        if self._heartbeats is None:
            log.info("job is running on another worker, message skipped", worker_id=job.worker_id)
            return Outcome.SKIPPED
        now = self._clock.now()
        beat = self._heartbeats.latest(job.worker_id) if job.worker_id else None
        lost = attempt_lost(
            job.id,
            job.attempts,
            job.worker_id,
            job.started_at,
            beat,
            now=now,
            lost_after=self._worker_lost_after,
        )
        if lost is None:
            recheck = self._worker_lost_after.total_seconds()
            self._queue.enqueue(job.id, job.queue, delay_seconds=recheck)
            log.info("job is running on a live worker, message deferred", worker_id=job.worker_id)
            return Outcome.DEFERRED
        job.lose_attempt(detail=lost, at=now)
        if not saved(self._save, *job.collect_events()):
            return Outcome.SKIPPED  # it changed meanwhile: finished, or its loss recorded
        log.warning("worker lost, attempt recorded as not counted", worker_id=job.worker_id)
        return Outcome.FAILED

    def _run(self, job: Job) -> Outcome:
        def is_cancelled() -> bool:
            # Re-reading the job (a short stream) sees a cancel request; the context asks
            # at most every `CommandContext.CANCEL_CHECK_INTERVAL`, and no more once it was.
            try:
                current = self._load(job.id)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                # The database is unreachable: the command goes on, as if not asked (the
                # last answer, since the context stops asking once it hears yes).
                return False
            return bool(current and current.cancellation_requested)

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
        """Save the outcome; while the database is unreachable, keep trying (the command
        ran: its outcome is not handed back), until the worker is told to stop."""
        # Only a cancellation request can be appended while the job runs; on conflict reload
        # and decide again with it.
        for _ in range(CHANGE_ATTEMPTS):
            now = self._clock.now()
            outcome = self._decide(
                job, context=context, result=result, error=error, duration_ms=duration_ms, now=now
            )
            try:
                if ride_out(
                    partial(saved, self._save, *job.collect_events()),
                    what="record the job's outcome",
                    stop=self._stopping,
                ):
                    return self._recorded(outcome, duration_ms)
                reloaded = ride_out(
                    partial(self._load, job.id), what="reload the job", stop=self._stopping
                )
            except OutageGaveUpError:
                return self._unrecorded()
            if (
                reloaded is not None
                and reloaded.version == job.version
                and reloaded.modified_on == job.modified_on
            ):
                # Our save was committed although it reported an outage, and its retry then
                # conflicted with it (the same last event: the same version is not enough, a
                # cancel request has one too).
                return self._recorded(outcome, duration_ms)
            if (
                reloaded is None
                or reloaded.status is not JobStatus.RUNNING
                or (reloaded.worker_id, reloaded.attempts) != (job.worker_id, job.attempts)
            ):
                # Finished, or our attempt was recorded lost (and maybe runs elsewhere).
                log.warning("the job changed while it ran here: outcome not recorded")
                return Outcome.SKIPPED
            job = reloaded
        log.error("could not record the outcome of the job")
        return Outcome.SKIPPED

    @staticmethod
    def _unrecorded() -> Outcome:
        log.error(
            "worker stopping while the database is unreachable: outcome not recorded, the"
            " attempt will be recovered as lost"
        )
        return Outcome.SKIPPED

    @staticmethod
    def _recorded(outcome: Outcome, duration_ms: float) -> Outcome:
        log.info("job finished", outcome=outcome.value, duration_ms=round(duration_ms, 3))
        return outcome

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
