"""Operator actions from the pages (dashboard part 2, first slices): retry, cancel, comment on
and forget jobs; pause and resume queues; pause, resume, run, delete and comment on schedules.

Each action is a form post to a page route that states its action like the API's route, so
the same guard checks the role, the tenant and the session's CSRF token (a viewer's forged
post is a 403, exactly as the API's). The values are checked by the API's own body types and
the same application services run with the signed-in account as the actor. Done, the browser
goes back to the page it came from; a refused action is the error page with the API's status
and message.
"""

from __future__ import annotations

from typing import Any, TypeVar

import anyio
import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import FormMultiDict
from litestar.response import Redirect

from domain.principals import Action
from domain.shared import ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION, PAGE
from interfaces.http.batches import BatchId
from interfaces.http.dependencies import parse_id
from interfaces.http.jobs import JobId
from interfaces.http.queues import QueueName
from interfaces.http.schedules import ScheduleId
from interfaces.http.schemas.batches import CancelBatch
from interfaces.http.schemas.common import AddComment
from interfaces.http.schemas.jobs import CancelJob
from interfaces.http.schemas.queues import PauseQueue
from interfaces.web.pages import safe_next

T = TypeVar("T", bound=msgspec.Struct)


def _opt(action: Action) -> dict[str, Any]:
    return {PAGE: True, ACTION: action}


def form_values(form: FormMultiDict, body: type[T]) -> T:
    """The form's fields as the API's body type, with its rules (lengths, required fields);
    a value that breaks one is a ValidationError naming the field."""
    fields = {
        name: value
        for name, value in form.items()
        if name in body.__struct_fields__ and isinstance(value, str)
    }
    try:
        return msgspec.convert(fields, body, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("$.", 1)[1].rstrip("`") if "$." in message else None
        raise ValidationError(message, field=field) from None


def _back(form: FormMultiDict, fallback: str) -> Redirect:
    target = form.get("next")
    return Redirect(safe_next(target if isinstance(target, str) else fallback), status_code=303)


class JobActions(Controller):
    """Retry, cancel, comment on and forget a job of the signed-in tenant."""

    include_in_schema = False

    @post("/jobs/{job_id:str}/retry", opt=_opt(Action.RETRY), status_code=303)
    async def retry(self, request: Request[Any, Any, Any], job_id: JobId) -> Redirect:
        form = await request.form()
        chronicle: Chronicle = request.app.state.chronicle
        job = parse_id(job_id, "job")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(lambda: chronicle.jobs.retry(job, tenant=tenant, by=actor))
        return _back(form, f"/jobs/{job}")

    @post("/jobs/{job_id:str}/cancel", opt=_opt(Action.CANCEL), status_code=303)
    async def cancel(self, request: Request[Any, Any, Any], job_id: JobId) -> Redirect:
        form = await request.form()
        values = form_values(form, CancelJob)
        chronicle: Chronicle = request.app.state.chronicle
        job = parse_id(job_id, "job")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.jobs.cancel(job, tenant=tenant, by=actor, reason=values.reason)
        )
        return _back(form, f"/jobs/{job}")

    @post("/jobs/{job_id:str}/comments", opt=_opt(Action.COMMENT), status_code=303)
    async def comment(self, request: Request[Any, Any, Any], job_id: JobId) -> Redirect:
        form = await request.form()
        values = form_values(form, AddComment)
        chronicle: Chronicle = request.app.state.chronicle
        job = parse_id(job_id, "job")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.jobs.comment(job, tenant=tenant, author=actor, text=values.text)
        )
        return _back(form, f"/jobs/{job}")

    @post("/failed/{job_id:str}/forget", opt=_opt(Action.FORGET), status_code=303)
    async def forget(self, request: Request[Any, Any, Any], job_id: JobId) -> Redirect:
        form = await request.form()
        chronicle: Chronicle = request.app.state.chronicle
        job = parse_id(job_id, "job")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(lambda: chronicle.jobs.forget(job, tenant=tenant, by=actor))
        return _back(form, "/failed")


class QueueActions(Controller):
    """Pause and resume one queue, or all of them (maintenance), with a reason."""

    include_in_schema = False

    @post("/queues/{queue:str}/pause", opt=_opt(Action.CONTROL_QUEUES), status_code=303)
    async def pause(self, request: Request[Any, Any, Any], queue: QueueName) -> Redirect:
        return await self._pause(request, queue)

    @post("/queues/pause", opt=_opt(Action.CONTROL_QUEUES), status_code=303)
    async def pause_all(self, request: Request[Any, Any, Any]) -> Redirect:
        return await self._pause(request, None)

    @post("/queues/{queue:str}/resume", opt=_opt(Action.CONTROL_QUEUES), status_code=303)
    async def resume(self, request: Request[Any, Any, Any], queue: QueueName) -> Redirect:
        return await self._resume(request, queue)

    @post("/queues/resume", opt=_opt(Action.CONTROL_QUEUES), status_code=303)
    async def resume_all(self, request: Request[Any, Any, Any]) -> Redirect:
        return await self._resume(request, None)

    @staticmethod
    async def _pause(request: Request[Any, Any, Any], queue: str | None) -> Redirect:
        form = await request.form()
        values = form_values(form, PauseQueue)
        chronicle: Chronicle = request.app.state.chronicle
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.queue_control.pause(
                tenant=tenant, queue=queue, by=actor, reason=values.reason
            )
        )
        return _back(form, "/queues")

    @staticmethod
    async def _resume(request: Request[Any, Any, Any], queue: str | None) -> Redirect:
        form = await request.form()
        chronicle: Chronicle = request.app.state.chronicle
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.queue_control.resume(tenant=tenant, queue=queue, by=actor)
        )
        return _back(form, "/queues")


