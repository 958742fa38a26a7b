"""`/api/queues`: per-queue counts and activity (the seed's getQueueStats), pause and resume."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter
from msgspec import UNSET

from domain.principals import Action
from domain.queue_control import QueueControl
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.dependencies import Caller
from interfaces.http.errors import error_responses
from interfaces.http.schemas.common import QUEUE_NAMES, utc
from interfaces.http.schemas.queues import (
    PauseQueue,
    PauseView,
    QueueControlView,
    QueueOverview,
    queue_overview,
)

QueueName = Annotated[
    str, PathParameter(description="high, default or low.", schema_extra={"enum": QUEUE_NAMES})
]

_PAUSE_EFFECT = (
    "The answer comes once every live worker acts on the pause: from then on no job of the "
    "queue starts (jobs already running finish), and its jobs stay waiting, counted so, until "
    "it is resumed. If a worker does not confirm within 10 s the pause is still recorded and "
    "the answer is 202 with `held` false and the worker named in `pending_workers`. Recorded "
    "with the caller (the request's principal, e.g. `user:ada`) as `by`."
)
#: How long a pause request waits for every live worker to act on the pause.
HOLD_TIMEOUT_SECONDS = 10.0


def _control_view(
    control: QueueControl, queue: str | None, pending: list[str] | None = None
) -> QueueControlView:
    pause = control.pauses.get(queue)
    return QueueControlView(
        queue=queue,
        paused=pause is not None,
        pause=None if pause is None else PauseView(by=pause[0], reason=pause[1], at=utc(pause[2])),
        held=UNSET if pending is None else not pending,
        pending_workers=UNSET if pending is None else pending,
    )


def _held(
    chronicle: Chronicle, control: QueueControl, queue: str | None
) -> Response[QueueControlView]:
    """The pause's answer, once every live worker acts on it (or the wait is over)."""
    pending = chronicle.queue_control.wait_until_held(
        chronicle.log.head(), timeout=HOLD_TIMEOUT_SECONDS
    )
    return Response(_control_view(control, queue, pending), status_code=202 if pending else 200)


_PAUSE_RESPONSES = {
    202: ResponseSpec(
        data_container=QueueControlView,
        description="Paused, but a live worker did not confirm it acts on the pause in time.",
        generate_examples=False,
    ),
    **error_responses(400, 409, 413, 422, resource="queue"),
}


class QueueController(Controller):
    """Queues of the caller's tenant."""

    path = "/api/queues"
    tags = ["queues"]

    @get(
        "/",
        operation_id="getQueueStats",
        summary="Job counts, activity and pauses per queue",
        description=(
            "For each queue (high, default, low) the jobs by status, with `delayed` waiting "
            "jobs counted apart from due ones; whether the queue is `paused` (and by whom); "
            "`processed_per_minute`: jobs that ended (succeeded, failed for good, cancelled) in "
            "each of the last 60 minutes, oldest first, the current minute last; `wait_ms` "
            "(from due to started) and `run_ms` (per attempt) over the last hour, as mean and "
            "95th percentile (from a histogram in 1-2-5 steps, interpolated and capped at the "
            "longest duration: a close estimate, not an exact value), null when nothing was "
            "measured. `totals` sums the counts, "
            "`failed` is the number of failed jobs, the top-level `paused` is the maintenance "
            "pause of every queue. Read from read models: O(1) in history size."
        ),
        sync_to_thread=True,
        responses=error_responses(400),
    )
    def stats(
        self, chronicle: NamedDependency[Chronicle], caller: NamedDependency[Caller]
    ) -> QueueOverview:
        now = chronicle.clock.now()
        return queue_overview(
            chronicle.queries.queue_stats(caller.tenant, now),
            chronicle.queue_metrics.activity(caller.tenant, now),
            chronicle.queue_pauses.pauses(caller.tenant),
        )

    @post(
        "/pause",
        opt={ACTION: Action.CONTROL_QUEUES},
        operation_id="pauseAllQueues",
        summary="Pause every queue (maintenance)",
        description=(
            "The maintenance pause: no queue of the tenant starts a job until it is resumed; "
            "pauses of single queues stay as they are. Already paused is a 409. " + _PAUSE_EFFECT
        ),
        status_code=200,
        sync_to_thread=True,
        responses=_PAUSE_RESPONSES,
    )
    def pause_all(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[PauseQueue | None] = None,
    ) -> Response[QueueControlView]:
        control = chronicle.queue_control.pause(
            tenant=caller.tenant, queue=None, by=caller.user, reason=data.reason if data else ""
        )
        return _held(chronicle, control, None)

    @post(
        "/resume",
        opt={ACTION: Action.CONTROL_QUEUES},
        operation_id="resumeAllQueues",
        summary="Lift the maintenance pause",
        description=(
            "Queues paused one by one stay paused. Not paused is a 409. Recorded with the "
            "caller as `by`."
        ),
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 409, resource="queue"),
    )
    def resume_all(
        self, *, chronicle: NamedDependency[Chronicle], caller: NamedDependency[Caller]
    ) -> QueueControlView:
        control = chronicle.queue_control.resume(tenant=caller.tenant, queue=None, by=caller.user)
        return _control_view(control, None)

    @post(
        "/{queue:str}/pause",
        opt={ACTION: Action.CONTROL_QUEUES},
        operation_id="pauseQueue",
        summary="Pause a queue",
        description="Already paused is a 409, an unknown queue a 422. " + _PAUSE_EFFECT,
        status_code=200,
        sync_to_thread=True,
        responses=_PAUSE_RESPONSES,
    )
    def pause(
        self,
        *,
        queue: QueueName,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[PauseQueue | None] = None,
    ) -> Response[QueueControlView]:
        control = chronicle.queue_control.pause(
            tenant=caller.tenant, queue=queue, by=caller.user, reason=data.reason if data else ""
        )
        return _held(chronicle, control, queue)

    @post(
        "/{queue:str}/resume",
        opt={ACTION: Action.CONTROL_QUEUES},
        operation_id="resumeQueue",
        summary="Resume a paused queue",
        description=(
            "Workers take its jobs again within about a second. Not paused is a 409, an "
            "unknown queue a 422. Recorded with the caller as `by`."
        ),
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 409, 422, resource="queue"),
    )
    def resume(
        self,
        *,
        queue: QueueName,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> QueueControlView:
        control = chronicle.queue_control.resume(tenant=caller.tenant, queue=queue, by=caller.user)
        return _control_view(control, queue)
