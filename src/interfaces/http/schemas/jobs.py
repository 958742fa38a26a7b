"""Request and response bodies of the jobs API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from application.jobs import MAX_DELAY
from application.views.job_timeline import TimelineEntry
from application.views.jobs import JobRow
from interfaces.http.schemas.common import (
    JOB_STATUSES,
    MAX_ATTEMPTS,
    MAX_TIMEOUT,
    OPTIONAL_QUEUE_RULE,
    QUEUE_RULE,
    UUID_TEXT,
    job_path,
    rule,
    utc,
    utc_or_none,
)

# -- requests ---------------------------------------------------------------------------------


class DispatchJob(Struct, forbid_unknown_fields=True, kw_only=True):
    """Run a registered command: `command` with `arguments`/`options`, or a `command_line`."""

    command: Annotated[
        str | None, Meta(description="Registered command name, e.g. `demo:echo`.")
    ] = None
    arguments: Annotated[
        list[Any] | dict[str, Any] | None,
        Meta(description="Arguments by position (list) or by name (object)."),
    ] = None
    options: Annotated[
        dict[str, Any] | None, Meta(description="Options by name (`-` or `_` spelling).")
    ] = None
    command_line: Annotated[
        str | None,
        Meta(description="A whole command line instead of command/arguments/options."),
    ] = None
    queue: Annotated[str, QUEUE_RULE] = "default"
    delay_seconds: Annotated[
        float,
        rule(
            "Run no sooner than this many seconds from now (0 to 365 days).",
            minimum=0,
            maximum=MAX_DELAY.total_seconds(),
        ),
    ] = 0.0
    not_before: Annotated[
        datetime | None,
        Meta(
            description=(
                "Run no sooner than this moment (ISO-8601 with a UTC offset): at most 365 days "
                "from now, as `delay_seconds`, and at most 1 day in the past (a moment already "
                "past means now). Not with `delay_seconds`."
            )
        ),
    ] = None
    max_attempts: Annotated[
        int, rule("Attempts before the job fails (1 to 100).", **MAX_ATTEMPTS)
    ] = 3
    timeout_seconds: Annotated[
        float | None, rule("Time limit of one attempt (up to 7 days).", **MAX_TIMEOUT)
    ] = None
    backoff_seconds: Annotated[
        float | None,
        rule("Base delay of the exponential retry backoff (0 to 86400).", minimum=0, maximum=86400),
    ] = None


class CancelJob(Struct, forbid_unknown_fields=True, kw_only=True):
    """Why the job is cancelled (recorded on its timeline)."""

    reason: Annotated[str, Meta(max_length=2000)] = ""


class RetryFailedJobs(Struct, forbid_unknown_fields=True, kw_only=True):
    """Which failed jobs to retry; no filter retries them all."""

    queue: Annotated[str | None, OPTIONAL_QUEUE_RULE] = None
    command: Annotated[str | None, Meta(description="Registered command name.")] = None
    error_type: Annotated[
        str | None, Meta(description="Exception class of the last failure, e.g. `RuntimeError`.")
    ] = None
    failed_from: Annotated[
        datetime | None, Meta(description="Last attempt failed at or after this moment.")
    ] = None
    failed_to: Annotated[
        datetime | None, Meta(description="Last attempt failed before this moment.")
    ] = None


class JobLinks(Struct, kw_only=True):
    """Where to find a job."""

    self: str


class DispatchedJob(Struct, kw_only=True):
    """A job that is recorded as dispatched; it runs once the relay has sent its message."""

    id: UUID
    status: Annotated[
        str,
        rule(
            "`waiting`; for a repeated `Idempotency-Key`, where the job it names stands now.",
            enum=JOB_STATUSES,
        ),
    ]
    command_line: str
    queue: Annotated[str, QUEUE_RULE]
    links: JobLinks


class JobAction(Struct, kw_only=True):
    """The outcome of a retry or cancel request."""

    id: UUID
    status: Annotated[
        str,
        rule(
            "The job's status, or `cancelling` for a running job asked to stop.",
            enum=[*JOB_STATUSES, "cancelling"],
        ),
    ]
    links: JobLinks


class TimelineItem(Struct, kw_only=True):
    """One event of a job's life; `position` is its place in the log (null if not projected)."""

    position: int | None
    event: str
    at: datetime
    actor: str | None
    details: dict[str, Any]