class ScheduleActions(Controller):
    """Pause, resume, run now, delete (after a confirmation) and comment on a schedule."""

    include_in_schema = False

    @post("/schedules/{schedule_id:str}/pause", opt=_opt(Action.MANAGE_SCHEDULES), status_code=303)
    async def pause(self, request: Request[Any, Any, Any], schedule_id: ScheduleId) -> Redirect:
        return await _on_schedule(request, schedule_id, "pause")

    @post("/schedules/{schedule_id:str}/resume", opt=_opt(Action.MANAGE_SCHEDULES), status_code=303)
    async def resume(self, request: Request[Any, Any, Any], schedule_id: ScheduleId) -> Redirect:
        return await _on_schedule(request, schedule_id, "resume")

    @post("/schedules/{schedule_id:str}/run", opt=_opt(Action.MANAGE_SCHEDULES), status_code=303)
    async def run_now(self, request: Request[Any, Any, Any], schedule_id: ScheduleId) -> Redirect:
        return await _on_schedule(request, schedule_id, "run_now")

    @post("/schedules/{schedule_id:str}/delete", opt=_opt(Action.MANAGE_SCHEDULES), status_code=303)
    async def delete(self, request: Request[Any, Any, Any], schedule_id: ScheduleId) -> Redirect:
        form = await request.form()
        if form.get("confirm") != "delete":
            raise ValidationError(
                "deleting a schedule needs its confirmation (tick the box)", field="confirm"
            )
        await _on_schedule(request, schedule_id, "delete")
        return Redirect("/schedules", status_code=303)

    @post("/schedules/{schedule_id:str}/comments", opt=_opt(Action.COMMENT), status_code=303)
    async def comment(self, request: Request[Any, Any, Any], schedule_id: ScheduleId) -> Redirect:
        form = await request.form()
        values = form_values(form, AddComment)
        chronicle: Chronicle = request.app.state.chronicle
        uuid = parse_id(schedule_id, "schedule")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.schedules.comment(uuid, tenant=tenant, author=actor, text=values.text)
        )
        return _back(form, f"/schedules/{uuid}")


class BatchActions(Controller):
    """Cancel a batch (with a reason) and retry its failed jobs."""

    include_in_schema = False

    @post("/batches/{batch_id:str}/cancel", opt=_opt(Action.MANAGE_BATCHES), status_code=303)
    async def cancel(self, request: Request[Any, Any, Any], batch_id: BatchId) -> Redirect:
        form = await request.form()
        values = form_values(form, CancelBatch)
        chronicle: Chronicle = request.app.state.chronicle
        uuid = parse_id(batch_id, "batch")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.batches.cancel(uuid, tenant=tenant, by=actor, reason=values.reason)
        )
        return _back(form, f"/batches/{uuid}")

    @post("/batches/{batch_id:str}/retry-failed", opt=_opt(Action.MANAGE_BATCHES), status_code=303)
    async def retry_failed(self, request: Request[Any, Any, Any], batch_id: BatchId) -> Redirect:
        form = await request.form()
        chronicle: Chronicle = request.app.state.chronicle
        uuid = parse_id(batch_id, "batch")
        tenant, actor = request.state.tenant, request.state.principal.actor
        await anyio.to_thread.run_sync(
            lambda: chronicle.batches.retry_failed(uuid, tenant=tenant, by=actor)
        )
        return _back(form, f"/batches/{uuid}")


async def _on_schedule(request: Request[Any, Any, Any], schedule_id: str, verb: str) -> Redirect:
    """One of the schedule service's `pause`, `resume`, `run_now`, `delete` for the signed-in
    principal, then back to the schedule's page."""
    form = await request.form()
    chronicle: Chronicle = request.app.state.chronicle
    uuid = parse_id(schedule_id, "schedule")
    tenant, actor = request.state.tenant, request.state.principal.actor
    act = getattr(chronicle.schedules, verb)
    await anyio.to_thread.run_sync(lambda: act(uuid, tenant=tenant, by=actor))
    return _back(form, f"/schedules/{uuid}")


PAGES = [JobActions, QueueActions, ScheduleActions, BatchActions]
