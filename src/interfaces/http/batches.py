"""`/api/batches`: create batches, add jobs, follow their progress, cancel, retry failures."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from application.batches import BatchRequest
from application.jobs import DispatchRequest
from domain.principals import Action
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.dependencies import Caller, IdempotencyKeyHeader, parse_id
from interfaces.http.errors import error_responses
from interfaces.http.jobs import MAX_LIMIT, Cursor, Limit, id_path
from interfaces.http.schemas.batches import (
    AddBatchJobs,
    AddedBatchJobs,
    BatchPage,
    BatchView,
    CancelBatch,
    CreateBatch,
    RetriedBatchJobs,
    batch_links,
    batch_view,
)
from interfaces.http.schemas.common import batch_path
from interfaces.http.schemas.jobs import DispatchJob

BatchId = Annotated[str, id_path("batch")]


def parse_batch_id(raw: str) -> UUID:
    return parse_id(raw, "batch")


def _requests(jobs: list[DispatchJob | str]) -> list[DispatchRequest]:
    """The jobs of a batch request: command lines, or objects as `POST /api/jobs` takes."""
    return [
        DispatchRequest(command_line=job)
        if isinstance(job, str)
        else DispatchRequest(
            command=job.command,
            arguments=job.arguments,
            options=job.options,
            command_line=job.command_line,
            queue=job.queue,
            delay_seconds=job.delay_seconds,
            not_before=job.not_before,
            max_attempts=job.max_attempts,
            timeout_seconds=job.timeout_seconds,
            backoff_seconds=job.backoff_seconds,
        )
        for job in jobs
    ]


class BatchController(Controller):
    """Batches of the caller's tenant."""

    path = "/api/batches"
    tags = ["batches"]

    @post(
        "/",
        opt={ACTION: Action.MANAGE_BATCHES},
        operation_id="createBatch",
        summary="Create a batch",
        description=(
            "Records the batch and all its jobs in one transaction (all or none): a bad job is "
            "a 422 whose `field` names it, e.g. `jobs[3].command_line`. `then` runs once when "
            "every job succeeded, `catch` once on the first failed job (which, without "
            "`allow_failures`, also cancels the batch and its pending jobs), `finally` once when "
            "every job has finished or was cancelled. With an `Idempotency-Key`, a retry of the "
            "same request answers 200 with the first batch."
        ),
        status_code=201,
        sync_to_thread=True,
        response_headers=[
            ResponseHeader(
                name="Location", description="The new batch's URL.", documentation_only=True
            )
        ],
        responses={
            200: ResponseSpec(
                data_container=BatchView,
                description="The batch an earlier request with this `Idempotency-Key` created.",
                generate_examples=False,
            ),
            **error_responses(400, 413, 422),
        },
    )
    def create(
        self,
        *,
        data: JSONBody[CreateBatch],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[BatchView]:
        request = BatchRequest(
            name=data.name,
            jobs=_requests(data.jobs),
            allow_failures=data.allow_failures,
            then=data.then,
            catch=data.catch,
            finally_=data.finally_,
            tenant=caller.tenant,
            by=caller.user,
        )
        once = chronicle.batches.create_once(request, idempotency_key=idempotency_key)
        batch_id, created = once.ids[0], once.created
        current = chronicle.batch_reads.get(caller.tenant, batch_id)
        body = batch_view(current.value, projected=current.projected)
        return Response(
            body, status_code=201 if created else 200, headers={"Location": batch_path(batch_id)}
        )

    @get(
        "/",
        operation_id="listBatches",
        summary="List batches",
        description=f"Newest first, with their counts. At most {MAX_LIMIT} a page.",
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def list_batches(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> BatchPage:
        rows, next_cursor = chronicle.batch_queries.list_batches(
            caller.tenant, limit=limit, cursor=cursor
        )
        return BatchPage(items=[batch_view(row) for row in rows], next_cursor=next_cursor)

    @get(
        "/{batch_id:str}",
        operation_id="getBatch",
        summary="One batch",
        description=(
            "Its counts (total, pending, processed, succeeded, failed, cancelled jobs), "
            "progress, whether it finished or was cancelled, and its callbacks with their jobs. "
            "Its jobs: `GET /api/jobs?batch_id=`."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="batch"),
    )
    def get_batch(
        self,
        *,
        batch_id: BatchId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> BatchView:
        current = chronicle.batch_reads.get(caller.tenant, parse_batch_id(batch_id))
        return batch_view(current.value, projected=current.projected)

    @post(
        "/{batch_id:str}/jobs",
        opt={ACTION: Action.MANAGE_BATCHES},
        operation_id="addBatchJobs",
        summary="Add jobs to a batch",
        description=(
            "Adds jobs to a batch that has neither finished nor been cancelled (else 409), in "
            "one transaction with the batch."
        ),
        status_code=201,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 413, 422, resource="batch"),
    )
    def add_jobs(
        self,
        *,
        batch_id: BatchId,
        data: JSONBody[AddBatchJobs],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> AddedBatchJobs:
        uuid = parse_batch_id(batch_id)
        job_ids = chronicle.batches.add_jobs(
            uuid, _requests(data.jobs), tenant=caller.tenant, by=caller.user
        )
        return AddedBatchJobs(batch_id=uuid, job_ids=job_ids, links=batch_links(uuid))

    @post(
        "/{batch_id:str}/cancel",
        opt={ACTION: Action.MANAGE_BATCHES},
        operation_id="cancelBatch",
        summary="Cancel a batch",
        description=(
            "The batch's waiting jobs are cancelled and its running ones asked to stop; "
            "`finally` runs once they are done. A finished or cancelled batch is a 409."
        ),
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 413, 422, resource="batch"),
    )
    def cancel(
        self,
        *,
        batch_id: BatchId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[CancelBatch | None] = None,
    ) -> BatchView:
        uuid = parse_batch_id(batch_id)
        batch = chronicle.batches.cancel(
            uuid, tenant=caller.tenant, by=caller.user, reason=data.reason if data else ""
        )
        current = chronicle.batch_reads.get(caller.tenant, uuid, at_least=batch.version)
        return batch_view(current.value, projected=current.projected)

    @post(
        "/{batch_id:str}/retry-failed",
        opt={ACTION: Action.MANAGE_BATCHES},
        operation_id="retryBatchFailedJobs",
        summary="Retry a batch's failed jobs",
        description=(
            "Gives each failed job of the batch a new round of attempts; the batch's counts "
            "reopen, and `then` runs if every job now succeeds. A cancelled batch is a 409."
        ),
        status_code=202,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 422, resource="batch"),
    )
    def retry_failed(
        self,
        *,
        batch_id: BatchId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> RetriedBatchJobs:
        uuid = parse_batch_id(batch_id)
        job_ids = chronicle.batches.retry_failed(uuid, tenant=caller.tenant, by=caller.user)
        return RetriedBatchJobs(
            batch_id=uuid, retried=len(job_ids), job_ids=job_ids, links=batch_links(uuid)
        )
