"""The batches read model: each batch with counts derived from its jobs' events, and the
job → batch lookup (`batch_jobs`) that later job events need.

The lookup holds each job's state and the version of its last counted event, so replaying an
event that was already counted changes nothing: counts are exact whatever is read twice. The
same ledger also keeps the batch process's own state (see `application.batches`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.batch import Batch, BatchProgress, CallbackKind
from domain.job import Job

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

BATCH_EVENTS = (
    Batch.Created,
    Batch.JobsAdded,
    Batch.Cancelled,
    Batch.Finished,
    Batch.CallbackDispatched,
)
# Only the events that move a job in or out of a final state: a failed attempt that will be
# retried leaves the job pending, and Dispatched adds nothing that JobsAdded did not say.
JOB_OUTCOMES: dict[type, str] = {
    Job.Succeeded: SUCCEEDED,
    Job.DeadLettered: FAILED,
    Job.Cancelled: CANCELLED,
    Job.Retried: PENDING,
}
TOPICS = tuple(topic(cls) for cls in (*BATCH_EVENTS, *JOB_OUTCOMES))
_BUCKET = {
    PENDING: "pending",
    SUCCEEDED: "succeeded",
    FAILED: "failed",
    CANCELLED: "cancelled_jobs",
}


@dataclass
class BatchJob:
    """A job of a batch: its state and the version of the last job event counted."""

    job_id: UUID
    batch_id: UUID
    state: str
    version: int


@dataclass
class BatchTally:
    """The changing part of a batch's row: counts, flags and callback jobs."""

    id: UUID
    tenant: str
    allow_failures: bool
    callbacks: frozenset[str]
    total: int = 0
    pending: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled_jobs: int = 0
    cancelled: bool = False
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    finish_recorded: bool = False
    finished_at: datetime | None = None
    then_job_id: UUID | None = None
    catch_job_id: UUID | None = None
    finally_job_id: UUID | None = None
    updated_at: datetime | None = None
    version: int = 0

    def progress(self) -> BatchProgress:
        return BatchProgress(
            total=self.total,
            pending=self.pending,
            succeeded=self.succeeded,
            failed=self.failed,
            cancelled=self.cancelled_jobs,
        )

    def callback_job(self, kind: CallbackKind) -> UUID | None:
        job_id: UUID | None = getattr(self, f"{kind.value}_job_id")
        return job_id

    def changes(self) -> dict[str, Any]:
        """The columns a flush writes."""
        progress = self.progress()
        return {
            "total": self.total,
            "pending": self.pending,
            "processed": progress.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cancelled_jobs": self.cancelled_jobs,
            "progress": progress.percent,
            "cancelled": self.cancelled,
            "cancelled_at": self.cancelled_at,
            "cancelled_by": self.cancelled_by,
            "cancel_reason": self.cancel_reason,
            "finish_recorded": self.finish_recorded,
            "finished_at": self.finished_at,
            "then_job_id": self.then_job_id,
            "catch_job_id": self.catch_job_id,
            "finally_job_id": self.finally_job_id,
            "updated_at": self.updated_at,
            "version": self.version,
        }


class BatchesWriter(Protocol):
    """What the batches ledger needs from its store, inside one transaction."""

    def insert_batch(self, row: dict[str, Any]) -> None: ...
    def tallies(self, batch_ids: Collection[UUID]) -> dict[UUID, BatchTally]: ...
    def update_batch(self, batch_id: UUID, changes: dict[str, Any]) -> None: ...
    def batch_jobs(self, job_ids: Collection[UUID]) -> dict[UUID, BatchJob]: ...
    def put_batch_jobs(self, jobs: Sequence[BatchJob]) -> None:
        """Insert these jobs, or update the ones already there."""
        ...

    def job_ids(self, batch_id: UUID, state: str) -> list[UUID]: ...


