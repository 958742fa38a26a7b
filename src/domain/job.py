"""The Job aggregate: one unit of work, from dispatch to its final outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import DEFAULT_TENANT, InvalidTransitionError, ValidationError, require_utc

QUEUES = ("high", "default", "low")
MAX_OUTPUT_CHARS = 64_000
MAX_TRACEBACK_CHARS = 32_000
MAX_COMMENT_CHARS = 10_000
#: A job whose worker was lost this many times is dead-lettered: it may be what kills its
#: workers (a segfault, the OOM killer), and retrying it for ever would take them all down.
MAX_LOST_ATTEMPTS = 3


class JobStatus(StrEnum):
    """Where a job stands; `waiting` covers ready and delayed (not yet due) jobs."""

    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: base x 2^(attempt-1), capped, spread by +/- jitter."""

    base_seconds: float = 1.0
    max_seconds: float = 3600.0
    jitter: float = 0.25

    def delay(self, failed_attempt: int, random_unit: float) -> timedelta:
        """Delay before the attempt after `failed_attempt`; `random_unit` is in [0, 1)."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** max(0, failed_attempt - 1))
        spread = raw * self.jitter * (2 * random_unit - 1)
        return timedelta(seconds=max(0.0, raw + spread))


def validate_queue(queue: str) -> str:
    if queue not in QUEUES:
        raise ValidationError(
            f"unknown queue {queue!r}: choose one of {', '.join(QUEUES)}", field="queue"
        )
    return queue


def _clip(text: str, limit: int) -> str:
    # A NUL character cannot be stored in a text column (PostgreSQL refuses it): a command
    # that prints one must not stop the read models.
    text = text.replace("\x00", "\ufffd")
    if len(text) <= limit:
        return text
    return text[: limit - 40] + f"\n… [{len(text) - limit + 40} characters cut]"


class Job(Aggregate):
    """A dispatched command that runs on a worker, with retries, a time limit and cancellation."""

    class Dispatched(Aggregate.Created):
        tenant: str
        command: str
        command_line: str
        arguments: dict[str, Any]
        options: dict[str, Any]
        queue: str
        max_attempts: int
        timeout_seconds: float | None
        backoff_seconds: float
        not_before: datetime | None
        requested_by: str
        batch_id: str | None
        schedule_id: str | None
        at: datetime

    class Started(Aggregate.Event):
        attempt: int
        worker_id: str
        at: datetime

    class Succeeded(Aggregate.Event):
        attempt: int
        result: Any
        output: str
        duration_ms: float
        at: datetime

    class AttemptFailed(Aggregate.Event):
        attempt: int
        error_type: str
        message: str
        traceback: str
        output: str
        duration_ms: float
        timed_out: bool
        at: datetime

    class AttemptNotCounted(Aggregate.Event):
        """The attempt just failed was not the job's failure (its worker was lost): it does
        not use up one of the job's attempts."""

        attempt: int
        reason: str
        at: datetime

    class RetryScheduled(Aggregate.Event):
        queue: str
        next_attempt: int
        retry_at: datetime
        delay_seconds: float
        at: datetime

    class DeadLettered(Aggregate.Event):
        attempts: int
        reason: str
        at: datetime

    class CancellationRequested(Aggregate.Event):
        by: str
        reason: str
        at: datetime

    class Cancelled(Aggregate.Event):
        by: str
        reason: str
        at: datetime

    class Retried(Aggregate.Event):
        """An operator retried a failed job; `previous_attempts` links it to the failure."""

        class_version = 2

        queue: str
        by: str
        attempt_limit: int
        previous_attempts: int
        at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Version 1 did not say which failure it retried: the limit then was attempts + max.
            state["previous_attempts"] = -1

    class Forgotten(Aggregate.Event):
        """A failed job taken off the failed list by an operator; its history stays."""

        by: str
        at: datetime

    class CommentAdded(Aggregate.Event):
        comment_id: UUID
        author: str
        text: str
        at: datetime

    @event(Dispatched)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        command: str,
        command_line: str,
        arguments: dict[str, Any],
        options: dict[str, Any],
        queue: str,
        max_attempts: int,
        timeout_seconds: float | None,
        backoff_seconds: float,
        not_before: datetime | None,
        requested_by: str,
        batch_id: str | None,
        schedule_id: str | None,
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.command = command
        self.command_line = command_line
        self.arguments = arguments
        self.options = options
        self.queue = queue
        self.max_attempts = max_attempts
        self.attempt_limit = max_attempts
        self.timeout_seconds = timeout_seconds
        self.backoff_seconds = backoff_seconds
        self.requested_by = requested_by
        self.batch_id = batch_id
        self.schedule_id = schedule_id
        self.dispatched_at = at
        self.available_at = max(at, not_before) if not_before else at
        self.status = JobStatus.WAITING
        self.attempts = 0
        self.worker_id: str | None = None
        self.started_at: datetime | None = None
        self.cancellation_requested = False
        self.lost_attempts = 0
        self._cancel_by = ""
        self._cancel_reason = ""
        self.forgotten = False

    @classmethod
    def dispatch(
        cls,
        *,
        job_id: UUID,
        command: str,
        command_line: str,
        arguments: dict[str, Any],
        options: dict[str, Any],
        at: datetime,
        queue: str = "default",
        tenant: str = DEFAULT_TENANT,
        max_attempts: int = 3,
        timeout_seconds: float | None = None,
        backoff_seconds: float = 1.0,
        not_before: datetime | None = None,
        requested_by: str = "system",
        batch_id: str | None = None,
        schedule_id: str | None = None,
    ) -> Job:
        """Check the dispatch rules, then record the Dispatched event."""
        validate_queue(queue)
        if not tenant:
            raise ValidationError("tenant must not be empty", field="tenant")
        if not 1 <= max_attempts <= 100:
            raise ValidationError("max_attempts must be between 1 and 100", field="max_attempts")
        if timeout_seconds is not None and not 0 < timeout_seconds <= 7 * 86400:
            raise ValidationError(
                "timeout_seconds must be greater than 0 and at most 7 days",
                field="timeout_seconds",
            )
        if not 0 <= backoff_seconds <= 86400:
            raise ValidationError(
                "backoff_seconds must be between 0 and 86400", field="backoff_seconds"
            )
        at = require_utc(at, "at")
        if not_before is not None:
            not_before = require_utc(not_before, "not_before")
        return cls(
            id=job_id,
            tenant=tenant,
            command=command,
            command_line=command_line,
            arguments=arguments,
            options=options,
            queue=queue,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            backoff_seconds=backoff_seconds,
            not_before=not_before,
            requested_by=requested_by,
            batch_id=batch_id,
            schedule_id=schedule_id,
            at=at,
        )

    # -- commands -------------------------------------------------------------------------

    def start(self, *, worker_id: str, at: datetime) -> None:
        if self.status is not JobStatus.WAITING:
            raise InvalidTransitionError(f"job {self.id} is {self.status}, it cannot start")
        self._started(attempt=self.attempts + 1, worker_id=worker_id, at=require_utc(at, "at"))

    def succeed(self, *, result: Any, output: str, duration_ms: float, at: datetime) -> None:
        self._require_running("succeed")
        if self.cancellation_requested:
            raise InvalidTransitionError(f"job {self.id} was asked to cancel, it cannot succeed")
        self._succeeded(
            attempt=self.attempts,
            result=result,
            output=_clip(output, MAX_OUTPUT_CHARS),
            duration_ms=duration_ms,
            at=require_utc(at, "at"),
        )

    def fail(
        self,
        *,
        error_type: str,
        message: str,
        traceback: str,
        output: str,
        duration_ms: float,
        at: datetime,
        random_unit: float,
        timed_out: bool = False,
    ) -> None:
        """Record a failed attempt, then either schedule the next one or dead-letter the job."""
        self._require_running("fail")
        at = require_utc(at, "at")
        self._attempt_failed(
            attempt=self.attempts,
            error_type=error_type,
            message=_clip(message, MAX_TRACEBACK_CHARS),
            traceback=_clip(traceback, MAX_TRACEBACK_CHARS),
            output=_clip(output, MAX_OUTPUT_CHARS),
            duration_ms=duration_ms,
            timed_out=timed_out,
            at=at,
        )
        if self.cancellation_requested:
            self._cancelled(by=self._cancel_by, reason=self._cancel_reason, at=at)
        elif self.attempts < self.attempt_limit:
            policy = RetryPolicy(base_seconds=self.backoff_seconds)
            delay = policy.delay(self.attempts, random_unit)
            self._retry_scheduled(
                queue=self.queue,
                next_attempt=self.attempts + 1,
                retry_at=at + delay,
                delay_seconds=delay.total_seconds(),
                at=at,
            )
        else:
            self._dead_lettered(
                attempts=self.attempts,
                reason=f"{error_type}: {message}"[:500],
                at=at,
            )

    def lose_attempt(self, *, detail: str, at: datetime) -> None:
        """The worker running this attempt is gone: record the attempt as failed with
        `WorkerLost`, without counting it, and run the job again at once; a job lost
        `MAX_LOST_ATTEMPTS` times is dead-lettered instead."""
        self._require_running("be lost")
        at = require_utc(at, "at")
        duration_ms = (at - self.started_at).total_seconds() * 1000 if self.started_at else 0.0
        self._attempt_failed(
            attempt=self.attempts,
            error_type="WorkerLost",
            message=_clip(detail, MAX_TRACEBACK_CHARS),
            traceback="",
            output="",
            duration_ms=max(0.0, duration_ms),
            timed_out=False,
            at=at,
        )
        if self.cancellation_requested:
            self._cancelled(by=self._cancel_by, reason=self._cancel_reason, at=at)
        elif self.lost_attempts + 1 >= MAX_LOST_ATTEMPTS:
            self._dead_lettered(
                attempts=self.attempts,
                reason=(
                    f"WorkerLost: its worker was lost {self.lost_attempts + 1} times while"
                    " running it (it may be what stops its workers)"
                ),
                at=at,
            )
        else:
            self._attempt_not_counted(attempt=self.attempts, reason="worker lost", at=at)
            self._retry_scheduled(
                queue=self.queue,
                next_attempt=self.attempts + 1,
                retry_at=at,
                delay_seconds=0.0,
                at=at,
            )

    def cancel(self, *, by: str, reason: str, at: datetime) -> None:
        """A waiting job is cancelled at once; a running one is asked to stop."""
        at = require_utc(at, "at")
        if self.status is JobStatus.WAITING:
            self._cancelled(by=by, reason=reason, at=at)
        elif self.status is JobStatus.RUNNING:
            if self.cancellation_requested:
                raise InvalidTransitionError(f"job {self.id} is already being cancelled")
            self._cancellation_requested(by=by, reason=reason, at=at)
        else:
            raise InvalidTransitionError(f"job {self.id} is {self.status}, it cannot be cancelled")

    def stop_cancelled(self, *, at: datetime) -> None:
        """The running command saw the cancellation request and stopped."""
        self._require_running("stop")
        if not self.cancellation_requested:
            raise InvalidTransitionError(f"job {self.id} was not asked to cancel")
        self._cancelled(by=self._cancel_by, reason=self._cancel_reason, at=require_utc(at, "at"))

    def retry(self, *, by: str, at: datetime) -> None:
        """An operator gives a failed job a fresh round of attempts."""
        if self.status is not JobStatus.FAILED:
            raise InvalidTransitionError(
                f"job {self.id} is {self.status}: only failed jobs can be retried"
            )
        self._retried(
            queue=self.queue,
            by=by,
            attempt_limit=self.attempts + self.max_attempts,
            previous_attempts=self.attempts,
            at=require_utc(at, "at"),
        )

    def forget(self, *, by: str, at: datetime) -> None:
        """Take a failed job off the failed list; its events stay."""
        if self.status is not JobStatus.FAILED:
            raise InvalidTransitionError(
                f"job {self.id} is {self.status}: only failed jobs can be forgotten"
            )
        if self.forgotten:
            raise InvalidTransitionError(f"job {self.id} was already forgotten")
        self._forgotten(by=by, at=require_utc(at, "at"))

    def add_comment(self, *, comment_id: UUID, author: str, text: str, at: datetime) -> None:
        if not text.strip():
            raise ValidationError("a comment needs some text", field="text")
        if len(text) > MAX_COMMENT_CHARS:
            raise ValidationError(
                f"a comment is at most {MAX_COMMENT_CHARS} characters", field="text"
            )
        self._comment_added(
            comment_id=comment_id, author=author, text=text, at=require_utc(at, "at")
        )

    def _require_running(self, verb: str) -> None:
        if self.status is not JobStatus.RUNNING:
            raise InvalidTransitionError(f"job {self.id} is {self.status}, it cannot {verb}")

    # -- mutators: they only assign state ---------------------------------------------------

    @event(Started)
    def _started(self, attempt: int, worker_id: str, at: datetime) -> None:
        self.status = JobStatus.RUNNING
        self.attempts = attempt
        self.worker_id = worker_id
        self.started_at = at

    @event(Succeeded)
    def _succeeded(
        self, attempt: int, result: Any, output: str, duration_ms: float, at: datetime
    ) -> None:
        self.status = JobStatus.SUCCEEDED
        self.finished_at = at

    @event(AttemptFailed)
    def _attempt_failed(
        self,
        *,
        attempt: int,
        error_type: str,
        message: str,
        traceback: str,
        output: str,
        duration_ms: float,
        timed_out: bool,
        at: datetime,
    ) -> None:
        self.last_error = f"{error_type}: {message}"

    @event(AttemptNotCounted)
    def _attempt_not_counted(self, attempt: int, reason: str, at: datetime) -> None:
        self.attempt_limit += 1
        self.lost_attempts += 1

    @event(RetryScheduled)
    def _retry_scheduled(
        self, queue: str, next_attempt: int, retry_at: datetime, delay_seconds: float, at: datetime
    ) -> None:
        self.status = JobStatus.WAITING
        self.available_at = retry_at

    @event(DeadLettered)
    def _dead_lettered(self, attempts: int, reason: str, at: datetime) -> None:
        self.status = JobStatus.FAILED
        self.finished_at = at

    @event(CancellationRequested)
    def _cancellation_requested(self, by: str, reason: str, at: datetime) -> None:
        self.cancellation_requested = True
        self._cancel_by = by
        self._cancel_reason = reason

    @event(Cancelled)
    def _cancelled(self, by: str, reason: str, at: datetime) -> None:
        self.status = JobStatus.CANCELLED
        self.finished_at = at

    @event(Retried)
    def _retried(
        self, queue: str, by: str, attempt_limit: int, previous_attempts: int, at: datetime
    ) -> None:
        self.status = JobStatus.WAITING
        self.attempt_limit = attempt_limit
        self.available_at = at
        self.forgotten = False

    @event(Forgotten)
    def _forgotten(self, by: str, at: datetime) -> None:
        self.forgotten = True

    @event(CommentAdded)
    def _comment_added(self, comment_id: UUID, author: str, text: str, at: datetime) -> None:
        pass
