"""`/api/queues`: per-queue job counts (the seed's getQueueStats)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from interfaces.bootstrap import Chronicle
from interfaces.http.dependencies import Caller
from interfaces.http.errors import error_responses
from interfaces.http.schemas import QueuesView, queues_view


class QueueController(Controller):
    """Queues of the caller's tenant."""

    path = "/api/queues"
    tags = ["queues"]

    @get(
        "/",
        operation_id="getQueueStats",
        summary="Job counts per queue",
        description=(
            "For each queue (high, default, low) the jobs by status, with `delayed` waiting "
            "jobs counted apart from due ones; `totals` sums the queues and `failed` is the "
            "number of failed jobs. Read from the read model: O(1) in history size."
        ),
        sync_to_thread=True,
        responses=error_responses(400),
    )
    def stats(
        self, chronicle: NamedDependency[Chronicle], caller: NamedDependency[Caller]
    ) -> QueuesView:
        return queues_view(chronicle.queries.queue_stats(caller.tenant, chronicle.clock.now()))
