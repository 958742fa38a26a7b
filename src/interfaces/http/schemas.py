"""Request and response bodies of the REST API (msgspec Structs), and their builders."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from application.commands import Signature
from application.views.job_timeline import TimelineEntry
from application.views.jobs import JobRow, QueueStats


def job_path(job_id: UUID) -> str:
    return f"/api/jobs/{job_id}"


def utc(moment: datetime) -> datetime:
    """Times leave the API in UTC whatever the database session's time zone is."""
    return moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


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
    queue: Annotated[str, Meta(description="high, default or low.")] = "default"
    delay_seconds: Annotated[
        float, Meta(description="Run no sooner than this many seconds from now (0 to 365 days).")
    ] = 0.0
    not_before: Annotated[
        datetime | None,
        Meta(description="Run no sooner than this moment (ISO-8601 with a UTC offset)."),
    ] = None
    max_attempts: Annotated[int, Meta(description="Attempts before the job fails (1 to 100).")] = 3
    timeout_seconds: Annotated[
        float | None, Meta(description="Time limit of one attempt (up to 7 days).")
    ] = None
    backoff_seconds: Annotated[
        float | None, Meta(description="Base delay of the exponential retry backoff.")
    ] = None


class CancelJob(Struct, forbid_unknown_fields=True, kw_only=True):
    """Why the job is cancelled (recorded on its timeline)."""

    reason: Annotated[str, Meta(max_length=2000)] = ""


# -- responses --------------------------------------------------------------------------------


class ErrorBody(Struct, omit_defaults=True, kw_only=True):
    """Every error: a short kind, what was wrong and, when known, which field."""

    error: str
    message: str
    field: str | None = None
    details: list[Any] | None = None


class JobLinks(Struct, kw_only=True):
    """Where to find a job."""

    self: str


class DispatchedJob(Struct, kw_only=True):
    """A job that is recorded as dispatched; it runs once the relay has sent its message."""

    id: UUID
    status: str
    command_line: str
    queue: str
    links: JobLinks


class JobAction(Struct, kw_only=True):
    """The outcome of a retry or cancel request."""

    id: UUID
    status: str
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
    queue: str
    status: str
    delayed: bool
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
    queue: str
    attempts: int
    max_attempts: int
    error_type: str | None
    message: str | None
    traceback: str | None
    failed_at: datetime | None
    dispatched_at: datetime
    requested_by: str
    batch_id: str | None
    schedule_id: str | None
    links: JobLinks


class FailedJobPage(Struct, kw_only=True):
    """A page of failed jobs, newest first."""

    items: list[FailedJob]
    next_cursor: str | None


class QueueCountsView(Struct, kw_only=True):
    """Jobs of one queue by status; `waiting` counts only jobs that are due."""

    waiting: int
    delayed: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class QueuesView(Struct, kw_only=True):
    """Per-queue counts, their totals and the number of failed jobs."""

    queues: dict[str, QueueCountsView]
    totals: QueueCountsView
    failed: int


class ArgumentSpec(Struct, kw_only=True):
    """A positional argument of a command."""

    name: str
    type: str
    required: bool
    default: Any
    help: str
    choices: list[str] | None


class OptionSpec(Struct, kw_only=True):
    """An option (`--name=value`) or flag (`--name` / `--no-name`) of a command."""

    name: str
    type: str
    default: Any
    help: str
    choices: list[str] | None
    flag: bool


class CommandSignature(Struct, kw_only=True):
    """What a registered command accepts."""

    name: str
    description: str
    usage: str
    arguments: list[ArgumentSpec]
    options: list[OptionSpec]


class HealthStatus(Struct, kw_only=True):
    """The process answers."""

    status: str


class CheckResult(Struct, omit_defaults=True, kw_only=True):
    """One readiness check: `ok`, or the error it raised."""

    ok: bool
    error: str | None = None


class ReadyStatus(Struct, omit_defaults=True, kw_only=True):
    """Readiness: every check passed (`ok`), or which ones failed and why (`unavailable`)."""

    status: str
    checks: dict[str, CheckResult]
    error: str | None = None
    message: str | None = None


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


_COUNTED = ("waiting", "delayed", "running", "succeeded", "failed", "cancelled")


def _counts(values: Mapping[str, Any]) -> QueueCountsView:
    return QueueCountsView(**{name: int(values.get(name, 0)) for name in _COUNTED})


def queues_view(stats: QueueStats) -> QueuesView:
    totals = _counts(stats.totals)
    return QueuesView(
        queues={q.queue: _counts(dataclasses.asdict(q)) for q in stats.queues},
        totals=totals,
        failed=totals.failed,
    )


def command_signature(signature: Signature) -> CommandSignature:
    return msgspec.convert(signature.to_dict(), CommandSignature)
