"""Batch use cases (create, add jobs, cancel, retry failed jobs) and the batch process that
applies the batch rules and dispatches the then/catch/finally callbacks exactly once.

The batch process follows the log like a projection, on its own tracking row, and counts
each batch's jobs in its own copy of the batches ledger. When a batch's rules have something
to do, it saves the Batch events and the callback jobs in one event-store transaction. The
callback jobs have ids derived from (batch, kind), so a decision replayed after a crash
(its tracking position is committed apart from the event store) is rejected by the event
store as a duplicate, and the process reloads the batch and moves on: exactly once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from application.commands import CommandLineError, ParsedCommand
from application.event_log import ChronicleEvents, LoggedEvent
from application.idempotency import Created
from application.jobs import DispatchRequest, JobService
from application.ports import Clock
from application.saving import CHANGE_ATTEMPTS, change, collected, save_groups, saved
from application.views.batches import (
    FAILED,
    PENDING,
    TOPICS,
    BatchesQueries,
    BatchesWriter,
    BatchLedger,
    BatchTally,
)
from domain.batch import Batch, CallbackKind, callback_job_id
from domain.job import Job, JobStatus
from domain.shared import (
    DEFAULT_TENANT,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)

log = structlog.get_logger(__name__)

#: Jobs cancelled per event-store transaction when a batch is cancelled.
CANCEL_CHUNK = 100


@dataclass(frozen=True)
class BatchRequest:
    """A new batch: its jobs and the command lines of its callbacks."""

    name: str
    jobs: Sequence[DispatchRequest]
    allow_failures: bool = False
    then: str | None = None
    catch: str | None = None
    finally_: str | None = None
    tenant: str = DEFAULT_TENANT
    by: str = "system"


def _at_index(exc: ValidationError, index: int) -> ValidationError:
    """The same error, naming the job of the request it is about (`jobs[3].command_line`)."""
    field = f"jobs[{index}].{exc.field}" if exc.field else f"jobs[{index}]"
    error = CommandLineError if isinstance(exc, CommandLineError) else ValidationError
    return error(f"jobs[{index}]: {exc}", field=field)


class BatchService:
    """Writes Batch aggregates together with their jobs."""

    def __init__(
        self,
        events: ChronicleEvents,
        jobs: JobService,
        clock: Clock,
        queries: BatchesQueries,
    ) -> None:
        self._events = events
        self._jobs = jobs
        self._clock = clock
        self._queries = queries

    def _callback(self, kind: CallbackKind, command_line: str) -> dict[str, Any]:
        try:
            parsed: ParsedCommand = self._jobs.parse(DispatchRequest(command_line=command_line))
        except ValidationError as exc:
            error = CommandLineError if isinstance(exc, CommandLineError) else ValidationError
            raise error(f"{kind.value}: {exc}", field=kind.value) from None
        return {
            "command": parsed.name,
            "command_line": parsed.command_line(),
            "arguments": parsed.arguments,
            "options": parsed.options,
        }

    def _build_jobs(
        self,
        batch_id: UUID,
        requests: Sequence[DispatchRequest],
        *,
        tenant: str,
        by: str,
        now: datetime,
    ) -> list[Job]:
        """Validate every job first: the first bad one names its index, nothing is saved."""
        if not requests:
            raise ValidationError("a batch needs at least one job", field="jobs")
        jobs = []
        for index, request in enumerate(requests):
            own = dataclasses.replace(
                request, tenant=tenant, requested_by=by, batch_id=str(batch_id), job_id=None
            )
            try:
                jobs.append(self._jobs.build(own, now))
            except ValidationError as exc:
                raise _at_index(exc, index) from None
        return jobs

    def create(self, request: BatchRequest, *, idempotency_key: str | None = None) -> UUID:
        """Save the batch and all its jobs in one transaction (all or none); return its id.

        With `idempotency_key`, the same key sent again with the same request (within the
        retention window) returns the first batch and creates nothing.
        """
        return self.create_once(request, idempotency_key=idempotency_key).ids[0]

    def create_once(self, request: BatchRequest, *, idempotency_key: str | None = None) -> Created:
        """`create`, saying whether this call created the batch (False: the key had been used
        for the same request, the answer is the first batch)."""
        return self._jobs.idempotent.create(
            tenant=request.tenant,
            key=idempotency_key,
            kind="batch",
            request=request,
            build=lambda: self._build(request),
        )

    def _build(self, request: BatchRequest) -> tuple[list[Aggregate], list[UUID]]:
        """The batch and its jobs, to save together; the batch first, so its JobsAdded is in
        the log before any of its jobs' events."""
        lines = {
            CallbackKind.THEN: request.then,
            CallbackKind.CATCH: request.catch,
            CallbackKind.FINALLY: request.finally_,
        }
        callbacks = {
            kind.value: self._callback(kind, line)
            for kind, line in lines.items()
            if line is not None
        }
        now = self._clock.now()
        batch = Batch.create(
            batch_id=uuid4(),
            name=request.name,
            tenant=request.tenant,
            allow_failures=request.allow_failures,
            callbacks=callbacks,
            by=request.by,
            at=now,
        )
        jobs = self._build_jobs(
            batch.id, request.jobs, tenant=request.tenant, by=request.by, now=now
        )
        batch.add_jobs(job_ids=[job.id for job in jobs], by=request.by, at=now)
        return [batch, *jobs], [batch.id]

    def get(self, batch_id: UUID, *, tenant: str) -> Batch:
        try:
            batch: Batch = self._events.repository.get(batch_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"batch {batch_id} not found") from None
        if not isinstance(batch, Batch) or batch.tenant != tenant:
            raise NotFoundError(f"batch {batch_id} not found")
        return batch

    def add_jobs(
        self, batch_id: UUID, requests: Sequence[DispatchRequest], *, tenant: str, by: str
    ) -> list[UUID]:
        """Add jobs to an open batch, in one transaction with the batch's JobsAdded."""
        batch = self.get(batch_id, tenant=tenant)
        # Checked before the jobs, so a closed batch is a 409 whatever the jobs are.
        batch.require_open()
        jobs = self._build_jobs(batch_id, requests, tenant=tenant, by=by, now=self._clock.now())
        job_ids = [job.id for job in jobs]
        job_events = collected(*jobs)
        for _ in range(CHANGE_ATTEMPTS):
            batch.add_jobs(job_ids=job_ids, by=by, at=self._clock.now())
            if saved(self._events.save, *collected(batch), *job_events):
                return job_ids
            # The batch process recorded something first: decide again on the new state.
            batch = self.get(batch_id, tenant=tenant)
        raise ConflictError(f"batch {batch_id} is changing too fast, try again")

    def cancel(self, batch_id: UUID, *, tenant: str, by: str, reason: str = "") -> Batch:
        """Cancel the batch; the batch process then cancels its pending jobs."""
        return self._change(
            batch_id, tenant, lambda b: b.cancel(by=by, reason=reason, at=self._clock.now())
        )

    def retry_failed(self, batch_id: UUID, *, tenant: str, by: str) -> list[UUID]:
        """Retry the batch's failed jobs; return the ids of those retried."""
        batch = self.get(batch_id, tenant=tenant)
        if batch.cancelled:
            raise InvalidTransitionError(
                f"batch {batch_id} was cancelled: its failed jobs cannot run as part of it"
            )
        retried = []
        # The read model lists the candidates; each job's own state decides.
        for job_id in self._queries.batch_job_ids(batch_id, FAILED):
            try:
                self._jobs.retry(job_id, tenant=tenant, by=by)
            except InvalidTransitionError:
                continue  # no longer failed
            retried.append(job_id)
        return retried

    def _change(self, batch_id: UUID, tenant: str, command: Callable[[Batch], None]) -> Batch:
        return change(
            self._events, lambda: self.get(batch_id, tenant=tenant), command, f"batch {batch_id}"
        )


