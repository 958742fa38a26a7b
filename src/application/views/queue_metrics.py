"""Queue statistics per minute (jobs processed, wait and run times), from Job events.

Each (tenant, queue, minute) row holds counts, sums and a fixed log-scale histogram of wait and
run times. A query merges the last 60 rows of a queue, whatever the number of jobs ever run:
averages are exact (sum / count), percentiles come from the merged histogram.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.job import Job

#: Upper bounds (inclusive, ms) of the histogram buckets, in 1-2-5 steps from 1 ms to 20,000 s;
#: one more bucket holds everything above the last bound.
BUCKET_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500,
    1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7,
)  # fmt: skip
BUCKETS = len(BUCKET_BOUNDS_MS) + 1
#: Minute rows older than this (in event time) are deleted as the projection moves on.
RETENTION_MINUTES = 24 * 60
WINDOW_MINUTES = 60

MinuteKey = tuple[str, str, int]


def minute_of(moment: datetime) -> int:
    """Minutes since the Unix epoch: the row a moment falls in."""
    return math.floor(moment.timestamp() / 60)


def bucket_of(ms: float) -> int:
    """Index of the bucket holding a duration of `ms` milliseconds."""
    return bisect_left(BUCKET_BOUNDS_MS, ms)


def percentile(buckets: Sequence[int], q: float) -> float | None:
    """The `q` quantile (0 < q <= 1) of a histogram, interpolated linearly inside its bucket.

    As Prometheus' histogram_quantile: the first bucket starts at 0, and a quantile that falls
    in the open-ended last bucket is reported as that bucket's lower bound (all that is known).
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index == len(BUCKET_BOUNDS_MS):
                return BUCKET_BOUNDS_MS[-1]
            lower = BUCKET_BOUNDS_MS[index - 1] if index else 0.0
            upper = BUCKET_BOUNDS_MS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return BUCKET_BOUNDS_MS[-1]  # pragma: no cover - the loop always reaches `rank`


@dataclass(frozen=True)
class Timing:
    """Average and 95th percentile of durations in milliseconds; None when there were none."""

    avg: float | None
    p95: float | None


@dataclass
class Durations:
    """How many durations, their sum, the longest and their histogram."""

    count: int = 0
    sum_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        ms = max(0.0, ms)
        self.count += 1
        self.sum_ms += ms
        self.buckets[bucket_of(ms)] += 1
        self.max_ms = max(self.max_ms, ms)

    def merge(self, other: Durations) -> None:
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.max_ms = max(self.max_ms, other.max_ms)

    def timing(self) -> Timing:
        """Mean and 95th percentile; the estimate never exceeds the longest duration seen."""
        if self.count == 0:
            return Timing(None, None)
        p95 = percentile(self.buckets, 0.95)
        return Timing(self.sum_ms / self.count, None if p95 is None else min(p95, self.max_ms))


@dataclass
class MinuteStats:
    """One queue's activity in one minute (or the change a batch of events makes to it)."""

    processed: int = 0
    wait: Durations = field(default_factory=Durations)
    run: Durations = field(default_factory=Durations)


@dataclass(frozen=True)
class TrackedJob:
    """What the projection keeps per unfinished (or dead-lettered) job to measure its wait."""

    tenant: str
    queue: str
    available_at: datetime


class QueueMetricsWriter(Protocol):
    """What the queue metrics projection needs from its store, inside one transaction."""

    def jobs(self, job_ids: Collection[UUID]) -> dict[UUID, TrackedJob]: ...
    def save_jobs(self, changed: dict[UUID, TrackedJob], finished: Collection[UUID]) -> None: ...
    def add_minutes(self, deltas: dict[MinuteKey, MinuteStats]) -> None:
        """Add each delta to its row (created at zero when missing)."""
        ...

    def prune(self, before_minute: int) -> None:
        """Delete the rows of minutes before `before_minute`."""
        ...


METRIC_EVENTS = (
    Job.Dispatched,
    Job.Started,
    Job.Succeeded,
    Job.AttemptFailed,
    Job.RetryScheduled,
    Job.DeadLettered,
    Job.Cancelled,
    Job.Retried,
)


class QueueMetricsProjection:
    """Per minute: jobs processed, wait times (from available to started) and run times."""

    name = "queue_metrics"
    topics = tuple(topic(cls) for cls in METRIC_EVENTS)

    def process(self, events: Sequence[LoggedEvent], writer: QueueMetricsWriter) -> None:  # noqa: C901 - one branch per event type
        dispatched = {e.event.originator_id for e in events if isinstance(e.event, Job.Dispatched)}
        jobs = writer.jobs({e.event.originator_id for e in events} - dispatched)
        changed: dict[UUID, TrackedJob] = {}
        finished: set[UUID] = set()
        deltas: dict[MinuteKey, MinuteStats] = {}

        def stats(job: TrackedJob, at: datetime) -> MinuteStats:
            return deltas.setdefault((job.tenant, job.queue, minute_of(at)), MinuteStats())

        def track(job_id: UUID, job: TrackedJob) -> None:
            jobs[job_id] = changed[job_id] = job
            finished.discard(job_id)

        def forget(job_id: UUID) -> None:
            # A succeeded or cancelled job never runs again: its row is not needed any more.
            jobs.pop(job_id, None)
            changed.pop(job_id, None)
            finished.add(job_id)

        for logged in events:
            event = logged.event
            job_id = event.originator_id
            if isinstance(event, Job.Dispatched):
                available = max(event.at, event.not_before) if event.not_before else event.at
                track(job_id, TrackedJob(event.tenant, event.queue, available))
                continue
            job = jobs.get(job_id)
            if job is None:
                continue  # a job this read model never saw dispatched, or already finished
            if isinstance(event, Job.Started):
                wait = (event.at - job.available_at).total_seconds() * 1000
                stats(job, event.at).wait.add(wait)
            elif isinstance(event, Job.Succeeded):
                minute = stats(job, event.at)
                minute.run.add(event.duration_ms)
                minute.processed += 1
                forget(job_id)
            elif isinstance(event, Job.AttemptFailed):
                stats(job, event.at).run.add(event.duration_ms)
            elif isinstance(event, Job.RetryScheduled):
                track(job_id, replace(job, queue=event.queue, available_at=event.retry_at))
            elif isinstance(event, Job.Retried):
                track(job_id, replace(job, queue=event.queue, available_at=event.at))
            elif isinstance(event, Job.DeadLettered):
                # The row is kept: an operator may retry the job, and its wait counts from then.
                stats(job, event.at).processed += 1
            elif isinstance(event, Job.Cancelled):
                stats(job, event.at).processed += 1
                forget(job_id)
        writer.save_jobs(changed, finished)
        if deltas:
            writer.add_minutes(deltas)
            writer.prune(max(minute for _, _, minute in deltas) - RETENTION_MINUTES)


