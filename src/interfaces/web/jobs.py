"""The jobs pages: `/jobs` (the list), `/jobs/{id}` (one job), `/waiting` and `/failed`.

They read what the API reads (the jobs read model through `chronicle.queries` and
`chronicle.job_reads`) and show it with the API's own view builders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio
from litestar import Controller, Request, get, post
from litestar.response import Template

from application.views.job_timeline import TimelineEntry
from application.views.jobs import FailedJobFilter, JobFilter
from domain.job import QUEUES
from domain.principals import Action
from domain.shared import ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.jobs import (
    STATUSES,
    JobId,
    _choice,
    _id_filter,
    failed_filter,
    parse_job_id,
    parse_moment,
)
from interfaces.http.schemas.common import comment_view
from interfaces.http.schemas.jobs import JobItem, failed_job, job_detail, job_item
from interfaces.web.pages import PAGE_OPT, page_context

#: Rows of a list page unless `limit` says otherwise, and the most it may say.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: The waiting page shows at most this many ready and this many delayed jobs per queue.
WAITING_PER_QUEUE = 50
#: The grouped failed view shows at most this many (error type, message) groups.
MAX_ERROR_GROUPS = 100

#: The orders of the jobs list: by dispatch, newest or oldest first.
ORDERS = ("newest", "oldest")


def _param(request: Request[Any, Any, Any], name: str) -> str | None:
    """A query parameter; an empty one (a filter form's blank field) is no filter."""
    value = request.query_params.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _limit(request: Request[Any, Any, Any]) -> int:
    raw = _param(request, "limit")
    if raw is None:
        return PAGE_SIZE
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"limit {raw[:20]!r} is not a page size from 1 to {MAX_PAGE_SIZE}", field="limit"
        )
    return int(raw)


