"""`/batches`: the tenant's batches, newest first, with their progress; `/batches/{id}`: one
batch, its counts, its callbacks and what became of them, and its jobs, refreshing live.

Pages read the batches and jobs read models only (`chronicle.batch_queries`,
`chronicle.queries`), as the API's lists do: a page view never replays a batch's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Controller, Request, get
from litestar.response import Template

from application.reads.read_your_writes import not_found
from application.views.batches import BatchRow
from application.views.jobs import JobFilter, JobRow
from domain.batch import CallbackKind
from interfaces.bootstrap import Chronicle
from interfaces.http.batches import BatchId, parse_batch_id
from interfaces.http.schemas.batches import BatchView, batch_view
from interfaces.web.pages import PAGE_OPT, page_context

#: Batches a page of the list shows, and jobs a page of a batch shows.
PAGE_SIZE = 50
JOBS_PAGE_SIZE = 50


def _cursor(request: Request[Any, Any, Any]) -> str | None:
    """The `cursor` of the query; a malformed one is the read model's ValidationError (422)."""
    return request.query_params.get("cursor") or None


#: When each callback runs, as the API documents it.
_WHEN = {
    "then": "when every job succeeded",
    "catch": "on the first failed job",
    "finally": "when every job has finished (or was cancelled)",
}


@dataclass(frozen=True)
class CallbackState:
    """A callback of a batch: its command line, its job once dispatched (with the job's
    status from the jobs read model), or why it has not run."""

    kind: str
    command_line: str
    when: str
    job_id: UUID | None
    status: str | None
    note: str


def batch_status(view: BatchView) -> str:
    """One word for the list: cancelled, finished (with or without failures), or running."""
    if view.cancelled:
        return "cancelled"
    if view.finished:
        return "failed" if view.failed else "succeeded"
    return "running" if view.processed else "pending"


def _pending_note(kind: str, view: BatchView) -> str:
    """Why a callback has no job (yet)."""
    if kind == "then":
        if view.failed or view.cancelled or view.cancelled_jobs:
            return "will not run: not every job succeeded"
        return "runs once every job succeeded"
    if kind == "catch":
        if view.finished and not view.failed:
            return "will not run: no job failed"
        return "runs on the first failed job"
    return "runs once every job has finished"


def callback_states(chronicle: Chronicle, tenant: str, view: BatchView) -> list[CallbackState]:
    """The batch's callbacks in then/catch/finally order, with their jobs' statuses."""
    states = []
    for kind in CallbackKind:
        callback = view.callbacks.get(kind.value)
        if callback is None:
            continue
        job: JobRow | None = None
        if callback.job_id is not None:
            job = chronicle.queries.get(tenant, callback.job_id)
        if callback.job_id is None:
            note = _pending_note(kind.value, view)
        elif job is None:
            note = "dispatched"
        else:
            note = job.status
        states.append(
            CallbackState(
                kind=kind.value,
                command_line=callback.command_line,
                when=_WHEN[kind.value],
                job_id=callback.job_id,
                status=job.status if job else None,
                note=note,
            )
        )
    return states


def find_batch(chronicle: Chronicle, tenant: str, raw_id: str) -> BatchRow:
    """The tenant's batch from the read model; another tenant's is not found."""
    batch_id = parse_batch_id(raw_id)
    row = chronicle.batch_queries.get_batch(tenant, batch_id)
    if row is None:
        raise not_found("batch", batch_id)
    return row


class BatchesPages(Controller):
    """`/batches` and `/batches/{batch_id}`."""

    include_in_schema = False
    opt = PAGE_OPT

    @get("/batches", sync_to_thread=True)
    def batches(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        rows, next_cursor = chronicle.batch_queries.list_batches(
            request.state.tenant, limit=PAGE_SIZE, cursor=_cursor(request)
        )
        items = [batch_view(row) for row in rows]
        return Template(
            "batches/index.html",
            context=page_context(
                request,
                batches=[(item, batch_status(item)) for item in items],
                next_cursor=next_cursor,
            ),
        )

    @get("/batches/{batch_id:str}", sync_to_thread=True)
    def batch(self, request: Request[Any, Any, Any], batch_id: BatchId) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        view = batch_view(find_batch(chronicle, tenant, batch_id))
        jobs = chronicle.queries.list(
            JobFilter(tenant=tenant, batch_id=str(view.id)),
            limit=JOBS_PAGE_SIZE,
            cursor=_cursor(request),
            now=chronicle.clock.now(),
        )
        return Template(
            "batches/detail.html",
            context=page_context(
                request,
                batch=view,
                status=batch_status(view),
                callbacks=callback_states(chronicle, tenant, view),
                jobs=jobs.items,
                next_cursor=jobs.next_cursor,
            ),
        )


PAGES = [BatchesPages]