@dataclass(frozen=True)
class QueueActivity:
    """One queue over the last hour: jobs processed per minute (oldest first), wait, run."""

    queue: str
    processed_per_minute: list[int]
    wait_ms: Timing
    run_ms: Timing


def summarize(queue: str, rows: Iterable[tuple[int, MinuteStats]], now: datetime) -> QueueActivity:
    """Merge a queue's minute rows into its activity over the window that ends at `now`."""
    first, last = window(now)
    processed = [0] * WINDOW_MINUTES
    wait, run = Durations(), Durations()
    for minute, row in rows:
        if first <= minute <= last:
            processed[minute - first] += row.processed
            wait.merge(row.wait)
            run.merge(row.run)
    return QueueActivity(queue, processed, wait.timing(), run.timing())


def window(now: datetime) -> tuple[int, int]:
    """First and last minute of the window that ends at `now`."""
    last = minute_of(now)
    return last - WINDOW_MINUTES + 1, last


class QueueMetricsQueries(Protocol):
    """Read side of the queue metrics read model."""

    def activity(self, tenant: str, now: datetime) -> list[QueueActivity]:
        """Each queue's activity over the hour up to `now`: at most 60 rows read per queue."""
        ...

    def history(self, tenant: str, now: datetime, *, minutes: int, step: int) -> list[QueueSeries]:
        """Each queue's series over `minutes` (at most `RETENTION_MINUTES`) up to `now`, in slots
        of `step` minutes: one range of the primary key per queue, summed per slot."""
        ...


# -- history for charts -------------------------------------------------------------------------
#
# The charts of the dashboard show the last hour minute by minute and the last 24 hours in
# 15-minute slots. Minute rows are already kept for 24 hours (`RETENTION_MINUTES`), so the 24 h
# charts need no roll-up table: a query reads one range of the primary key (tenant, queue,
# minute), at most 1,440 rows per queue, and sums them per slot in SQL (at most 96 rows back).
HOUR_STEP_MINUTES = 1
DAY_MINUTES = 24 * 60
DAY_STEP_MINUTES = 15


@dataclass(frozen=True)
class SlotStats:
    """Jobs processed and wait times in one slot of `step` minutes (summed minute rows)."""

    slot: int
    processed: int
    wait: Durations


@dataclass(frozen=True)
class QueueSeries:
    """One queue's activity over `minutes` up to now, in slots of `step` minutes, oldest first:
    the slots' start (epoch seconds), jobs finished per minute (averaged over the slot), and the
    wait from due to started (mean and 95th percentile, ms; None when nothing started)."""

    queue: str
    minutes: int
    step: int
    starts: list[int]
    per_minute: list[float]
    wait_avg_ms: list[float | None]
    wait_p95_ms: list[float | None]


def slots(now: datetime, minutes: int, step: int) -> tuple[int, int, int]:
    """First and last minute of the `minutes` up to `now`, cut into whole slots of `step`
    minutes (the last slot holds the current minute), and the number of slots."""
    if minutes <= 0 or step <= 0 or minutes % step:
        raise ValueError("minutes must be a positive multiple of step")
    last = minute_of(now)
    count = minutes // step
    # The slots are aligned to multiples of `step` since the epoch, so a slot keeps its minutes
    # from one refresh to the next.
    end = last - last % step + step - 1
    return end - count * step + 1, end, count


def series(
    queue: str, rows: Iterable[SlotStats], now: datetime, *, minutes: int, step: int
) -> QueueSeries:
    """A queue's series from its slot rows (`slot`: index from the first slot of `slots`)."""
    first, _, count = slots(now, minutes, step)
    processed = [0] * count
    waits = [Durations() for _ in range(count)]
    for row in rows:
        if 0 <= row.slot < count:
            processed[row.slot] += row.processed
            waits[row.slot].merge(row.wait)
    timings = [w.timing() for w in waits]
    return QueueSeries(
        queue=queue,
        minutes=minutes,
        step=step,
        starts=[(first + i * step) * 60 for i in range(count)],
        per_minute=[round(p / step, 3) for p in processed],
        wait_avg_ms=[None if t.avg is None else round(t.avg, 3) for t in timings],
        wait_p95_ms=[None if t.p95 is None else round(t.p95, 3) for t in timings],
    )