@dataclass
class BatchLedger:
    """One pass over a page of the log: batches and jobs read once, written back by `flush`."""

    writer: BatchesWriter
    _tallies: dict[UUID, BatchTally | None] = field(default_factory=dict)
    _jobs: dict[UUID, BatchJob | None] = field(default_factory=dict)
    _dirty_tallies: set[UUID] = field(default_factory=set)
    _dirty_jobs: set[UUID] = field(default_factory=set)

    def prefetch(self, events: Sequence[LoggedEvent]) -> None:
        """Look up every job of the page in one query (most are in no batch at all)."""
        wanted = {
            logged.event.originator_id
            for logged in events
            if type(logged.event) in JOB_OUTCOMES and logged.event.originator_id not in self._jobs
        }
        if not wanted:
            return
        found = self.writer.batch_jobs(wanted)
        for job_id in wanted:
            self._jobs[job_id] = found.get(job_id)

    def tally(self, batch_id: UUID) -> BatchTally | None:
        if batch_id not in self._tallies:
            self._tallies[batch_id] = self.writer.tallies([batch_id]).get(batch_id)
        return self._tallies[batch_id]

    def touch(self, tally: BatchTally) -> None:
        """Mark `tally` as changed: the next flush writes it."""
        self._dirty_tallies.add(tally.id)

    def apply(self, logged: LoggedEvent) -> BatchTally | None:
        """Count one event; return the batch it changed (None if it changed nothing)."""
        event = logged.event
        if isinstance(event, Batch.Created):
            return self._created(logged)
        if isinstance(event, BATCH_EVENTS[1:]):
            return self._batch_event(event)
        outcome = JOB_OUTCOMES.get(type(event))
        if outcome is None:
            return None
        job = self._jobs.get(event.originator_id)
        if job is None or event.originator_version <= job.version:
            return None  # not a batch's job, or an event counted before
        tally = self.tally(job.batch_id)
        if tally is None:  # pragma: no cover - a job is only listed with its batch
            return None
        if job.state != outcome:
            setattr(tally, _BUCKET[job.state], getattr(tally, _BUCKET[job.state]) - 1)
            setattr(tally, _BUCKET[outcome], getattr(tally, _BUCKET[outcome]) + 1)
            job.state = outcome
        job.version = event.originator_version
        self._dirty_jobs.add(job.job_id)
        if tally.pending == 0 and tally.total > 0:
            tally.finished_at = tally.finished_at or event.at
        else:
            tally.finished_at = None
        tally.updated_at = event.at
        self.touch(tally)
        return tally

    def _created(self, logged: LoggedEvent) -> BatchTally | None:
        event = logged.event
        if self.tally(event.originator_id) is not None:
            return None  # replayed
        callbacks = event.callbacks
        tally = BatchTally(
            id=event.originator_id,
            tenant=event.tenant,
            allow_failures=event.allow_failures,
            callbacks=frozenset(callbacks),
            updated_at=event.at,
            version=event.originator_version,
        )
        commands = {
            f"{kind.value}_command": callbacks[kind.value]["command_line"]
            if kind.value in callbacks
            else None
            for kind in CallbackKind
        }
        self.writer.insert_batch(
            {
                "id": tally.id,
                "seq": logged.position,
                "tenant": event.tenant,
                "name": event.name,
                "allow_failures": event.allow_failures,
                **commands,
                "created_by": event.by,
                "created_at": event.at,
                **tally.changes(),
            }
        )
        self._tallies[tally.id] = tally
        return tally

    def _batch_event(self, event: Any) -> BatchTally | None:
        tally = self.tally(event.originator_id)
        if tally is None or event.originator_version <= tally.version:
            return None
        if isinstance(event, Batch.JobsAdded):
            for job_id in event.job_ids:
                self._jobs[job_id] = BatchJob(job_id, tally.id, PENDING, 0)
                self._dirty_jobs.add(job_id)
            tally.total += len(event.job_ids)
            tally.pending += len(event.job_ids)
            tally.finished_at = None
        elif isinstance(event, Batch.Cancelled):
            tally.cancelled = True
            tally.cancelled_at = event.at
            tally.cancelled_by = event.by
            tally.cancel_reason = event.reason
        elif isinstance(event, Batch.Finished):
            tally.finish_recorded = True
        elif isinstance(event, Batch.CallbackDispatched):
            setattr(tally, f"{event.kind}_job_id", event.job_id)
        tally.version = event.originator_version
        tally.updated_at = event.at
        self.touch(tally)
        return tally

    def job_ids(self, batch_id: UUID, state: str) -> list[UUID]:
        """The batch's jobs in `state`, as counted so far (flushes first)."""
        self.flush()
        return self.writer.job_ids(batch_id, state)

    def flush(self) -> None:
        jobs = [self._jobs[job_id] for job_id in sorted(self._dirty_jobs)]
        self.writer.put_batch_jobs([job for job in jobs if job is not None])
        for batch_id in sorted(self._dirty_tallies):
            tally = self._tallies[batch_id]
            if tally is not None:
                self.writer.update_batch(batch_id, tally.changes())
        self._dirty_jobs.clear()
        self._dirty_tallies.clear()


class BatchesProjection:
    """Keeps one row per batch with its counts and progress, and each batch job's state."""

    name = "batches"
    topics = TOPICS

    def process(self, events: Sequence[LoggedEvent], writer: BatchesWriter) -> None:
        ledger = BatchLedger(writer)
        ledger.prefetch(events)
        for logged in events:
            ledger.apply(logged)
        ledger.flush()


@dataclass(frozen=True)
class BatchRow:
    """A batch as the read model holds it; `finished` means every job reached a final state."""

    id: UUID
    seq: int
    tenant: str
    name: str
    allow_failures: bool
    total: int
    pending: int
    processed: int
    succeeded: int
    failed: int
    cancelled_jobs: int
    progress: int
    cancelled: bool
    cancelled_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None
    finished_at: datetime | None
    then_command: str | None
    catch_command: str | None
    finally_command: str | None
    then_job_id: UUID | None
    catch_job_id: UUID | None
    finally_job_id: UUID | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


class BatchesQueries(Protocol):
    """Read side of the batches read model."""

    def get_batch(self, tenant: str, batch_id: UUID) -> BatchRow | None: ...
    def list_batches(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[BatchRow], str | None]: ...
    def batch_job_ids(self, batch_id: UUID, state: str) -> list[UUID]: ...
