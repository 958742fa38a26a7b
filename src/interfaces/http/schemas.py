"""Request and response bodies of the REST API (msgspec Structs), and their builders."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar.openapi.spec import OpenAPIFormat
from msgspec import UNSET, Meta, Struct, UnsetType

from application.commands import Signature
from application.frequencies import MAX_PREVIEW, Tick, next_tick, timezone_names
from application.jobs import MAX_DELAY
from application.ports import CronCalculator
from application.views.job_timeline import TimelineEntry
from application.views.jobs import JobComment, JobRow, QueueStats
from application.views.queue_metrics import WINDOW_MINUTES, QueueActivity, Timing
from application.views.queue_pauses import QueuePause
from application.views.schedules import Comment, RunRow, ScheduleRow
from domain.batch import MAX_JOBS_PER_ADD
from domain.batch import MAX_NAME as MAX_BATCH_NAME
from domain.frequency import HELPERS, Frequency
from domain.job import MAX_COMMENT_CHARS, QUEUES, JobStatus
from domain.schedule import MAX_DESCRIPTION, MAX_NAME, MissedRuns


def job_path(job_id: UUID) -> str:
    return f"/api/jobs/{job_id}"


def utc(moment: datetime) -> datetime:
    """Times leave the API in UTC whatever the database session's time zone is."""
    return moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


# -- rules stated in the OpenAPI document -----------------------------------------------------
# The application checks these rules and answers 422 with a message naming the rule; msgspec
# constraints would refuse the value first with a terser 400. So they are only stated, as
# JSON-schema keywords Litestar copies into the field's schema (`extra_json_schema["extra"]`).


def rule(description: str, **keywords: Any) -> Meta:
    """A field's description, and JSON-schema keywords for a rule the application checks."""
    return Meta(description=description, extra_json_schema={"extra": keywords})


QUEUE_NAMES = list(QUEUES)
JOB_STATUSES = [status.value for status in JobStatus]
UUID_TEXT = {"format": OpenAPIFormat.UUID}
#: A non-blank text (some character that is not white space).
NOT_BLANK = r"\S"
MAX_ATTEMPTS = {"minimum": 1, "maximum": 100}
MAX_TIMEOUT = {"exclusive_minimum": 0, "maximum": 7 * 86400}
_QUEUE = rule("high, default or low.", enum=QUEUE_NAMES)
_OPTIONAL_QUEUE = rule("high, default or low.", enum=[*QUEUE_NAMES, None])


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
    queue: Annotated[str, _QUEUE] = "default"
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

    queue: Annotated[str | None, _OPTIONAL_QUEUE] = None
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
    status: Annotated[
        str,
        rule(
            "`waiting`; for a repeated `Idempotency-Key`, where the job it names stands now.",
            enum=JOB_STATUSES,
        ),
    ]
    command_line: str
    queue: Annotated[str, _QUEUE]
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
    queue: Annotated[str, _QUEUE]
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
    queue: Annotated[str, _QUEUE]
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
    minimum: Annotated[float | None, Meta(description="Smallest value allowed (int, float).")]
    maximum: Annotated[float | None, Meta(description="Largest value allowed (int, float).")]


class OptionSpec(Struct, kw_only=True):
    """An option (`--name=value`) or flag (`--name` / `--no-name`) of a command."""

    name: str
    type: str
    default: Any
    help: str
    choices: list[str] | None
    minimum: Annotated[float | None, Meta(description="Smallest value allowed (int, float).")]
    maximum: Annotated[float | None, Meta(description="Largest value allowed (int, float).")]
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


# -- schedules and frequencies ----------------------------------------------------------------


def schedule_path(schedule_id: UUID) -> str:
    return f"/api/schedules/{schedule_id}"


class HelperCallBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """One helper of a chain, e.g. `{"name": "dailyAt", "args": ["13:00"]}`."""

    name: Annotated[
        str, rule("Helper name; `GET /api/frequencies` lists them.", enum=sorted(HELPERS))
    ]
    args: Annotated[list[Any], Meta(description="The helper's arguments, in order.")] = (
        msgspec.field(default_factory=list)
    )


