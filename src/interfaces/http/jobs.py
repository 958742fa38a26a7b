"""`/api/jobs`: dispatch, list, inspect, retry, cancel, forget and comment on jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import JSONBody, PathParameter, QueryParameter

from application.jobs import DispatchRequest
from application.views.jobs import FailedJobFilter, JobFilter
from domain.job import QUEUES, JobStatus
from domain.principals import Action
from domain.shared import ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.dependencies import Caller, IdempotencyKeyHeader, parse_id
from interfaces.http.errors import error_responses
from interfaces.http.schemas.common import (
    QUEUE_NAMES,
    UUID_TEXT,
    AddComment,
    CommentView,
    comment_view,
    job_path,
)
from interfaces.http.schemas.jobs import (
    BulkRetryResult,
    CancelJob,
    DispatchedJob,
    DispatchJob,
    FailedJobPage,
    JobAction,
    JobDetail,
    JobItem,
    JobLinks,
    JobPage,
    RetryFailedJobs,
    WaitingJobs,
    failed_job,
    job_detail,
    job_item,
)

STATUSES = (*(status.value for status in JobStatus), "delayed", "ready")
MAX_LIMIT = 500

Limit = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}.")
]
#: What `encode_cursor` writes (`s` and the row's sequence number).
CURSOR_PATTERN = r"^s[0-9]{1,18}$"
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page.",
        schema_extra={"pattern": CURSOR_PATTERN},
    ),
]
# Stated in the OpenAPI document only (`schema_extra`): the handlers check these values and
# answer 422 with a message that names the rule, where Litestar's own check would say 400.
QueueName = Annotated[
    str | None,
    QueryParameter(description="high, default or low.", schema_extra={"enum": QUEUE_NAMES}),
]
CommandName = Annotated[str | None, QueryParameter(description="Registered command name.")]


def id_path(what: str) -> PathParameter:
    """A path parameter that is a UUID (checked by `parse_id`: 422 otherwise)."""
    return PathParameter(description=f"The {what}'s id (a UUID).", schema_extra=UUID_TEXT)


def id_query(description: str) -> QueryParameter:
    """A query parameter that is a UUID (checked by `parse_id`: 422 otherwise)."""
    return QueryParameter(description=f"{description} (a UUID).", schema_extra=UUID_TEXT)


JobId = Annotated[str, id_path("job")]
ErrorType = Annotated[
    str | None,
    QueryParameter(description="Exception class of the last failure, e.g. `RuntimeError`."),
]
_MOMENT = (
    "ISO-8601 with a UTC offset, e.g. `2026-01-05T12:00:00Z` (in a query string a `+` offset "
    "must be written `%2B`)."
)
FailedFrom = Annotated[
    str | None,
    QueryParameter(
        description=f"Last attempt failed at or after this. {_MOMENT}",
        schema_extra={"format": OpenAPIFormat.DATE_TIME},
    ),
]
FailedTo = Annotated[
    str | None,
    QueryParameter(
        description=f"Last attempt failed before this. {_MOMENT}",
        schema_extra={"format": OpenAPIFormat.DATE_TIME},
    ),
]


def _choice(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    if value is not None and value not in allowed:
        raise ValidationError(
            f"unknown {field} {value[:100]!r}: choose one of {', '.join(allowed)}", field=field
        )
    return value


def _id_filter(raw: str | None, what: str, field: str) -> str | None:
    """An id filter of the query string in the form the read model keeps it."""
    return None if raw is None else str(parse_id(raw, what, field=field))


def parse_moment(raw: str | None, field: str) -> datetime | None:
    """A query-string time; its offset is checked by `FailedJobFilter`."""
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        # A `+01:00` offset arrives as ` 01:00` when the client did not encode the `+`.
        raise ValidationError(
            f"{field} {raw[:100]!r} is not an ISO-8601 time: {_MOMENT}", field=field
        ) from None


def parse_job_id(raw: str) -> UUID:
    return parse_id(raw, "job")


def failed_filter(  # noqa: PLR0917 - the filters of the failed list, as given
    tenant: str,
    queue: str | None,
    command: str | None,
    error_type: str | None,
    failed_from: datetime | None,
    failed_to: datetime | None,
) -> FailedJobFilter:
    return FailedJobFilter(
        tenant=tenant,
        queue=_choice(queue, QUEUES, "queue"),
        command=command,
        error_type=error_type,
        failed_from=failed_from,
        failed_to=failed_to,
    )


class JobController(Controller):
    """Jobs of the caller's tenant."""

    path = "/api/jobs"
    tags = ["jobs"]

    @post(
        "/",
        opt={ACTION: Action.DISPATCH},
        operation_id="dispatchJob",
        summary="Dispatch a job",
        description=(
            "Records the job as dispatched and returns at once; the outbox relay sends it to "
            "its queue. Give `command` with `arguments`/`options`, or a `command_line`. The "
            "answer does not wait for the read model: GET the `Location` right away. With an "
            "`Idempotency-Key`, a retry of the same request answers 200 with the first job."
        ),
        status_code=201,
        sync_to_thread=True,
        response_headers=[
            ResponseHeader(
                name="Location", description="The new job's URL.", documentation_only=True
            )
        ],
        responses={
            200: ResponseSpec(
                data_container=DispatchedJob,
                description="The job an earlier request with this `Idempotency-Key` dispatched.",
                generate_examples=False,
            ),
            **error_responses(400, 413, 422),
        },
    )
    def dispatch(
        self,
        *,
        data: JSONBody[DispatchJob],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[DispatchedJob]:
        request = DispatchRequest(
            command=data.command,
            arguments=data.arguments,
            options=data.options,
            command_line=data.command_line,
            queue=data.queue,
            delay_seconds=data.delay_seconds,
            not_before=data.not_before,
            max_attempts=data.max_attempts,
            timeout_seconds=data.timeout_seconds,
            backoff_seconds=data.backoff_seconds,
            tenant=caller.tenant,
            requested_by=caller.user,
        )
        # Parsing is pure: it gives the canonical command line without reading anything back.
        command_line = chronicle.jobs.parse(request).command_line()
        once = chronicle.jobs.dispatch_once([request], idempotency_key=idempotency_key)
        job_id, created = once.ids[0], once.created
        status = (
            JobStatus.WAITING.value
            if created
            else chronicle.job_reads.get(caller.tenant, job_id).value.row.status
        )
        location = job_path(job_id)
        body = DispatchedJob(
            id=job_id,
            status=status,
            command_line=command_line,
            queue=data.queue,
            links=JobLinks(self=location),
        )
        return Response(body, status_code=201 if created else 200, headers={"Location": location})

    @get(
        "/",
        operation_id="listJobs",
        summary="List jobs",
        description=(
            "Newest first. `status` is one of " + ", ".join(STATUSES) + " (`ready` and "
            "`delayed` split `waiting` into due and not yet due)."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def list_jobs(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        status: Annotated[
            str | None,
            QueryParameter(
                description="One of " + ", ".join(STATUSES) + ".",
                schema_extra={"enum": list(STATUSES)},
            ),
        ] = None,
        queue: QueueName = None,
        command: CommandName = None,
        batch_id: Annotated[str | None, id_query("Jobs of this batch")] = None,
        schedule_id: Annotated[str | None, id_query("Jobs this schedule started")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> JobPage:
        flt = JobFilter(
            tenant=caller.tenant,
            status=_choice(status, STATUSES, "status"),
            queue=_choice(queue, QUEUES, "queue"),
            command=command,
            batch_id=_id_filter(batch_id, "batch", "batch_id"),
            schedule_id=_id_filter(schedule_id, "schedule", "schedule_id"),
        )
        now = chronicle.clock.now()
        page = chronicle.queries.list(flt, limit=limit, cursor=cursor, now=now)
        return JobPage(
            items=[job_item(row, now) for row in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/waiting",
        operation_id="listWaitingJobs",
        summary="Waiting jobs",
        description=(
            "Jobs waiting to run: `ready` ones are due now, `delayed` ones become due at "
            "their `available_at`. Each list holds at most `limit` jobs, newest first."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def waiting(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        queue: QueueName = None,
        limit: Limit = 50,
    ) -> WaitingJobs:
        queue = _choice(queue, QUEUES, "queue")
        now = chronicle.clock.now()

        def page(status: str) -> list[JobItem]:
            flt = JobFilter(tenant=caller.tenant, status=status, queue=queue)
            rows = chronicle.queries.list(flt, limit=limit, cursor=None, now=now).items
            return [job_item(row, now) for row in rows]

        return WaitingJobs(ready=page("ready"), delayed=page("delayed"))

    @get(
        "/failed",
        operation_id="listFailedJobs",
        summary="Failed jobs",
        description=(
            "Jobs whose attempts are used up and that nobody forgot, newest first, with their "
            "last error, traceback and the time of the last attempt (`failed_at`). Filters "
            "combine; the time range is `failed_from <= failed_at < failed_to`."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def failed(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        queue: QueueName = None,
        command: CommandName = None,
        error_type: ErrorType = None,
        failed_from: FailedFrom = None,
        failed_to: FailedTo = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> FailedJobPage:
        flt = failed_filter(
            caller.tenant,
            queue,
            command,
            error_type,
            parse_moment(failed_from, "failed_from"),
            parse_moment(failed_to, "failed_to"),
        )
        page = chronicle.queries.failed(flt, limit=limit, cursor=cursor)
        return FailedJobPage(
            items=[failed_job(row) for row in page.items], next_cursor=page.next_cursor
        )

    @post(
        "/failed/retry",
        opt={ACTION: Action.RETRY},
        operation_id="retryFailedJobs",
        summary="Retry failed jobs in bulk",
        description=(
            "Retries every failed job matching the filters (none: all of them), a page at a "
            "time, so memory stays flat however many match. Jobs that stopped being failed "
            "before their turn came are counted as `skipped`. Reads the failed list, so a job "
            "that failed a moment ago may not be included yet."
        ),
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 413, 422),
    )
    def retry_failed(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[RetryFailedJobs | None] = None,
    ) -> BulkRetryResult:
        body = data or RetryFailedJobs()
        flt = failed_filter(
            caller.tenant,
            body.queue,
            body.command,
            body.error_type,
            body.failed_from,
            body.failed_to,
        )
        outcome = chronicle.jobs.retry_failed(flt, by=caller.user)
        return BulkRetryResult(retried=outcome.retried, skipped=outcome.skipped)

    @delete(
        "/failed/{job_id:str}",
        opt={ACTION: Action.FORGET},
        operation_id="forgetFailedJob",
        summary="Forget a failed job",
        description=(
            "Takes a failed job off the failed list; it stays in `GET /api/jobs` with "
            "`forgotten: true`, and its timeline says who forgot it. Any other state, or a "
            "job already forgotten, is a 409."
        ),
        status_code=204,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 422, resource="job"),
    )
    def forget(
        self,
        *,
        job_id: JobId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> None:
        chronicle.jobs.forget(parse_job_id(job_id), tenant=caller.tenant, by=caller.user)

    @get(
        "/{job_id:str}",
        operation_id="getJob",
        summary="One job with its timeline",
        description=(
            "The job and every event of its life. Right after a dispatch the read model may "
            "not have the job yet: it is then built from the event store, with "
            "`projected: false`."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="job"),
    )
    def get_job(
        self,
        *,
        job_id: JobId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> JobDetail:
        current = chronicle.job_reads.get(caller.tenant, parse_job_id(job_id))
        job = current.value
        item = job_item(job.row, chronicle.clock.now())
        return job_detail(item, job.timeline, projected=current.projected)

    @post(
        "/{job_id:str}/retry",
        opt={ACTION: Action.RETRY},
        operation_id="retryJob",
        summary="Retry a failed job",
        description="Gives a failed job a new round of attempts; any other state is a 409.",
        status_code=202,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 422, resource="job"),
    )
    def retry(
        self,
        *,
        job_id: JobId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> JobAction:
        job = chronicle.jobs.retry(parse_job_id(job_id), tenant=caller.tenant, by=caller.user)
        return JobAction(id=job.id, status=job.status.value, links=JobLinks(self=job_path(job.id)))

    @get(
        "/{job_id:str}/comments",
        operation_id="listJobComments",
        summary="Comments on a job",
        description="Oldest first.",
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="job"),
    )
    def comments(
        self,
        *,
        job_id: JobId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> list[CommentView]:
        comments = chronicle.job_reads.comments(caller.tenant, parse_job_id(job_id))
        return [comment_view(comment) for comment in comments]

    @post(
        "/{job_id:str}/comments",
        opt={ACTION: Action.COMMENT},
        operation_id="addJobComment",
        summary="Comment on a job",
        description=(
            'The body is `{"text": "…"}`: the note, 1 to 10,000 characters, not only white '
            "space (else 422). It is signed by the caller (the request's principal, e.g. "
            "`user:ada`) and timestamped; "
            "the answer is the comment as the list shows it."
        ),
        status_code=201,
        sync_to_thread=True,
        responses=error_responses(400, 404, 413, 422, resource="job"),
    )
    def add_comment(
        self,
        *,
        job_id: JobId,
        data: JSONBody[AddComment],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> CommentView:
        comment = chronicle.jobs.comment(
            parse_job_id(job_id), tenant=caller.tenant, author=caller.user, text=data.text
        )
        return comment_view(comment)

    @post(
        "/{job_id:str}/cancel",
        opt={ACTION: Action.CANCEL},
        operation_id="cancelJob",
        summary="Cancel a job",
        description=(
            "A waiting job is cancelled at once (`cancelled`); a running one is asked to stop "
            "(`cancelling`). A finished job is a 409."
        ),
        status_code=202,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 413, 422, resource="job"),
    )
    def cancel(
        self,
        *,
        job_id: JobId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[CancelJob | None] = None,
    ) -> JobAction:
        job = chronicle.jobs.cancel(
            parse_job_id(job_id),
            tenant=caller.tenant,
            by=caller.user,
            reason=data.reason if data else "",
        )
        status = "cancelling" if job.status is JobStatus.RUNNING else job.status.value
        return JobAction(id=job.id, status=status, links=JobLinks(self=job_path(job.id)))
