"""`/api/schedules`: create, list, inspect, edit, pause, resume, run and comment on schedules."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from application.event_log import LoggedEvent
from application.schedules import ScheduleRequest
from application.views.job_timeline import event_name
from application.views.schedules import Comment, ScheduleRow, SchedulesProjection
from domain.shared import NotFoundError
from interfaces.bootstrap import Chronicle
from interfaces.http.dependencies import Caller, parse_id
from interfaces.http.errors import error_responses
from interfaces.http.jobs import MAX_LIMIT, Cursor, Limit, id_path
from interfaces.http.schemas.common import (
    AddComment,
    CommentView,
    comment_view,
    job_path,
    schedule_path,
)
from interfaces.http.schemas.schedules import (
    CreateSchedule,
    EditSchedule,
    RunNowAccepted,
    RunNowLinks,
    RunPage,
    ScheduleHistoryEntry,
    SchedulePage,
    ScheduleView,
    run_item,
    schedule_view,
)

_COMMAND = frozenset({"command", "command_line"})
_CALL = frozenset({"arguments", "options"})

ScheduleId = Annotated[str, id_path("schedule")]


def parse_schedule_id(raw: str) -> UUID:
    return parse_id(raw, "schedule")


class _OneSchedule:
    """A SchedulesWriter that keeps one schedule's row and comments in memory."""

    _UNSET: dict[str, Any] = {f.name: None for f in dataclasses.fields(ScheduleRow)}

    def __init__(self) -> None:
        self.row: dict[str, Any] | None = None
        self.comments: list[Comment] = []

    def insert_schedule(self, row: dict[str, Any]) -> None:
        self.row = {**self._UNSET, "deleted": False, **row}

    def update_schedule(self, schedule_id: UUID, changes: dict[str, Any]) -> None:  # noqa: ARG002
        if self.row is not None:
            self.row.update(changes)

    def record_due(self, schedule_id: UUID, due_at: datetime, changes: dict[str, Any]) -> None:
        """Ticks are aggregates of their own: none is in a schedule's stream."""

    def insert_comment(self, row: dict[str, Any]) -> None:
        self.comments.append(Comment(row["id"], row["author"], row["text"], row["at"]))


@dataclasses.dataclass(frozen=True)
class ScheduleState:
    """A schedule as its own events make it, or as projected when the read model has caught up."""

    row: ScheduleRow
    comments: list[Comment]
    projected: bool
    history: list[ScheduleHistoryEntry] = dataclasses.field(default_factory=list)


def _history(events: list[LoggedEvent]) -> list[ScheduleHistoryEntry]:
    """The operator audit of a schedule: each event with who caused it."""
    return [
        ScheduleHistoryEntry(
            version=event.originator_version,
            event=event_name(type(event)),
            at=event.at,
            by=str(getattr(event, "by", None) or getattr(event, "author", "")),
            changes=getattr(event, "changes", None),
        )
        for event in (logged.event for logged in events)
    ]


def schedule_state(chronicle: Chronicle, schedule_id: UUID, tenant: str) -> ScheduleState:
    """The schedule's current settings and comments, whether or not the read model caught up."""
    # The schedules projection runs over the schedule's own stream (as `job_from_event_store`
    # does for jobs), so the answer is current right after a change. The read model's row is
    # used when it is at the same version; the last tick and job come from other streams and
    # are always taken from it. Another tenant's schedule, a deleted one or an id that is not
    # a schedule's is not found.
    events = [LoggedEvent(0, event) for event in chronicle.events.events.get(schedule_id)]
    writer = _OneSchedule()
    SchedulesProjection().process(events, writer)
    own = writer.row
    if own is None or own["tenant"] != tenant or own["deleted"]:
        raise NotFoundError(f"schedule {schedule_id} not found")
    row = chronicle.schedule_queries.get_schedule(tenant, schedule_id)
    history = _history(events)
    if row is not None and row.version >= own["version"]:
        return ScheduleState(row, writer.comments, projected=True, history=history)
    fields = {f.name for f in dataclasses.fields(ScheduleRow)}
    decoded = {
        **{key: value for key, value in own.items() if key in fields},
        "arguments": json.loads(own["arguments"]),
        "options": json.loads(own["options"]),
        "frequency": json.loads(own["frequency"]),
    }
    if row is not None:
        decoded.update(
            last_due_at=row.last_due_at, last_job_id=row.last_job_id, last_run_at=row.last_run_at
        )
    return ScheduleState(ScheduleRow(**decoded), writer.comments, projected=False, history=history)