_EXPRESSION = Meta(
    description="A cron expression: 5 fields, or 6 with seconds first (not with `helpers`)."
)
_HELPERS = Meta(description="A chain of helpers applied in order (not with `expression`).")
_TIMEZONE = rule(
    "IANA timezone the frequency is read in, e.g. `Europe/Rome`.", enum=sorted(timezone_names())
)
_MISSED_RUNS = rule(
    "Ticks missed while no scheduler ran: `skip` or `run_once`.",
    enum=[policy.value for policy in MissedRuns],
)
_SCHEDULE_NAME = rule(
    f"A name for people, 1 to {MAX_NAME} characters (not blank).",
    min_length=1,
    max_length=MAX_NAME,
    pattern=NOT_BLANK,
)
_DESCRIPTION = rule(
    f"What the schedule is for, at most {MAX_DESCRIPTION} characters.", max_length=MAX_DESCRIPTION
)
_SCHEDULE_ATTEMPTS = rule("Attempts of each job (1 to 100).", **MAX_ATTEMPTS)
_TIMEOUT = rule("Time limit of one attempt (up to 7 days).", **MAX_TIMEOUT)


class CreateSchedule(Struct, forbid_unknown_fields=True, kw_only=True):
    """A new schedule: what to run (a command line or command) and when (cron or helpers)."""

    name: Annotated[str, _SCHEDULE_NAME]
    description: Annotated[str, _DESCRIPTION] = ""
    command_line: Annotated[
        str | None,
        Meta(description="A whole command line instead of command/arguments/options."),
    ] = None
    command: Annotated[str | None, Meta(description="Registered command name.")] = None
    arguments: Annotated[
        list[Any] | dict[str, Any] | None,
        Meta(description="Arguments by position (list) or by name (object)."),
    ] = None
    options: Annotated[dict[str, Any] | None, Meta(description="Options by name.")] = None
    expression: Annotated[str | None, _EXPRESSION] = None
    helpers: Annotated[list[HelperCallBody] | None, _HELPERS] = None
    timezone: Annotated[str, _TIMEZONE] = "UTC"
    queue: Annotated[str, _QUEUE] = "default"
    max_attempts: Annotated[int, _SCHEDULE_ATTEMPTS] = 3
    timeout_seconds: Annotated[float | None, _TIMEOUT] = None
    without_overlapping: Annotated[
        bool, Meta(description="Skip a tick while the previous run is still going.")
    ] = False
    missed_runs: Annotated[str, _MISSED_RUNS] = "skip"
    active: Annotated[bool, Meta(description="False creates the schedule paused.")] = True


class EditSchedule(Struct, forbid_unknown_fields=True, kw_only=True):
    """The settings to change; those left out keep their value."""

    name: Annotated[str | UnsetType, _SCHEDULE_NAME] = UNSET
    description: Annotated[str | UnsetType, _DESCRIPTION] = UNSET
    command_line: Annotated[
        str | UnsetType, Meta(description="A new command line (or command/arguments/options).")
    ] = UNSET
    command: str | UnsetType = UNSET
    arguments: list[Any] | dict[str, Any] | UnsetType | None = UNSET
    options: dict[str, Any] | UnsetType | None = UNSET
    expression: Annotated[str | UnsetType, _EXPRESSION] = UNSET
    helpers: Annotated[list[HelperCallBody] | UnsetType, _HELPERS] = UNSET
    timezone: Annotated[str | UnsetType, _TIMEZONE] = UNSET
    queue: Annotated[str | UnsetType, _QUEUE] = UNSET
    max_attempts: Annotated[int | UnsetType, _SCHEDULE_ATTEMPTS] = UNSET
    timeout_seconds: Annotated[float | UnsetType | None, _TIMEOUT] = UNSET
    without_overlapping: bool | UnsetType = UNSET
    missed_runs: Annotated[str | UnsetType, _MISSED_RUNS] = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields given, as plain values (helpers as `{name, args}` dicts)."""
        given = {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if getattr(self, name) is not UNSET
        }
        if "helpers" in given:
            given["helpers"] = [msgspec.structs.asdict(call) for call in given["helpers"]]
        return given


class AddComment(Struct, forbid_unknown_fields=True, kw_only=True):
    """A note on a schedule or a job: `{"text": "…"}`, signed by the caller
    (`X-Chronicle-User`)."""

    text: Annotated[
        str,
        rule(
            f"The comment: 1 to {MAX_COMMENT_CHARS:,} characters, not only white space.",
            min_length=1,
            max_length=MAX_COMMENT_CHARS,
            pattern=NOT_BLANK,
        ),
    ]


class PreviewFrequency(Struct, forbid_unknown_fields=True, kw_only=True):
    """A frequency to try out: `expression` or `helpers`, in a timezone."""

    expression: Annotated[str | None, _EXPRESSION] = None
    helpers: Annotated[list[HelperCallBody] | None, _HELPERS] = None
    timezone: Annotated[str, _TIMEZONE] = "UTC"
    count: Annotated[
        int,
        rule(f"How many next runs to list, 1 to {MAX_PREVIEW}.", minimum=1, maximum=MAX_PREVIEW),
    ] = 10


class ScheduleLinks(Struct, kw_only=True):
    """Where to find a schedule, its runs and its comments."""

    self: str
    runs: str
    comments: str


class LastRun(Struct, kw_only=True):
    """The newest tick seen (`due_at`) and the job a schedule last started (`job_id`, `at`)."""

    due_at: datetime | None
    job_id: UUID | None
    at: datetime | None


class ScheduleView(Struct, kw_only=True):
    """A schedule and its next due time (UTC, and local with offset; null while paused)."""

    id: UUID
    seq: int | None
    tenant: str
    name: str
    description: str
    command: str
    command_line: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    frequency: dict[str, Any]
    expression: str
    description_human: str
    timezone: str
    queue: str
    max_attempts: int
    timeout_seconds: float | None
    without_overlapping: bool
    missed_runs: str
    active: bool
    paused_at: datetime | None
    next_due_at: datetime | None
    next_due_local: str | None
    next_due_dst: Annotated[
        str | None, Meta(description="`shifted_after_gap`, `first_occurrence`, ... or null.")
    ]
    last_run: LastRun | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    projected: Annotated[
        bool, Meta(description="False while the read model has not caught up with a change.")
    ]
    links: ScheduleLinks
    history: Annotated[
        list[ScheduleHistoryEntry] | None,
        Meta(description="Every change to the schedule and who made it (detail view only)."),
    ] = None


class ScheduleHistoryEntry(Struct, kw_only=True):
    """One event of a schedule's own life: created, edited (what changed), paused, …"""

    version: int
    event: str
    at: datetime
    by: str
    changes: dict[str, Any] | None = None


