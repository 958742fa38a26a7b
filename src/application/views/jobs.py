"""The jobs read model (list, detail, waiting, failed, comments) and per-queue counts."""

from __future__ import annotations

import builtins
import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.job import Job, JobStatus, validate_queue
from domain.shared import ValidationError, require_utc

# Counted per (tenant, queue, status): the projection is the only writer of these rows, so
# the counts cannot drift the way counters bumped by many workers do.
CountKey = tuple[str, str, str]


@dataclass(frozen=True)
class JobState:
    tenant: str
    queue: str
    status: str


class JobsWriter(Protocol):
    """What the jobs projection needs from its store, inside one transaction."""

    def job_state(self, job_id: UUID) -> JobState | None: ...
    def insert_job(self, row: dict[str, Any]) -> None: ...
    def update_job(self, job_id: UUID, changes: dict[str, Any]) -> None: ...
    def add_counts(self, deltas: dict[CountKey, int]) -> None: ...
    def insert_comment(self, row: dict[str, Any]) -> None: ...


JOB_EVENTS = (
    Job.Dispatched,
    Job.Started,
    Job.Succeeded,
    Job.AttemptFailed,
    Job.AttemptNotCounted,
    Job.RetryScheduled,
    Job.DeadLettered,
    Job.CancellationRequested,
    Job.Cancelled,
    Job.Retried,
    Job.Forgotten,
    Job.CommentAdded,
)


class JobsProjection:
    """Keeps one row per job and the per-queue status counts."""

    name = "jobs"
    topics = tuple(topic(cls) for cls in JOB_EVENTS)

    def process(self, events: Sequence[LoggedEvent], writer: JobsWriter) -> None:  # noqa: C901 - one branch per event type
        deltas: Counter[CountKey] = Counter()
        states: dict[UUID, JobState] = {}

        def state_of(job_id: UUID) -> JobState | None:
            return states.get(job_id) or writer.job_state(job_id)

        def move(job_id: UUID, status: JobStatus, changes: dict[str, Any]) -> None:
            current = state_of(job_id)
            if current is None:
                return  # an event for a job this read model never saw dispatched
            deltas[(current.tenant, current.queue, current.status)] -= 1
            deltas[(current.tenant, current.queue, status.value)] += 1
            states[job_id] = JobState(current.tenant, current.queue, status.value)
            writer.update_job(job_id, {"status": status.value, **changes})

        for logged in events:
            event = logged.event
            job_id = event.originator_id
            common = {"updated_at": event.at, "version": event.originator_version}
            if isinstance(event, Job.Dispatched):
                available = max(event.at, event.not_before) if event.not_before else event.at
                writer.insert_job(
                    {
                        "id": job_id,
                        "seq": logged.position,
                        "tenant": event.tenant,
                        "command": event.command,
                        "command_line": event.command_line,
                        "arguments": json.dumps(event.arguments),
                        "options": json.dumps(event.options),
                        "queue": event.queue,
                        "status": JobStatus.WAITING.value,
                        "attempts": 0,
                        "max_attempts": event.max_attempts,
                        "timeout_seconds": event.timeout_seconds,
                        "requested_by": event.requested_by,
                        "batch_id": event.batch_id,
                        "schedule_id": event.schedule_id,
                        "dispatched_at": event.at,
                        "available_at": available,
                        "forgotten": False,
                        **common,
                    }
                )
                states[job_id] = JobState(event.tenant, event.queue, JobStatus.WAITING.value)
                deltas[(event.tenant, event.queue, JobStatus.WAITING.value)] += 1
            elif isinstance(event, Job.Started):
                move(
                    job_id,
                    JobStatus.RUNNING,
                    {
                        "attempts": event.attempt,
                        "worker_id": event.worker_id,
                        "started_at": event.at,
                        "finished_at": None,
                        "duration_ms": None,
                        **common,
                    },
                )
            elif isinstance(event, Job.Succeeded):
                move(
                    job_id,
                    JobStatus.SUCCEEDED,
                    {
                        "result": json.dumps(event.result),
                        "output": event.output,
                        "duration_ms": event.duration_ms,
                        "finished_at": event.at,
                        **common,
                    },
                )
            elif isinstance(event, Job.AttemptFailed):
                # Status changes with the RetryScheduled or DeadLettered event saved with it.
                writer.update_job(
                    job_id,
                    {
                        "last_error_type": event.error_type,
                        "last_error_message": event.message,
                        "last_error_traceback": event.traceback,
                        "output": event.output,
                        "duration_ms": event.duration_ms,
                        "failed_at": event.at,
                        **common,
                    },
                )
            elif isinstance(event, Job.RetryScheduled):
                move(job_id, JobStatus.WAITING, {"available_at": event.retry_at, **common})
            elif isinstance(event, Job.DeadLettered):
                move(job_id, JobStatus.FAILED, {"finished_at": event.at, **common})
            elif isinstance(event, Job.CancellationRequested):
                writer.update_job(job_id, {"cancel_requested_by": event.by, **common})
            elif isinstance(event, Job.Cancelled):
                move(
                    job_id,
                    JobStatus.CANCELLED,
                    {"finished_at": event.at, "cancelled_by": event.by, **common},
                )
            elif isinstance(event, Job.Retried):
                move(
                    job_id,
                    JobStatus.WAITING,
                    {"available_at": event.at, "finished_at": None, "forgotten": False, **common},
                )
            elif isinstance(event, Job.Forgotten):
                writer.update_job(job_id, {"forgotten": True, **common})
            elif isinstance(event, Job.CommentAdded):
                writer.insert_comment(
                    {
                        "id": event.comment_id,
                        "job_id": job_id,
                        "author": event.author,
                        "text": event.text,
                        "at": event.at,
                        "position": logged.position,
                    }
                )
                writer.update_job(job_id, common)
        writer.add_counts({key: delta for key, delta in deltas.items() if delta})


