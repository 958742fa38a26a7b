"""`/queues`: per queue its counts, whether it is paused (by whom, why, since when) and charts
of throughput and wait time over the last hour and the last 24 hours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from application.views.queue_metrics import (
    DAY_MINUTES,
    DAY_STEP_MINUTES,
    HOUR_STEP_MINUTES,
    WINDOW_MINUTES,
    QueueSeries,
)
from interfaces.bootstrap import Chronicle
from interfaces.web.pages import PAGE_OPT, overview, page_context

#: The charts: (key in the data block, title, minutes shown, minutes per point).
CHART_SPANS = (
    ("hour", "Last hour", WINDOW_MINUTES, HOUR_STEP_MINUTES),
    ("day", "Last 24 hours", DAY_MINUTES, DAY_STEP_MINUTES),
)


def _series(row: QueueSeries) -> dict[str, Any]:
    return {
        "step_minutes": row.step,
        "t": row.starts,
        "per_minute": row.per_minute,
        "wait_avg_ms": row.wait_avg_ms,
        "wait_p95_ms": row.wait_p95_ms,
    }


def chart_data(chronicle: Chronicle, tenant: str, now: datetime) -> dict[str, dict[str, Any]]:
    """`{queue: {"hour": series, "day": series}}` from the queue metrics read model (bounded
    ranges of its primary key), for `static/charts.js`."""
    data: dict[str, dict[str, Any]] = {}
    for key, _, minutes, step in CHART_SPANS:
        for row in chronicle.queue_metrics.history(tenant, now, minutes=minutes, step=step):
            data.setdefault(row.queue, {})[key] = _series(row)
    return data


class QueuesPage(Controller):
    """`/queues`: the queues as `GET /api/queues` gives them, and their charts."""

    path = "/queues"
    include_in_schema = False
    opt = PAGE_OPT

    @get("/", sync_to_thread=True)
    def queues(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant: str = request.state.tenant
        now = chronicle.clock.now()
        return Template(
            "queues/index.html",
            context=page_context(
                request,
                stats=overview(chronicle, tenant, now),
                charts=chart_data(chronicle, tenant, now),
                spans=[(key, title) for key, title, _, _ in CHART_SPANS],
            ),
        )


PAGES = [QueuesPage]