class SchedulePage(Struct, kw_only=True):
    """A page of schedules, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[ScheduleView]
    next_cursor: str | None


class RunItem(Struct, kw_only=True):
    """One tick of a schedule: the job it started and how that went, or why it was skipped."""

    tick_id: UUID
    due_at: datetime
    triggered_at: datetime | None
    late_ms: Annotated[
        float | None,
        Meta(description="How late the tick fired (triggered_at - due_at); null if manual."),
    ]
    manual: bool
    job_id: UUID | None
    status: str
    attempts: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    outcome: str | None
    error: str | None
    output: str | None
    skip_reason: str | None
    skip_detail: str | None
    skip_count: int
    dst: str | None
    triggered_by: str | None


class RunPage(Struct, kw_only=True):
    """A page of a schedule's runs, newest first."""

    items: list[RunItem]
    next_cursor: str | None


class CommentView(Struct, kw_only=True):
    """A comment on a schedule or a job."""

    id: UUID
    author: str
    text: str
    at: datetime


class RunNowLinks(Struct, kw_only=True):
    """Where to follow the job a manual run started."""

    job: str


class RunNowAccepted(Struct, kw_only=True):
    """The job a manual run started."""

    job_id: UUID
    links: RunNowLinks


class HelperParameterView(Struct, kw_only=True):
    """One argument of a helper; `default` applies when it is left out."""

    name: str
    type: str
    default: Any
    required: bool
    description: str


class HelperExample(Struct, kw_only=True):
    """A helper chain using the helper, with the cron expression and English it gives."""

    helpers: list[HelperCallBody]
    expression: str
    description: str


class HelperEntry(Struct, kw_only=True):
    """A frequency helper (Laravel-style), its parameters and a worked example."""

    name: str
    parameters: list[HelperParameterView]
    description: str
    example: HelperExample


class PreviewRun(Struct, kw_only=True):
    """A coming tick: `local` (with offset), `utc`, its wall-clock `slot`, DST notes."""

    local: str
    utc: str
    skipped: str | None
    dst: str | None
    slot: str


class FrequencyPreview(Struct, kw_only=True):
    """A frequency's canonical cron expression, its English description and next runs."""

    expression: str
    description: str
    timezone: str
    next_runs: list[PreviewRun]


def next_due(
    frequency: Mapping[str, Any],
    timezone: str,
    *,
    active: bool,
    last_due_at: datetime | None,
    now: datetime,
    cron: CronCalculator,
) -> Tick | None:
    """A schedule's next tick that runs (DST-gap slots passed over); None while paused."""
    if not active:
        return None
    stored = Frequency.from_dict(frequency)
    tick = next_tick(stored, timezone, max(now, last_due_at or now), cron)
    for _ in range(1000):
        if tick.skipped is None:
            return tick
        tick = next_tick(stored, timezone, tick, cron)
    return None  # pragma: no cover - a thousand skipped slots in a row cannot happen


