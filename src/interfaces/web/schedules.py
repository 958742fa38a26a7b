"""`/schedules`: the schedules list and one schedule's page (definition, next due time, run
history with skipped ticks, change history, comments), from the read models the API uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from domain.shared import ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.schedules import ScheduleId, parse_schedule_id
from interfaces.http.schemas.common import CommentView, comment_view
from interfaces.http.schemas.schedules import (
    RunItem,
    ScheduleHistoryEntry,
    ScheduleView,
    history_entry,
    run_item,
    schedule_view,
)
from interfaces.web.pages import PAGE_OPT, page_context

#: Rows on a page of the list and of the run history (the API's default).
PAGE_SIZE = 50

#: The `state` filter of the list, as the API's `active` parameter.
STATES: dict[str, bool | None] = {"": None, "all": None, "active": True, "paused": False}

#: What the DST marks of a due time (and of a tick) mean, for people.
DST_NOTES = {
    "shifted_after_gap": (
        "this local time does not exist that day (clocks go forward): it runs right after the gap"
    ),
    "first_occurrence": (
        "this local time occurs twice that day (clocks go back): this is the first occurrence"
    ),
    "second_occurrence": (
        "this local time occurs twice that day (clocks go back): this is the second occurrence"
    ),
}

#: Why a tick started no job, for people (the tick's own detail follows).
SKIP_REASONS = {
    "overlap": "the previous run was still going (without overlapping)",
    "paused": "the schedule was paused",
    "missed": "no scheduler was running at its due time",
    "dst_gap": "its local time did not exist (DST gap)",
}

Cursor = Annotated[str | None, QueryParameter(required=False)]


def in_zone(moment: datetime | None, timezone: str) -> str:
    """`moment` as a wall clock in `timezone`: `2026-01-05 13:00:00 CET (UTC+01:00)`."""
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(timezone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


@dataclass(frozen=True)
class LastRun:
    """The job a schedule last started, as the jobs read model has it now."""

    job_id: UUID
    at: datetime | None
    status: str | None


@dataclass(frozen=True)
class ScheduleItem:
    """A row of the list: the schedule as the API shows it, and how its last run went."""

    view: ScheduleView
    last: LastRun | None


def _last_run(chronicle: Chronicle, tenant: str, view: ScheduleView) -> LastRun | None:
    if view.last_run is None or view.last_run.job_id is None:
        return None
    job = chronicle.queries.get(tenant, view.last_run.job_id)
    return LastRun(view.last_run.job_id, view.last_run.at, job.status if job else None)


def _state(raw: str | None) -> str:
    state = (raw or "").strip().lower()
    if state not in STATES:
        raise ValidationError("state must be all, active or paused", field="state")
    return state or "all"


def show(value: Any) -> str:
    """A changed setting's value, short: a frequency by its expression, the rest as JSON."""
    if isinstance(value, dict) and "expression" in value:
        return str(value["expression"])
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _common(**values: Any) -> dict[str, Any]:
    return {
        "in_zone": in_zone,
        "show": show,
        "dst_notes": DST_NOTES,
        "skip_reasons": SKIP_REASONS,
        **values,
    }


class SchedulesPages(Controller):
    """The schedules of the signed-in tenant."""

    path = "/schedules"
    include_in_schema = False
    opt = PAGE_OPT

    @get("/", sync_to_thread=True)
    def index(
        self,
        request: Request[Any, Any, Any],
        state_filter: Annotated[str | None, QueryParameter(name="state", required=False)] = None,
        search: Annotated[
            str | None, QueryParameter(name="q", required=False, max_length=200)
        ] = None,
        cursor: Cursor = None,
    ) -> Template:
        """Newest first, as `GET /api/schedules`, with each one's next due time and last run;
        `q` keeps the schedules whose name holds it."""
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        chosen = _state(state_filter)
        rows, next_cursor = chronicle.schedule_queries.list_schedules(
            tenant,
            active=STATES[chosen],
            limit=PAGE_SIZE,
            cursor=cursor or None,
            name=(search or "").strip() or None,
        )
        now = chronicle.clock.now()
        items = []
        for row in rows:
            view = schedule_view(row, now, chronicle.cron, projected=True)
            items.append(ScheduleItem(view, _last_run(chronicle, tenant, view)))
        return Template(
            "schedules/list.html",
            context=page_context(
                request,
                **_common(items=items, next_cursor=next_cursor, state=chosen, search=search or ""),
            ),
        )

    @get("/{schedule_id:str}", sync_to_thread=True)
    def detail(
        self,
        request: Request[Any, Any, Any],
        schedule_id: ScheduleId,
        cursor: Cursor = None,
    ) -> Template:
        """The schedule as `GET /api/schedules/{id}` shows it, its runs as
        `GET /api/schedules/{id}/runs` pages them, its history and its comments."""
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        uuid = parse_schedule_id(schedule_id)
        reads = chronicle.schedule_reads
        current = reads.get(tenant, uuid)
        view = schedule_view(
            current.value, chronicle.clock.now(), chronicle.cron, projected=current.projected
        )
        history: list[ScheduleHistoryEntry] = [
            history_entry(change) for change in reversed(reads.history(tenant, uuid))
        ]
        comments: list[CommentView] = [comment_view(c) for c in reads.comments(tenant, uuid)]
        rows, next_cursor = chronicle.schedule_queries.runs(
            tenant, uuid, limit=PAGE_SIZE, cursor=cursor or None
        )
        runs: list[RunItem] = [run_item(row) for row in rows]
        return Template(
            "schedules/detail.html",
            context=page_context(
                request,
                **_common(
                    schedule=view,
                    last=_last_run(chronicle, tenant, view),
                    history=history,
                    comments=comments,
                    runs=runs,
                    next_cursor=next_cursor,
                ),
            ),
        )


PAGES = [SchedulesPages]