@dataclass(frozen=True)
class JobRow:
    """One job as the read model holds it."""

    id: UUID
    seq: int
    tenant: str
    command: str
    command_line: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    queue: str
    status: str
    attempts: int
    max_attempts: int
    timeout_seconds: float | None
    requested_by: str
    batch_id: str | None
    schedule_id: str | None
    dispatched_at: datetime
    available_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    failed_at: datetime | None
    duration_ms: float | None
    worker_id: str | None
    last_error_type: str | None
    last_error_message: str | None
    last_error_traceback: str | None
    output: str | None
    result: Any
    cancel_requested_by: str | None
    cancelled_by: str | None
    forgotten: bool
    updated_at: datetime
    #: The job's version this row reflects (every event of the job moves it).
    version: int

    def is_delayed(self, now: datetime) -> bool:
        return self.status == JobStatus.WAITING.value and self.available_at > now


#: The longest text `JobFilter.search` looks for in command lines.
MAX_SEARCH = 200


@dataclass(frozen=True)
class JobFilter:
    """Filters of the jobs list; `status` may also be `delayed` or `ready`. The dispatch
    time range is `dispatched_from <= dispatched_at < dispatched_to`; `search` is a
    case-insensitive piece of the command line."""

    tenant: str
    status: str | None = None
    queue: str | None = None
    command: str | None = None
    batch_id: str | None = None
    schedule_id: str | None = None
    dispatched_from: datetime | None = None
    dispatched_to: datetime | None = None
    search: str | None = None
    #: The list's order: newest dispatched first (the default) or oldest first.
    oldest_first: bool = False

    def __post_init__(self) -> None:
        for name in ("dispatched_from", "dispatched_to"):
            moment = getattr(self, name)
            if moment is not None:
                object.__setattr__(self, name, require_utc(moment, name))
        if (
            self.dispatched_from
            and self.dispatched_to
            and self.dispatched_from >= self.dispatched_to
        ):
            raise ValidationError(
                "dispatched_from must be before dispatched_to", field="dispatched_from"
            )
        if self.search is not None:
            if not self.search.strip():
                object.__setattr__(self, "search", None)
            elif len(self.search) > MAX_SEARCH:
                raise ValidationError(
                    f"search is longer than {MAX_SEARCH} characters", field="search"
                )