class JobItem(Struct, kw_only=True):
    """A job as the jobs read model holds it; `delayed` is a waiting job that is not due yet."""

    id: UUID
    seq: int | None
    tenant: str
    command: str
    command_line: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    queue: Annotated[str, QUEUE_RULE]
    status: Annotated[str, rule("Where the job stands.", enum=JOB_STATUSES)]
    delayed: bool
    attempts: int
    max_attempts: int
    timeout_seconds: float | None
    requested_by: str
    batch_id: Annotated[str | None, rule("The batch it belongs to.", **UUID_TEXT)]
    schedule_id: Annotated[str | None, rule("The schedule that started it.", **UUID_TEXT)]
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
    forgotten: Annotated[
        bool, Meta(description="Taken off the failed list by an operator (history is kept).")
    ]
    updated_at: datetime
    links: JobLinks


class JobDetail(JobItem, kw_only=True):
    """A job with its timeline; `projected` is false while the read model has not caught up."""

    projected: bool
    timeline: list[TimelineItem]


class JobPage(Struct, kw_only=True):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[JobItem]
    next_cursor: str | None


class WaitingJobs(Struct, kw_only=True):
    """Waiting jobs: due now (`ready`) and not due yet (`delayed`, due at `available_at`)."""

    ready: list[JobItem]
    delayed: list[JobItem]


class FailedJob(Struct, kw_only=True):
    """A job whose attempts are used up, with its last error."""

    id: UUID
    command: str
    command_line: str
    queue: Annotated[str, QUEUE_RULE]
    attempts: int
    max_attempts: int
    error_type: str | None
    message: str | None
    traceback: str | None
    failed_at: datetime | None
    dispatched_at: datetime
    requested_by: str
    batch_id: Annotated[str | None, rule("The batch it belongs to.", **UUID_TEXT)]
    schedule_id: Annotated[str | None, rule("The schedule that started it.", **UUID_TEXT)]
    links: JobLinks


class FailedJobPage(Struct, kw_only=True):
    """A page of failed jobs, newest first."""

    items: list[FailedJob]
    next_cursor: str | None


class BulkRetryResult(Struct, kw_only=True):
    """Jobs retried, and jobs skipped because they had stopped being failed meanwhile."""

    retried: int
    skipped: int


# -- builders ---------------------------------------------------------------------------------


def job_item(row: JobRow, now: datetime, *, seq: int | None = None) -> JobItem:
    return JobItem(
        id=row.id,
        seq=row.seq if seq is None else seq,
        tenant=row.tenant,
        command=row.command,
        command_line=row.command_line,
        arguments=row.arguments,
        options=row.options,
        queue=row.queue,
        status=row.status,
        delayed=row.is_delayed(now),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        requested_by=row.requested_by,
        batch_id=row.batch_id,
        schedule_id=row.schedule_id,
        dispatched_at=utc(row.dispatched_at),
        available_at=utc(row.available_at),
        started_at=utc_or_none(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        failed_at=utc_or_none(row.failed_at),
        duration_ms=row.duration_ms,
        worker_id=row.worker_id,
        last_error_type=row.last_error_type,
        last_error_message=row.last_error_message,
        last_error_traceback=row.last_error_traceback,
        output=row.output,
        result=row.result,
        cancel_requested_by=row.cancel_requested_by,
        cancelled_by=row.cancelled_by,
        forgotten=row.forgotten,
        updated_at=utc(row.updated_at),
        links=JobLinks(self=job_path(row.id)),
    )


def job_detail(item: JobItem, timeline: list[TimelineEntry], *, projected: bool) -> JobDetail:
    fields = msgspec.structs.asdict(item)
    if not projected:
        fields["seq"] = None
    return JobDetail(
        **fields,
        projected=projected,
        timeline=[
            TimelineItem(
                position=entry.position if projected else None,
                event=entry.event,
                at=utc(entry.at),
                actor=entry.actor,
                details=entry.details,
            )
            for entry in timeline
        ],
    )


def failed_job(row: JobRow) -> FailedJob:
    return FailedJob(
        id=row.id,
        command=row.command,
        command_line=row.command_line,
        queue=row.queue,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        error_type=row.last_error_type,
        message=row.last_error_message,
        traceback=row.last_error_traceback,
        failed_at=utc_or_none(row.failed_at),
        dispatched_at=utc(row.dispatched_at),
        requested_by=row.requested_by,
        batch_id=row.batch_id,
        schedule_id=row.schedule_id,
        links=JobLinks(self=job_path(row.id)),
    )