def local_iso(moment: datetime, timezone: str) -> str:
    """`moment` in `timezone`, ISO-8601 with its UTC offset."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat()


def schedule_view(
    row: ScheduleRow, now: datetime, cron: CronCalculator, *, projected: bool
) -> ScheduleView:
    frequency = Frequency.from_dict(row.frequency)
    tick = next_due(
        row.frequency,
        row.timezone,
        active=row.active,
        last_due_at=row.last_due_at,
        now=now,
        cron=cron,
    )
    seen = (row.last_due_at, row.last_job_id, row.last_run_at)
    return ScheduleView(
        id=row.id,
        seq=row.seq if projected else None,
        tenant=row.tenant,
        name=row.name,
        description=row.description,
        command=row.command,
        command_line=row.command_line,
        arguments=row.arguments,
        options=row.options,
        frequency=row.frequency,
        expression=frequency.expression,
        description_human=frequency.describe(),
        timezone=row.timezone,
        queue=row.queue,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        without_overlapping=row.without_overlapping,
        missed_runs=row.missed_runs,
        active=row.active,
        paused_at=utc_or_none(row.paused_at),
        next_due_at=utc(tick.due_at) if tick else None,
        next_due_local=local_iso(tick.due_at, row.timezone) if tick else None,
        next_due_dst=tick.dst if tick else None,
        last_run=None
        if seen == (None, None, None)
        else LastRun(
            due_at=utc_or_none(row.last_due_at),
            job_id=row.last_job_id,
            at=utc_or_none(row.last_run_at),
        ),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        version=row.version,
        projected=projected,
        links=ScheduleLinks(
            self=schedule_path(row.id),
            runs=f"{schedule_path(row.id)}/runs",
            comments=f"{schedule_path(row.id)}/comments",
        ),
    )


def run_item(row: RunRow) -> RunItem:
    return RunItem(
        tick_id=row.id,
        due_at=utc(row.due_at),
        triggered_at=utc_or_none(row.triggered_at),
        late_ms=row.late_ms,
        manual=row.manual,
        job_id=row.job_id,
        status=row.status,
        attempts=row.attempts,
        started_at=utc_or_none(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        duration_ms=row.duration_ms,
        outcome=row.outcome,
        error=row.error,
        output=row.output,
        skip_reason=row.skip_reason,
        skip_detail=row.skip_detail,
        skip_count=row.skip_count,
        dst=row.dst,
        triggered_by=row.triggered_by,
    )


def comment_view(comment: Comment | JobComment) -> CommentView:
    return CommentView(id=comment.id, author=comment.author, text=comment.text, at=utc(comment.at))


# -- queue control and statistics -------------------------------------------------------------


class PauseQueue(Struct, forbid_unknown_fields=True, kw_only=True):
    """Why the queue (or every queue) is paused, shown to other operators."""

    reason: Annotated[str, Meta(max_length=500)] = ""


class PauseView(Struct, kw_only=True):
    """A pause in force: who paused, why and when."""

    by: str
    reason: str
    at: datetime


class QueueControlView(Struct, kw_only=True):
    """A queue after pause or resume; `queue` null is the maintenance pause of every queue.

    After a pause (only), `held` says every live worker acts on it: no job of the queue starts
    from now on; otherwise `pending_workers` names those that did not say so in time."""

    queue: str | None
    paused: bool
    pause: PauseView | None
    held: bool | UnsetType = UNSET
    pending_workers: list[str] | UnsetType = UNSET


class TimingView(Struct, kw_only=True):
    """Milliseconds over the last hour: the mean, and the 95th percentile from a histogram."""

    avg: float | None
    p95: float | None


class QueueStatsView(QueueCountsView, kw_only=True):
    """Counts of one queue, whether it is paused, and its activity over the last hour."""

    paused: bool
    pause: PauseView | None
    processed_per_minute: list[int]
    wait_ms: TimingView
    run_ms: TimingView


class QueueOverview(Struct, kw_only=True):
    """Every queue with its counts and activity, the totals, and the maintenance pause."""

    queues: dict[str, QueueStatsView]
    totals: QueueCountsView
    failed: int
    paused: bool
    pause: PauseView | None


def pause_view(pause: QueuePause | None) -> PauseView | None:
    if pause is None:
        return None
    return PauseView(by=pause.by, reason=pause.reason, at=utc(pause.at))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def timing_view(timing: Timing) -> TimingView:
    return TimingView(avg=_ms(timing.avg), p95=_ms(timing.p95))


def queue_overview(
    stats: QueueStats, activity: list[QueueActivity], pauses: list[QueuePause]
) -> QueueOverview:
    """GET /api/queues: the counts of `queues_view`, plus pauses and the last hour's activity."""
    counts = queues_view(stats)
    by_queue = {pause.queue: pause for pause in pauses}
    active = {a.queue: a for a in activity}
    queues = {}
    for name, view in counts.queues.items():
        recent = active.get(name)
        queues[name] = QueueStatsView(
            **msgspec.structs.asdict(view),
            paused=name in by_queue,
            pause=pause_view(by_queue.get(name)),
            processed_per_minute=recent.processed_per_minute if recent else [0] * WINDOW_MINUTES,
            wait_ms=timing_view(recent.wait_ms if recent else Timing(None, None)),
            run_ms=timing_view(recent.run_ms if recent else Timing(None, None)),
        )
    return QueueOverview(
        queues=queues,
        totals=counts.totals,
        failed=counts.failed,
        paused=None in by_queue,
        pause=pause_view(by_queue.get(None)),
    )