@dataclass(frozen=True)
class FailedJobFilter:
    """Filters of the failed list and of bulk retry: `failed_from <= failed_at < failed_to`."""

    tenant: str
    queue: str | None = None
    command: str | None = None
    error_type: str | None = None
    failed_from: datetime | None = None
    failed_to: datetime | None = None

    def __post_init__(self) -> None:
        if self.queue is not None:
            validate_queue(self.queue)
        for name in ("failed_from", "failed_to"):
            moment = getattr(self, name)
            if moment is not None:
                object.__setattr__(self, name, require_utc(moment, name))
        if self.failed_from and self.failed_to and self.failed_from >= self.failed_to:
            raise ValidationError("failed_from must be before failed_to", field="failed_from")


@dataclass(frozen=True)
class FailedErrorGroup:
    """Failed, not forgotten jobs that share their last error: how many, and the newest."""

    error_type: str | None
    message: str | None
    count: int
    newest_failed_at: datetime | None


@dataclass(frozen=True)
class JobComment:
    """A note an operator left on a job."""

    id: UUID
    author: str
    text: str
    at: datetime


class FailedJobIds(Protocol):
    """Failed jobs (not forgotten) matching a filter, walked in pages by `seq`."""

    def failed_ids(
        self, flt: FailedJobFilter, *, after_seq: int, limit: int
    ) -> list[tuple[int, UUID]]:
        """Up to `limit` `(seq, id)` pairs with `seq > after_seq`, lowest `seq` first."""
        ...


@dataclass(frozen=True)
class Page:
    """A page of rows, newest first; `next_cursor` fetches the following page."""

    items: list[JobRow]
    next_cursor: str | None


@dataclass(frozen=True)
class QueueCounts:
    """The seed's getQueueStats for one queue."""

    queue: str
    waiting: int
    delayed: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


@dataclass(frozen=True)
class JobOwner:
    """Whose a job is and where it runs: what a live view needs to place one of its events."""

    tenant: str
    queue: str
    command: str


@dataclass(frozen=True)
class QueueStats:
    queues: list[QueueCounts]
    totals: dict[str, int] = field(default_factory=dict)


class JobsQueries(Protocol):
    """Read side of the jobs read model."""

    def get(self, tenant: str, job_id: UUID) -> JobRow | None: ...
    def owners(self, job_ids: Collection[UUID]) -> dict[UUID, JobOwner]:
        """The tenant, queue and command of each of `job_ids` the read model holds."""
        ...

    def list(self, flt: JobFilter, *, limit: int, cursor: str | None, now: datetime) -> Page: ...
    def failed(self, flt: FailedJobFilter, *, limit: int, cursor: str | None) -> Page:
        """Failed jobs that are not forgotten, newest first."""
        ...

    def count_failed(self, flt: FailedJobFilter) -> int: ...
    def failed_groups(self, flt: FailedJobFilter, *, limit: int) -> builtins.list[FailedErrorGroup]:
        """The failed list grouped by (error type, message), newest failure first, at most
        `limit` groups."""
        ...

    def waiting_in_order(
        self, tenant: str, queue: str, *, delayed: bool, now: datetime, limit: int
    ) -> builtins.list[JobRow]:
        """A queue's waiting jobs in the order they become due (`available_at`, then
        dispatch order): the due ones (`delayed=False`) or those not due yet."""
        ...

    def comments(self, job_id: UUID) -> builtins.list[JobComment]: ...
    def queue_stats(self, tenant: str, now: datetime) -> QueueStats: ...
