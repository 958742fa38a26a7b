"""Request and response bodies of the batches API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from application.views.batches import BatchRow
from domain.batch import MAX_JOBS_PER_ADD, CallbackKind
from domain.batch import MAX_NAME as MAX_BATCH_NAME
from interfaces.http.schemas.common import (
    NOT_BLANK,
    batch_path,
    job_path,
    rule,
    utc,
    utc_or_none,
)
from interfaces.http.schemas.jobs import DispatchJob

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


# -- builders ---------------------------------------------------------------------------------


def batch_links(batch_id: UUID) -> BatchLinks:
    return BatchLinks(self=batch_path(batch_id), jobs=f"/api/jobs?batch_id={batch_id}")


def _callbacks(
    lines: dict[str, str | None], job_ids: dict[str, UUID | None]
) -> dict[str, BatchCallbackView]:
    views = {}
    for kind in CallbackKind:
        line = lines.get(kind.value)
        if line is None:
            continue
        job_id = job_ids.get(kind.value)
        views[kind.value] = BatchCallbackView(
            command_line=line, job_id=job_id, job=job_path(job_id) if job_id else None
        )
    return views


def batch_view(row: BatchRow, *, projected: bool = True) -> BatchView:
    """A batch as the read model holds it, or (`projected` false) as its events make it."""
    return BatchView(
        id=row.id,
        seq=row.seq if projected else None,
        tenant=row.tenant,
        name=row.name,
        allow_failures=row.allow_failures,
        total=row.total,
        pending=row.pending,
        processed=row.processed,
        succeeded=row.succeeded,
        failed=row.failed,
        cancelled_jobs=row.cancelled_jobs,
        progress=row.progress,
        finished=row.finished,
        cancelled=row.cancelled,
        cancelled_at=utc_or_none(row.cancelled_at),
        cancelled_by=row.cancelled_by,
        cancel_reason=row.cancel_reason,
        callbacks=_callbacks(
            {
                "then": row.then_command,
                "catch": row.catch_command,
                "finally": row.finally_command,
            },
            {"then": row.then_job_id, "catch": row.catch_job_id, "finally": row.finally_job_id},
        ),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        finished_at=utc_or_none(row.finished_at),
        updated_at=utc(row.updated_at),
        projected=projected,
        links=batch_links(row.id),
    )