# -- batches ----------------------------------------------------------------------------------


def batch_path(batch_id: UUID) -> str:
    return f"/api/batches/{batch_id}"


_CALLBACK = "A command line dispatched as a job {}, exactly once."
_BATCH_JOBS = rule(
    "The jobs (1 to "
    f'{MAX_JOBS_PER_ADD:,}): each a command line such as `"demo:echo hi"`, or an object as '
    "`POST /api/jobs` takes it.",
    min_items=1,
    max_items=MAX_JOBS_PER_ADD,
)


class CreateBatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """A batch (Laravel's `Bus::batch`): jobs, and callbacks run when they end."""

    name: Annotated[
        str,
        rule(
            f"A name for people, 1 to {MAX_BATCH_NAME} characters (not blank).",
            min_length=1,
            max_length=MAX_BATCH_NAME,
            pattern=NOT_BLANK,
        ),
    ]
    jobs: Annotated[list[DispatchJob | str], _BATCH_JOBS]
    allow_failures: Annotated[
        bool, Meta(description="False: the first failed job cancels the batch.")
    ] = False
    then: Annotated[str | None, Meta(description=_CALLBACK.format("when every job succeeded"))] = (
        None
    )
    catch: Annotated[str | None, Meta(description=_CALLBACK.format("on the first failed job"))] = (
        None
    )
    finally_: Annotated[
        str | None,
        Meta(description=_CALLBACK.format("when every job has finished (or was cancelled)")),
    ] = msgspec.field(default=None, name="finally")


class AddBatchJobs(Struct, forbid_unknown_fields=True, kw_only=True):
    """Jobs to add to an open batch."""

    jobs: Annotated[list[DispatchJob | str], _BATCH_JOBS]


class CancelBatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """Why the batch is cancelled (recorded on it and on its cancelled jobs)."""

    reason: Annotated[str, Meta(max_length=2000)] = ""


class BatchLinks(Struct, kw_only=True):
    """Where to find a batch and its jobs."""

    self: str
    jobs: str


class BatchCallbackView(Struct, kw_only=True):
    """A callback: its command line and, once dispatched, its job."""

    command_line: str
    job_id: UUID | None
    job: str | None


class BatchView(Struct, kw_only=True):
    """A batch with its counts: `processed` jobs reached a final state (succeeded, failed or
    cancelled); `progress` is processed / total in percent, halves rounded up."""

    id: UUID
    seq: int | None
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
    finished: Annotated[bool, Meta(description="Every job has reached a final state.")]
    cancelled: bool
    cancelled_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None
    callbacks: dict[str, BatchCallbackView]
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    updated_at: datetime
    projected: Annotated[
        bool, Meta(description="False while the read model has not caught up with a change.")
    ]
    links: BatchLinks


class BatchPage(Struct, kw_only=True):
    """A page of batches, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[BatchView]
    next_cursor: str | None


class AddedBatchJobs(Struct, kw_only=True):
    """The jobs added to a batch."""

    batch_id: UUID
    job_ids: list[UUID]
    links: BatchLinks


class RetriedBatchJobs(Struct, kw_only=True):
    """The batch's failed jobs that were retried."""

    batch_id: UUID
    retried: int
    job_ids: list[UUID]
    links: BatchLinks
