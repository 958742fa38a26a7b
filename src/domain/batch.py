"""The Batch aggregate (Laravel's `Bus::batch`): a named group of jobs with then/catch/finally.

The batch's stream stays short: it records what people and the batch process decided
(created, jobs added, cancelled, finished, a callback dispatched), never one event per job
outcome. How many of its jobs succeeded, failed or were cancelled is derived from the jobs'
own events by a single writer, which hands those counts to `Batch.settle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import (
    DEFAULT_TENANT,
    InvalidTransitionError,
    ValidationError,
    deterministic_id,
    require_utc,
)

MAX_NAME = 200
#: Jobs one request may add; a batch grows past it by adding jobs again.
MAX_JOBS_PER_ADD = 10_000
SYSTEM = "system"


class CallbackKind(StrEnum):
    """When a batch callback runs: all jobs succeeded, the first failure, all jobs finished."""

    THEN = "then"
    CATCH = "catch"
    FINALLY = "finally"


def callback_job_id(batch_id: UUID, kind: CallbackKind) -> UUID:
    """The id of the job a batch callback starts: the same however often it is decided."""
    return deterministic_id("batch", str(batch_id), kind.value)


def progress_percent(processed: int, total: int) -> int:
    """`processed / total` as a whole percentage, halves rounded away from zero (12.5 → 13)."""
    if total <= 0:
        return 0
    exact = Decimal(processed * 100) / Decimal(total)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class BatchProgress:
    """How a batch's jobs stand: `pending` ones have not reached a final state yet."""

    total: int
    pending: int
    succeeded: int
    failed: int
    cancelled: int

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def percent(self) -> int:
        return progress_percent(self.processed, self.total)