def _moment(request: Request[Any, Any, Any], name: str) -> datetime | None:
    """A time of the query; one without an offset (a browser's datetime-local field) is UTC,
    as the forms say."""
    moment = parse_moment(_param(request, name), name)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _form_moment(moment: datetime | None) -> str:
    """A filter's time as the form's datetime-local field shows it (UTC, to the second)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Round:
    """One round of a job's attempts: from its dispatch or an operator's retry to its end."""

    number: int
    began: TimelineEntry
    ended: TimelineEntry | None


#: Events that end a round of attempts.
_ROUND_ENDS = frozenset({"dead_lettered", "succeeded", "cancelled"})


def retry_lineage(timeline: list[TimelineEntry]) -> list[Round]:
    """The job's rounds, from its timeline: each retry (`retried`) follows the failure it
    retried (`dead_lettered`) and begins a new round."""
    rounds: list[Round] = []
    began: TimelineEntry | None = None
    ended: TimelineEntry | None = None
    for entry in timeline:
        if entry.event in {"dispatched", "retried"}:
            if began is not None:
                rounds.append(Round(len(rounds) + 1, began, ended))
            began, ended = entry, None
        elif entry.event in _ROUND_ENDS and began is not None:
            ended = entry
    if began is not None:
        rounds.append(Round(len(rounds) + 1, began, ended))
    return rounds


@dataclass(frozen=True)
class WaitingRow:
    """A waiting job and how long it has been due (ready) or until it is due (delayed)."""

    job: JobItem
    seconds: float
    oldest: bool


@dataclass(frozen=True)
class QueueWait:
    queue: str
    ready: int
    delayed: int
    more_ready: bool
    more_delayed: bool
    oldest_wait_seconds: float | None
    longest: bool


class JobPages(Controller):
    """The jobs list, one job, the waiting jobs and the failed jobs of the session's tenant."""

    include_in_schema = False
    opt = PAGE_OPT

    @get("/jobs", sync_to_thread=True)
    def jobs(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        dispatched_from = _moment(request, "from")
        dispatched_to = _moment(request, "to")
        flt = JobFilter(
            tenant=tenant,
            status=_choice(_param(request, "status"), STATUSES, "status"),
            queue=_choice(_param(request, "queue"), QUEUES, "queue"),
            command=_param(request, "command"),
            batch_id=_id_filter(_param(request, "batch"), "batch", "batch"),
            schedule_id=_id_filter(_param(request, "schedule"), "schedule", "schedule"),
            dispatched_from=dispatched_from,
            dispatched_to=dispatched_to,
            search=_param(request, "q"),
            oldest_first=_choice(_param(request, "order"), ORDERS, "order") == "oldest",
        )
        now = chronicle.clock.now()
        page = chronicle.queries.list(
            flt, limit=_limit(request), cursor=_param(request, "cursor"), now=now
        )
        return Template(
            "jobs/list.html",
            context=page_context(
                request,
                jobs=[job_item(row, now) for row in page.items],
                next_cursor=page.next_cursor,
                filters=flt,
                statuses=STATUSES,
                queues=QUEUES,
                commands=sorted(chronicle.registry.names()),
                orders=ORDERS,
                time_from=_form_moment(dispatched_from),
                time_to=_form_moment(dispatched_to),
            ),
        )

    @get("/jobs/{job_id:str}", sync_to_thread=True)
    def job(self, request: Request[Any, Any, Any], job_id: JobId) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        uuid: UUID = parse_job_id(job_id)
        current = chronicle.job_reads.get(tenant, uuid)
        found = current.value
        item = job_item(found.row, chronicle.clock.now())
        detail = job_detail(item, found.timeline, projected=current.projected)
        comments = [comment_view(c) for c in chronicle.job_reads.comments(tenant, uuid)]
        return Template(
            "jobs/detail.html",
            context=page_context(
                request,
                job=detail,
                arguments=_pretty(detail.arguments),
                options=_pretty(detail.options),
                result=None if detail.result is None else _pretty(detail.result),
                lineage=retry_lineage(found.timeline),
                comments=comments,
                pretty=_pretty,
            ),
        )

    @get("/waiting", sync_to_thread=True)
    def waiting(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        chosen = _choice(_param(request, "queue"), QUEUES, "queue")
        now = chronicle.clock.now()
        ready: list[WaitingRow] = []
        delayed: list[WaitingRow] = []
        summary: list[QueueWait] = []
        for queue in (chosen,) if chosen else QUEUES:
            due = chronicle.queries.waiting_in_order(
                tenant, queue, delayed=False, now=now, limit=WAITING_PER_QUEUE + 1
            )
            later = chronicle.queries.waiting_in_order(
                tenant, queue, delayed=True, now=now, limit=WAITING_PER_QUEUE + 1
            )
            ready += [
                WaitingRow(job_item(row, now), (now - row.available_at).total_seconds(), index == 0)
                for index, row in enumerate(due[:WAITING_PER_QUEUE])
            ]
            delayed += [
                WaitingRow(
                    job_item(row, now), (row.available_at - now).total_seconds(), oldest=False
                )
                for row in later[:WAITING_PER_QUEUE]
            ]
            oldest = (now - due[0].available_at).total_seconds() if due else None
            summary.append(
                QueueWait(
                    queue=queue,
                    ready=min(len(due), WAITING_PER_QUEUE),
                    delayed=min(len(later), WAITING_PER_QUEUE),
                    more_ready=len(due) > WAITING_PER_QUEUE,
                    more_delayed=len(later) > WAITING_PER_QUEUE,
                    oldest_wait_seconds=oldest,
                    longest=False,
                )
            )
        waits = [q.oldest_wait_seconds for q in summary if q.oldest_wait_seconds is not None]
        longest = max(waits) if waits else None
        summary = [
            replace(q, longest=longest is not None and q.oldest_wait_seconds == longest)
            for q in summary
        ]
        # Soonest due first, across the queues.
        delayed.sort(key=lambda row: (row.job.available_at, row.job.seq or 0))
        return Template(
            "jobs/waiting.html",
            context=page_context(
                request,
                ready=ready,
                delayed=delayed,
                summary=summary,
                queues=QUEUES,
                chosen=chosen,
                per_queue=WAITING_PER_QUEUE,
            ),
        )

    @get("/failed", sync_to_thread=True)
    def failed(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        group = _choice(_param(request, "group"), ("error",), "group")
        flt, failed_from, failed_to = _failed_filter_of(request.state.tenant, request.query_params)
        context: dict[str, Any] = {
            "filters": flt,
            "group": group,
            "queues": QUEUES,
            "time_from": _form_moment(failed_from),
            "time_to": _form_moment(failed_to),
        }
        if group == "error":
            context["groups"] = chronicle.queries.failed_groups(flt, limit=MAX_ERROR_GROUPS)
            context["max_groups"] = MAX_ERROR_GROUPS
        else:
            page = chronicle.queries.failed(
                flt, limit=_limit(request), cursor=_param(request, "cursor")
            )
            context["jobs"] = [failed_job(row) for row in page.items]
            context["next_cursor"] = page.next_cursor
        return Template("jobs/failed.html", context=page_context(request, **context))

    @get("/failed/retry", opt={ACTION: Action.RETRY}, sync_to_thread=True)
    def confirm_bulk_retry(self, request: Request[Any, Any, Any]) -> Template:
        """How many failed jobs the filter matches, and a form to retry them all."""
        chronicle: Chronicle = request.app.state.chronicle
        flt, failed_from, failed_to = _failed_filter_of(request.state.tenant, request.query_params)
        return Template(
            "jobs/bulk_retry.html",
            context=page_context(
                request,
                filters=flt,
                matching=chronicle.queries.count_failed(flt),
                time_from=_form_moment(failed_from),
                time_to=_form_moment(failed_to),
                done=None,
            ),
        )

    @post("/failed/retry", opt={ACTION: Action.RETRY}, status_code=200)
    async def bulk_retry(self, request: Request[Any, Any, Any]) -> Template:
        """Retries every failed job the filter matches (as `POST /api/jobs/failed/retry`)."""
        chronicle: Chronicle = request.app.state.chronicle
        form = await request.form()
        flt, failed_from, failed_to = _failed_filter_of(request.state.tenant, form)
        actor = request.state.principal.actor
        done = await anyio.to_thread.run_sync(lambda: chronicle.jobs.retry_failed(flt, by=actor))
        return Template(
            "jobs/bulk_retry.html",
            context=page_context(
                request,
                filters=flt,
                matching=None,
                time_from=_form_moment(failed_from),
                time_to=_form_moment(failed_to),
                done=done,
            ),
        )


def _failed_filter_of(
    tenant: str, values: Mapping[str, Any]
) -> tuple[FailedJobFilter, datetime | None, datetime | None]:
    """The failed-jobs filter of a query or a form (blank fields are no filter; a time
    without an offset is UTC), with its two times as given."""

    def text(name: str) -> str | None:
        value = values.get(name)
        return (value.strip() or None) if isinstance(value, str) else None

    def moment(name: str) -> datetime | None:
        found = parse_moment(text(name), name)
        return found.replace(tzinfo=UTC) if found and found.tzinfo is None else found

    failed_from, failed_to = moment("from"), moment("to")
    flt = failed_filter(
        tenant, text("queue"), text("command"), text("error_type"), failed_from, failed_to
    )
    return flt, failed_from, failed_to


PAGES = [JobPages]
