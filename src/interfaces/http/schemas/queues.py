"""Request and response bodies of the queues API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from application.views.jobs import QueueStats
from application.views.queue_metrics import WINDOW_MINUTES, QueueActivity, Timing
from application.views.queue_pauses import QueuePause
from interfaces.http.schemas.common import utc


class QueueCountsView(Struct, kw_only=True):
    """Jobs of one queue by status; `waiting` counts only jobs that are due."""

    waiting: int
    delayed: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class QueuesView(Struct, kw_only=True):
    """Per-queue counts, their totals and the number of failed jobs."""

    queues: dict[str, QueueCountsView]
    totals: QueueCountsView
    failed: int


_COUNTED = ("waiting", "delayed", "running", "succeeded", "failed", "cancelled")


def _counts(values: Mapping[str, Any]) -> QueueCountsView:
    return QueueCountsView(**{name: int(values.get(name, 0)) for name in _COUNTED})


def queues_view(stats: QueueStats) -> QueuesView:
    totals = _counts(stats.totals)
    return QueuesView(
        queues={q.queue: _counts(dataclasses.asdict(q)) for q in stats.queues},
        totals=totals,
        failed=totals.failed,
    )


# -- queue control and statistics -------------------------------------------------------------


class PauseQueue(Struct, forbid_unknown_fields=True, kw_only=True):
    """Why the queue (or every queue) is paused, shown to other operators."""

    reason: Annotated[str, Meta(max_length=500)] = ""


class PauseView(Struct, kw_only=True):
    """A pause in force: who paused, why and when."""

    by: str
    reason: str
    at: datetime


class QueueControlView(Struct, kw_only=True):
    """A queue after pause or resume; `queue` null is the maintenance pause of every queue.

    After a pause (only), `held` says every live worker acts on it: no job of the queue starts
    from now on; otherwise `pending_workers` names those that did not say so in time."""

    queue: str | None
    paused: bool
    pause: PauseView | None
    held: bool | UnsetType = UNSET
    pending_workers: list[str] | UnsetType = UNSET


class TimingView(Struct, kw_only=True):
    """Milliseconds over the last hour: the mean, and the 95th percentile from a histogram."""

    avg: float | None
    p95: float | None


class QueueStatsView(QueueCountsView, kw_only=True):
    """Counts of one queue, whether it is paused, and its activity over the last hour."""

    paused: bool
    pause: PauseView | None
    processed_per_minute: list[int]
    wait_ms: TimingView
    run_ms: TimingView


class QueueOverview(Struct, kw_only=True):
    """Every queue with its counts and activity, the totals, and the maintenance pause."""

    queues: dict[str, QueueStatsView]
    totals: QueueCountsView
    failed: int
    paused: bool
    pause: PauseView | None


def pause_view(pause: QueuePause | None) -> PauseView | None:
    if pause is None:
        return None
    return PauseView(by=pause.by, reason=pause.reason, at=utc(pause.at))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def timing_view(timing: Timing) -> TimingView:
    return TimingView(avg=_ms(timing.avg), p95=_ms(timing.p95))


def queue_overview(
    stats: QueueStats, activity: list[QueueActivity], pauses: list[QueuePause]
) -> QueueOverview:
    """GET /api/queues: the counts of `queues_view`, plus pauses and the last hour's activity."""
    counts = queues_view(stats)
    by_queue = {pause.queue: pause for pause in pauses}
    active = {a.queue: a for a in activity}
    queues = {}
    for name, view in counts.queues.items():
        recent = active.get(name)
        queues[name] = QueueStatsView(
            **msgspec.structs.asdict(view),
            paused=name in by_queue,
            pause=pause_view(by_queue.get(name)),
            processed_per_minute=recent.processed_per_minute if recent else [0] * WINDOW_MINUTES,
            wait_ms=timing_view(recent.wait_ms if recent else Timing(None, None)),
            run_ms=timing_view(recent.run_ms if recent else Timing(None, None)),
        )
    return QueueOverview(
        queues=queues,
        totals=counts.totals,
        failed=counts.failed,
        paused=None in by_queue,
        pause=pause_view(by_queue.get(None)),
    )