class Batch(Aggregate):
    """Jobs that succeed or fail together, with callbacks dispatched as jobs exactly once."""

    class Created(Aggregate.Created):
        tenant: str
        name: str
        allow_failures: bool
        callbacks: dict[str, dict[str, Any]]
        by: str
        at: datetime

    class JobsAdded(Aggregate.Event):
        job_ids: list[UUID]
        by: str
        at: datetime

    class Cancelled(Aggregate.Event):
        by: str
        reason: str
        at: datetime

    class Finished(Aggregate.Event):
        succeeded: int
        failed: int
        cancelled: int
        at: datetime

    class CallbackDispatched(Aggregate.Event):
        kind: str
        job_id: UUID
        at: datetime

    @event(Created)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        name: str,
        allow_failures: bool,
        callbacks: dict[str, dict[str, Any]],
        by: str,
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.name = name
        self.allow_failures = allow_failures
        self.callbacks = callbacks
        self.created_by = by
        self.created_at = at
        self.job_count = 0
        self.cancelled = False
        self.cancelled_at: datetime | None = None
        self.cancelled_by: str | None = None
        self.cancel_reason: str | None = None
        self.finished = False
        self.dispatched: dict[str, UUID] = {}

    @classmethod
    def create(
        cls,
        *,
        batch_id: UUID,
        name: str,
        by: str,
        at: datetime,
        tenant: str = DEFAULT_TENANT,
        allow_failures: bool = False,
        callbacks: dict[str, dict[str, Any]] | None = None,
    ) -> Batch:
        """Check the name and callbacks, then record Created. Each callback (command, arguments,
        options, command_line) is parsed against the command registry by the application."""
        if not (isinstance(name, str) and 0 < len(name.strip()) <= MAX_NAME):
            raise ValidationError(f"name must be 1 to {MAX_NAME} characters", field="name")
        if not tenant:
            raise ValidationError("tenant must not be empty", field="tenant")
        callbacks = dict(callbacks or {})
        kinds = {kind.value for kind in CallbackKind}
        for kind, spec in callbacks.items():
            if kind not in kinds:
                raise ValidationError(f"unknown callback {kind!r}", field=kind)
            missing = {"command", "command_line", "arguments", "options"} - set(spec)
            if missing:
                raise ValidationError(
                    f"callback {kind} lacks {', '.join(sorted(missing))}", field=kind
                )
        return cls(
            id=batch_id,
            tenant=tenant,
            name=name.strip(),
            allow_failures=allow_failures,
            callbacks=callbacks,
            by=by,
            at=require_utc(at, "at"),
        )

    @property
    def is_open(self) -> bool:
        """Jobs may still be added: neither cancelled nor finished."""
        return not (self.cancelled or self.finished)

    def require_open(self) -> None:
        """Raise unless jobs may still be added."""
        if self.cancelled:
            raise InvalidTransitionError(f"batch {self.id} was cancelled: no jobs can be added")
        if self.finished:
            raise InvalidTransitionError(f"batch {self.id} has finished: no jobs can be added")

    def add_jobs(self, *, job_ids: list[UUID], by: str, at: datetime) -> None:
        """Record jobs (already dispatched with this batch's id in the same save) as its own."""
        self.require_open()
        if not job_ids:
            raise ValidationError("give at least one job", field="jobs")
        if len(job_ids) > MAX_JOBS_PER_ADD:
            raise ValidationError(
                f"at most {MAX_JOBS_PER_ADD} jobs can be added at once", field="jobs"
            )
        if len(set(job_ids)) != len(job_ids):
            raise ValidationError("a job is listed twice", field="jobs")
        self._jobs_added(job_ids=list(job_ids), by=by, at=require_utc(at, "at"))

    def cancel(self, *, by: str, reason: str, at: datetime) -> None:
        """Stop the batch: its pending jobs are cancelled by the batch process."""
        if self.cancelled:
            raise InvalidTransitionError(f"batch {self.id} is already cancelled")
        if self.finished:
            raise InvalidTransitionError(f"batch {self.id} has finished, it cannot be cancelled")
        self._cancelled(by=by, reason=reason, at=require_utc(at, "at"))

    def settle(
        self, progress: BatchProgress, *, at: datetime, cause: str = ""
    ) -> list[CallbackKind]:
        """Apply the batch rules to how its jobs stand; return the callbacks now due.

        - A failed job fires `catch` once; without `allow_failures` it also cancels the batch.
        - When every job has reached a final state the batch is finished: `finally` fires
          once, and `then` too if every job succeeded and the batch was not cancelled (a
          batch whose failed jobs were retried may fire `then` after `finally`).

        `progress` may lag behind this aggregate (jobs added since): the batch is only
        finished when the progress counts all of its jobs.
        """
        at = require_utc(at, "at")
        due: list[CallbackKind] = []
        if progress.failed > 0:
            if not self.allow_failures and not self.cancelled and not self.finished:
                self._cancelled(by=SYSTEM, reason=cause or "a job of the batch failed", at=at)
            due += self._fire(CallbackKind.CATCH, at)
        complete = 0 < progress.total == self.job_count and progress.pending == 0
        if complete:
            if not self.finished:
                self._finished(
                    succeeded=progress.succeeded,
                    failed=progress.failed,
                    cancelled=progress.cancelled,
                    at=at,
                )
            if progress.succeeded == progress.total and not self.cancelled:
                due += self._fire(CallbackKind.THEN, at)
            due += self._fire(CallbackKind.FINALLY, at)
        return due

    def _fire(self, kind: CallbackKind, at: datetime) -> list[CallbackKind]:
        if kind.value not in self.callbacks or kind.value in self.dispatched:
            return []
        self._callback_dispatched(kind=kind.value, job_id=callback_job_id(self.id, kind), at=at)
        return [kind]

    # -- mutators: they only assign state ---------------------------------------------------

    @event(JobsAdded)
    def _jobs_added(self, job_ids: list[UUID], by: str, at: datetime) -> None:
        self.job_count += len(job_ids)

    @event(Cancelled)
    def _cancelled(self, by: str, reason: str, at: datetime) -> None:
        self.cancelled = True
        self.cancelled_at = at
        self.cancelled_by = by
        self.cancel_reason = reason

    @event(Finished)
    def _finished(self, succeeded: int, failed: int, cancelled: int, at: datetime) -> None:
        self.finished = True

    @event(CallbackDispatched)
    def _callback_dispatched(self, kind: str, job_id: UUID, at: datetime) -> None:
        self.dispatched[kind] = job_id
