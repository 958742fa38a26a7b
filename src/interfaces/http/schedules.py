"""`/api/schedules`: create, list, inspect, edit, pause, resume, run and comment on schedules."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from application.schedules import ScheduleRequest
from domain.principals import Action
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
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
    SchedulePage,
    ScheduleView,
    history_entry,
    run_item,
    schedule_view,
)

_COMMAND = frozenset({"command", "command_line"})
_CALL = frozenset({"arguments", "options"})

ScheduleId = Annotated[str, id_path("schedule")]


def parse_schedule_id(raw: str) -> UUID:
    return parse_id(raw, "schedule")


def _view(
    chronicle: Chronicle, schedule_id: UUID, tenant: str, *, at_least: int | None = None
) -> ScheduleView:
    """The schedule as `GET` shows it, with its history, as of at least version `at_least`."""
    reads = chronicle.schedule_reads
    current = reads.get(tenant, schedule_id, at_least=at_least)
    view = schedule_view(
        current.value, chronicle.clock.now(), chronicle.cron, projected=current.projected
    )
    history = [history_entry(change) for change in reads.history(tenant, schedule_id)]
    return msgspec.structs.replace(view, history=history)


class ScheduleController(Controller):
    """Schedules of the caller's tenant."""

    path = "/api/schedules"
    tags = ["schedules"]

    @post(
        "/",
        opt={ACTION: Action.MANAGE_SCHEDULES},
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
        opt={ACTION: Action.MANAGE_SCHEDULES},
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
        edited = chronicle.schedules.edit(uuid, changes, tenant=caller.tenant, by=caller.user)
        return _view(chronicle, uuid, caller.tenant, at_least=edited.version)

    @delete(
        "/{schedule_id:str}",
        opt={ACTION: Action.MANAGE_SCHEDULES},
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
        opt={ACTION: Action.MANAGE_SCHEDULES},
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
        paused = chronicle.schedules.pause(uuid, tenant=caller.tenant, by=caller.user)
        return _view(chronicle, uuid, caller.tenant, at_least=paused.version)

    @post(
        "/{schedule_id:str}/resume",
        opt={ACTION: Action.MANAGE_SCHEDULES},
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
        resumed = chronicle.schedules.resume(uuid, tenant=caller.tenant, by=caller.user)
        return _view(chronicle, uuid, caller.tenant, at_least=resumed.version)

    @post(
        "/{schedule_id:str}/run",
        opt={ACTION: Action.MANAGE_SCHEDULES},
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
        rows, next_cursor = chronicle.schedule_reads.runs(
            caller.tenant, parse_schedule_id(schedule_id), limit=limit, cursor=cursor
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
        comments = chronicle.schedule_reads.comments(caller.tenant, parse_schedule_id(schedule_id))
        return [comment_view(comment) for comment in comments]

    @post(
        "/{schedule_id:str}/comments",
        opt={ACTION: Action.COMMENT},
        operation_id="addScheduleComment",
        summary="Comment on a schedule",
        description=(
            'The body is `{"text": "…"}`: the note, 1 to 10,000 characters, not only white '
            "space (else 422). It is signed by the caller (the request's principal, e.g. "
            "`user:ada`) and timestamped; "
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
        comments = chronicle.schedule_reads.comments(caller.tenant, uuid)
        return next(comment_view(c) for c in comments if c.id == comment_id)