def _view(chronicle: Chronicle, schedule_id: UUID, tenant: str) -> ScheduleView:
    state = schedule_state(chronicle, schedule_id, tenant)
    view = schedule_view(
        state.row, chronicle.clock.now(), chronicle.cron, projected=state.projected
    )
    return msgspec.structs.replace(view, history=state.history)


class ScheduleController(Controller):
    """Schedules of the caller's tenant."""

    path = "/api/schedules"
    tags = ["schedules"]

    @post(
        "/",
        operation_id="createSchedule",
        summary="Create a schedule",
        description=(
            "What to run: a `command_line`, or `command` with `arguments`/`options`. When: a "
            "cron `expression` (5 fields, or 6 with seconds first) or a chain of `helpers` "
            "(see `GET /api/frequencies`), read in `timezone`. The answer is the schedule as "
            "`GET` shows it; `projected` is false until the read model has caught up."
        ),
        status_code=201,
        sync_to_thread=True,
        response_headers=[
            ResponseHeader(
                name="Location", description="The new schedule's URL.", documentation_only=True
            )
        ],
        responses=error_responses(400, 413, 422),
    )
    def create(
        self,
        *,
        data: JSONBody[CreateSchedule],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> Response[ScheduleView]:
        schedule_id = chronicle.schedules.create(
            ScheduleRequest(
                name=data.name,
                description=data.description,
                command_line=data.command_line,
                command=data.command,
                arguments=data.arguments,
                options=data.options,
                expression=data.expression,
                helpers=None
                if data.helpers is None
                else [msgspec.structs.asdict(call) for call in data.helpers],
                timezone=data.timezone,
                queue=data.queue,
                max_attempts=data.max_attempts,
                timeout_seconds=data.timeout_seconds,
                without_overlapping=data.without_overlapping,
                missed_runs=data.missed_runs,
                active=data.active,
                tenant=caller.tenant,
                by=caller.user,
            )
        )
        body = _view(chronicle, schedule_id, caller.tenant)
        return Response(body, status_code=201, headers={"Location": schedule_path(schedule_id)})

    @get(
        "/",
        operation_id="listSchedules",
        summary="List schedules",
        description=(
            "Newest first, from the read model, each with its next due time. `active=true` "
            "lists running schedules, `active=false` paused ones."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def list_schedules(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        active: Annotated[
            bool | None, QueryParameter(description="true: active only; false: paused only.")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> SchedulePage:
        rows, next_cursor = chronicle.schedule_queries.list_schedules(
            caller.tenant, active=active, limit=limit, cursor=cursor
        )
        now = chronicle.clock.now()
        return SchedulePage(
            items=[schedule_view(row, now, chronicle.cron, projected=True) for row in rows],
            next_cursor=next_cursor,
        )

    @get(
        "/{schedule_id:str}",
        operation_id="getSchedule",
        summary="One schedule",
        description=(
            "Its settings, frequency (with the cron `expression` and `description_human`), "
            "next due time in UTC and in its timezone (null while paused) and last run. Right "
            "after a change the read model may lag: the schedule is then built from the event "
            "store, with `projected: false`."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="schedule"),
    )
    def get_schedule(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> ScheduleView:
        return _view(chronicle, parse_schedule_id(schedule_id), caller.tenant)

    @patch(
        "/{schedule_id:str}",
        operation_id="editSchedule",
        summary="Edit a schedule",
        description=(
            "Changes only the fields given (any of the create fields but `active`: use pause "
            "and resume). `arguments` or `options` without `command` apply to the schedule's "
            "command. A new command or frequency is checked like on create. Answers the "
            "schedule as it now is."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 413, 422, resource="schedule"),
    )
    def edit(
        self,
        *,
        schedule_id: ScheduleId,
        data: JSONBody[EditSchedule],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> ScheduleView:
        uuid = parse_schedule_id(schedule_id)
        changes = data.changes()
        if _CALL & changes.keys() and not _COMMAND & changes.keys():
            # New arguments or options alone are for the schedule's own command; the one of
            # the two not given keeps its value.
            current = chronicle.schedules.get(uuid, tenant=caller.tenant)
            changes = {
                "command": current.command,
                "arguments": current.arguments,
                "options": current.options,
                **changes,
            }
        chronicle.schedules.edit(uuid, changes, tenant=caller.tenant, by=caller.user)
        return _view(chronicle, uuid, caller.tenant)

    @delete(
        "/{schedule_id:str}",
        operation_id="deleteSchedule",
        summary="Delete a schedule",
        description="No more ticks; the schedule and its runs are no longer shown.",
        status_code=204,
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="schedule"),
    )
    def delete_schedule(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> None:
        chronicle.schedules.delete(
            parse_schedule_id(schedule_id), tenant=caller.tenant, by=caller.user
        )

    @post(
        "/{schedule_id:str}/pause",
        operation_id="pauseSchedule",
        summary="Pause a schedule",
        description="Its ticks are skipped until it is resumed; already paused is a 409.",
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 422, resource="schedule"),
    )
    def pause(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> ScheduleView:
        uuid = parse_schedule_id(schedule_id)
        chronicle.schedules.pause(uuid, tenant=caller.tenant, by=caller.user)
        return _view(chronicle, uuid, caller.tenant)

    @post(
        "/{schedule_id:str}/resume",
        operation_id="resumeSchedule",
        summary="Resume a paused schedule",
        description="It runs again from its next due time; a schedule not paused is a 409.",
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 422, resource="schedule"),
    )
    def resume(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> ScheduleView:
        uuid = parse_schedule_id(schedule_id)
        chronicle.schedules.resume(uuid, tenant=caller.tenant, by=caller.user)
        return _view(chronicle, uuid, caller.tenant)

    @post(
        "/{schedule_id:str}/run",
        operation_id="runScheduleNow",
        summary="Run a schedule now",
        description=(
            "Dispatches the schedule's command at once (paused or not), recorded as a manual "
            "run of the schedule. Follow the job at `links.job`."
        ),
        status_code=202,
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="schedule"),
    )
    def run_now(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> RunNowAccepted:
        job_id = chronicle.schedules.run_now(
            parse_schedule_id(schedule_id), tenant=caller.tenant, by=caller.user
        )
        return RunNowAccepted(job_id=job_id, links=RunNowLinks(job=job_path(job_id)))

    @get(
        "/{schedule_id:str}/runs",
        operation_id="listScheduleRuns",
        summary="Runs of a schedule",
        description=(
            "Newest first: each tick with the job it started (status, attempts, duration, "
            "outcome, error, output) or why it was skipped (`skip_reason`, `skip_detail`, "
            f"`skip_count` ticks). At most {MAX_LIMIT} a page."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="schedule"),
    )
    def runs(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> RunPage:
        uuid = parse_schedule_id(schedule_id)
        chronicle.schedules.get(uuid, tenant=caller.tenant)
        rows, next_cursor = chronicle.schedule_queries.runs(
            caller.tenant, uuid, limit=limit, cursor=cursor
        )
        return RunPage(items=[run_item(row) for row in rows], next_cursor=next_cursor)

    @get(
        "/{schedule_id:str}/comments",
        operation_id="listScheduleComments",
        summary="Comments on a schedule",
        description="Oldest first.",
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="schedule"),
    )
    def comments(
        self,
        *,
        schedule_id: ScheduleId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> list[CommentView]:
        state = schedule_state(chronicle, parse_schedule_id(schedule_id), caller.tenant)
        return [comment_view(comment) for comment in state.comments]

    @post(
        "/{schedule_id:str}/comments",
        operation_id="addScheduleComment",
        summary="Comment on a schedule",
        description=(
            'The body is `{"text": "…"}`: the note, 1 to 10,000 characters, not only white '
            "space (else 422). It is signed by the caller (`X-Chronicle-User`) and timestamped; "
            "the answer is the comment as the list shows it."
        ),
        status_code=201,
        sync_to_thread=True,
        responses=error_responses(400, 404, 413, 422, resource="schedule"),
    )
    def add_comment(
        self,
        *,
        schedule_id: ScheduleId,
        data: JSONBody[AddComment],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> CommentView:
        uuid = parse_schedule_id(schedule_id)
        comment_id = chronicle.schedules.comment(
            uuid, tenant=caller.tenant, author=caller.user, text=data.text
        )
        state = schedule_state(chronicle, uuid, caller.tenant)
        return next(comment_view(c) for c in state.comments if c.id == comment_id)