def needs_settling(tally: BatchTally) -> bool:
    """Whether `Batch.settle` may record something, judged from the ledger alone, so the
    aggregate is loaded only when one of its rules can fire."""
    if tally.failed > 0:
        if not (tally.allow_failures or tally.cancelled or tally.finish_recorded):
            return True
        if CallbackKind.CATCH in tally.callbacks and tally.catch_job_id is None:
            return True
    if tally.total == 0 or tally.pending > 0:
        return False
    if not tally.finish_recorded:
        return True
    if CallbackKind.FINALLY in tally.callbacks and tally.finally_job_id is None:
        return True
    return (
        CallbackKind.THEN in tally.callbacks
        and tally.then_job_id is None
        and tally.succeeded == tally.total
        and not tally.cancelled
    )


class BatchProcess:
    """The process manager of batches: failure → cancel + catch, all done → then/finally."""

    name = "batch_process"
    topics = TOPICS

    def __init__(
        self,
        events: ChronicleEvents,
        jobs: JobService,
        clock: Clock,
        *,
        backoff_seconds: float = 1.0,
    ) -> None:
        self._events = events
        self._jobs = jobs
        self._clock = clock
        self._backoff = backoff_seconds

    def process(self, events: Sequence[LoggedEvent], writer: BatchesWriter) -> None:
        ledger = BatchLedger(writer)
        ledger.prefetch(events)
        for logged in events:
            tally = ledger.apply(logged)
            if tally is None:
                continue
            event = logged.event
            if isinstance(event, Batch.Cancelled):
                self._cancel_pending(ledger, tally, event)
            if needs_settling(tally):
                cause = (
                    f"job {event.originator_id} failed"
                    if isinstance(event, Job.DeadLettered)
                    else ""
                )
                self._settle(tally, cause)
                ledger.touch(tally)
        ledger.flush()

    def _settle(self, tally: BatchTally, cause: str) -> None:
        """Apply the batch rules; save the batch and its callback jobs in one transaction."""
        for _ in range(CHANGE_ATTEMPTS):
            batch: Batch = self._events.repository.get(tally.id)
            now = self._clock.now()
            due = batch.settle(tally.progress(), at=now, cause=cause)
            jobs = [self._callback_job(batch, kind, now) for kind in due]
            pending = collected(batch, *jobs)
            if pending:
                if not saved(self._events.save, *pending):
                    # Decided already (a replay after a crash), or the batch changed under
                    # us (jobs added): reload and decide again.
                    continue
                log.info(
                    "batch settled",
                    batch_id=str(batch.id),
                    cancelled=batch.cancelled,
                    finished=batch.finished,
                    callbacks=[kind.value for kind in due],
                )
            self._learn(tally, batch)
            return
        raise ConflictError(f"batch {tally.id} is changing too fast, try again")

    @staticmethod
    def _learn(tally: BatchTally, batch: Batch) -> None:
        """Take the batch's decisions into the ledger now, rather than when their events come
        round in the log, so the next events of the batch do not load it again."""
        tally.cancelled = tally.cancelled or batch.cancelled
        tally.finish_recorded = tally.finish_recorded or batch.finished
        for kind in CallbackKind:
            job_id = batch.dispatched.get(kind.value)
            if job_id is not None:
                setattr(tally, f"{kind.value}_job_id", job_id)

    def _callback_job(self, batch: Batch, kind: CallbackKind, now: datetime) -> Job:
        # Built from the command parsed when the batch was created, not parsed again: a
        # command since removed from the registry fails as a job, it cannot block the process.
        spec = batch.callbacks[kind.value]
        return Job.dispatch(
            job_id=callback_job_id(batch.id, kind),
            command=spec["command"],
            command_line=spec["command_line"],
            arguments=spec["arguments"],
            options=spec["options"],
            at=now,
            tenant=batch.tenant,
            backoff_seconds=self._backoff,
            requested_by=f"batch:{batch.id}:{kind.value}",
        )

    def _cancel_pending(
        self, ledger: BatchLedger, tally: BatchTally, event: Batch.Cancelled
    ) -> None:
        """Cancel the batch's pending jobs: waiting ones at once, running ones asked to stop.

        Runs when the Cancelled event is read, so after a crash it runs again; jobs already
        cancelled are passed over.
        """
        job_ids = ledger.job_ids(tally.id, PENDING)
        reason = f"batch {tally.id} was cancelled" + (f": {event.reason}" if event.reason else "")
        for start in range(0, len(job_ids), CANCEL_CHUNK):
            self._cancel_jobs(
                job_ids[start : start + CANCEL_CHUNK],
                tenant=tally.tenant,
                by=event.by,
                reason=reason,
            )
        log.info("batch jobs cancelled", batch_id=str(tally.id), pending=len(job_ids))

    def _cancel_jobs(self, job_ids: Sequence[UUID], *, tenant: str, by: str, reason: str) -> None:
        now = self._clock.now()
        changed: list[tuple[UUID, list[Any]]] = []
        for job_id in job_ids:
            try:
                job: Job = self._events.repository.get(job_id)
            except AggregateNotFoundError:  # pragma: no cover - saved with its batch
                continue
            if job.status is JobStatus.WAITING or (
                job.status is JobStatus.RUNNING and not job.cancellation_requested
            ):
                job.cancel(by=by, reason=reason, at=now)
                changed.append((job_id, collected(job)))
        if changed:
            self._save_cancels(changed, tenant=tenant, by=by, reason=reason)

    def _save_cancels(
        self, changed: list[tuple[UUID, list[Any]]], *, tenant: str, by: str, reason: str
    ) -> None:
        """Save the cancellations together; when a worker saved one of the jobs meanwhile
        (started or finished it), save each half apart, so a conflict costs a few saves
        rather than one per job; the jobs that changed are decided again."""
        results = save_groups(self._events.save, [events for _, events in changed], halves=True)
        for (job_id, _), result in zip(changed, results, strict=True):
            if not result:
                # A job that finished, or is already being cancelled, is left as it is.
                with contextlib.suppress(InvalidTransitionError):
                    self._jobs.cancel(job_id, tenant=tenant, by=by, reason=reason)
