"""Queue statistics: histogram buckets, percentile math, the minute rows a projection writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from application.event_log import LoggedEvent
from application.views.queue_metrics import (
    BUCKET_BOUNDS_MS,
    BUCKETS,
    RETENTION_MINUTES,
    Durations,
    MinuteStats,
    QueueMetricsProjection,
    SlotStats,
    TrackedJob,
    bucket_of,
    minute_of,
    percentile,
    series,
    slots,
    summarize,
)
from domain.job import Job

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def histogram(*values: float) -> list[int]:
    durations = Durations()
    for value in values:
        durations.add(value)
    return durations.buckets


def test_buckets_are_log_scale_in_1_2_5_steps_with_an_open_last_one():
    assert BUCKETS == 24
    assert BUCKET_BOUNDS_MS[:4] == (1, 2, 5, 10)
    assert BUCKET_BOUNDS_MS[-1] == 20_000_000
    # Upper bounds are inclusive: 1 ms is in the first bucket, just above it in the second.
    assert (bucket_of(0), bucket_of(1), bucket_of(1.001), bucket_of(2)) == (0, 0, 1, 1)
    assert bucket_of(150) == 7  # (100, 200]
    assert bucket_of(1e9) == 23


def test_percentile_of_an_empty_histogram_is_none():
    assert percentile([0] * BUCKETS, 0.95) is None


def test_percentile_interpolates_inside_its_bucket():
    # 100 values in (100, 200]: the 95th is 95% of the way through that bucket.
    assert percentile(histogram(*[150] * 100), 0.95) == pytest.approx(195.0)
    # 19 values at 10 ms and 1 at 1500 ms: rank 19 is the last value of the (5, 10] bucket.
    assert percentile(histogram(*[10] * 19, 1500), 0.95) == pytest.approx(10.0)
    # 18 at 10 ms, 2 at 1500 ms: rank 19 is half way through (1000, 2000].
    assert percentile(histogram(*[10] * 18, 1500, 1500), 0.95) == pytest.approx(1500.0)


def test_percentile_in_the_open_bucket_is_its_lower_bound():
    assert percentile(histogram(1e9, 1e9), 0.95) == BUCKET_BOUNDS_MS[-1]


def test_percentile_error_is_bounded_by_the_bucket_width():
    values = [float(v) for v in range(1, 10_001)]  # 1 ms .. 10 s, uniform
    estimate = percentile(histogram(*values), 0.95)
    assert estimate is not None
    assert 5000 < estimate <= 10_000  # true p95 is 9500, inside (5000, 10000]
    assert estimate == pytest.approx(9500, rel=0.01)  # linear inside the bucket fits uniform data


def test_merged_histograms_give_the_percentile_of_all_values():
    first, second = Durations(), Durations()
    for v in [3] * 50:
        first.add(v)
    for v in [300] * 50:
        second.add(v)
    first.merge(second)
    assert first.count == 100
    assert first.sum_ms == 50 * 3 + 50 * 300
    assert percentile(first.buckets, 0.5) == pytest.approx(5.0)  # top of (2, 5]
    assert percentile(first.buckets, 0.95) == pytest.approx(200 + 300 * 0.9)


def test_negative_durations_count_as_zero():
    durations = Durations()
    durations.add(-20)
    assert (durations.sum_ms, durations.buckets[0]) == (0.0, 1)


def test_summarize_keeps_the_last_60_minutes_oldest_first():
    now = T0 + timedelta(minutes=59, seconds=30)
    last = minute_of(now)
    rows = [
        (last - 60, MinuteStats(processed=7)),  # just outside the window
        (last - 59, MinuteStats(processed=1)),
        (last, MinuteStats(processed=3)),
    ]
    activity = summarize("default", rows, now)
    assert len(activity.processed_per_minute) == 60
    assert activity.processed_per_minute[0] == 1
    assert activity.processed_per_minute[-1] == 3
    assert sum(activity.processed_per_minute) == 4
    assert activity.wait_ms.avg is None


class MemoryWriter:
    """QueueMetricsWriter in dicts."""

    def __init__(self) -> None:
        self.tracked: dict = {}
        self.minutes: dict = {}
        self.pruned_before: int | None = None

    def jobs(self, job_ids):
        return {i: self.tracked[i] for i in job_ids if i in self.tracked}

    def save_jobs(self, changed, finished):
        self.tracked.update(changed)
        for job_id in finished:
            self.tracked.pop(job_id, None)

    def add_minutes(self, deltas):
        for key, delta in deltas.items():
            row = self.minutes.setdefault(key, MinuteStats())
            row.processed += delta.processed
            row.wait.merge(delta.wait)
            row.run.merge(delta.run)

    def prune(self, before_minute):
        self.pruned_before = before_minute
        self.minutes = {k: v for k, v in self.minutes.items() if k[2] >= before_minute}


def make_event(cls, job_id, version, **fields):
    return cls(originator_id=job_id, originator_version=version, timestamp=T0, **fields)


def dispatched(job_id, at, not_before=None, queue="default"):
    return make_event(
        Job.Dispatched,
        job_id,
        1,
        originator_topic="domain.job:Job",
        tenant="default",
        command="demo:noop",
        command_line="demo:noop",
        arguments={},
        options={},
        queue=queue,
        max_attempts=2,
        timeout_seconds=None,
        backoff_seconds=1.0,
        not_before=not_before,
        requested_by="test",
        batch_id=None,
        schedule_id=None,
        at=at,
    )


def test_projection_measures_wait_from_due_time_and_counts_each_outcome_once():
    writer = MemoryWriter()
    projection = QueueMetricsProjection()
    a, b = uuid4(), uuid4()
    t = T0
    events = [
        dispatched(a, t),
        dispatched(b, t, not_before=t + timedelta(seconds=30)),
        make_event(Job.Started, a, 2, attempt=1, worker_id="w", at=t + timedelta(seconds=2)),
        make_event(
            Job.AttemptFailed,
            a,
            3,
            attempt=1,
            error_type="E",
            message="",
            traceback="",
            output="",
            duration_ms=40.0,
            timed_out=False,
            at=t + timedelta(seconds=3),
        ),
        make_event(
            Job.RetryScheduled,
            a,
            4,
            queue="default",
            next_attempt=2,
            retry_at=t + timedelta(seconds=10),
            delay_seconds=7.0,
            at=t + timedelta(seconds=3),
        ),
    ]
    projection.process([LoggedEvent(i, e) for i, e in enumerate(events, 1)], writer)
    later = [
        make_event(Job.Started, a, 5, attempt=2, worker_id="w", at=t + timedelta(seconds=11)),
        make_event(
            Job.Succeeded,
            a,
            6,
            attempt=2,
            result=None,
            output="",
            duration_ms=60.0,
            at=t + timedelta(seconds=12),
        ),
        make_event(Job.Started, b, 2, attempt=1, worker_id="w", at=t + timedelta(seconds=90)),
        make_event(Job.Cancelled, b, 3, by="alice", reason="", at=t + timedelta(seconds=91)),
    ]
    projection.process([LoggedEvent(i, e) for i, e in enumerate(later, 10)], writer)
    first = writer.minutes[("default", "default", minute_of(t))]
    second = writer.minutes[("default", "default", minute_of(t) + 1)]
    # a waited 2 s, then 1 s after its retry was due; b 60 s after its not_before.
    assert (first.wait.count, first.wait.sum_ms) == (2, 3000.0)
    assert (second.wait.count, second.wait.sum_ms) == (1, 60_000.0)
    assert (first.run.count, first.run.sum_ms) == (2, 100.0)
    assert (first.processed, second.processed) == (1, 1)
    assert writer.tracked == {}  # finished jobs are not kept
    assert writer.pruned_before == minute_of(t) + 1 - RETENTION_MINUTES


def test_dead_lettered_jobs_are_kept_to_measure_a_retry():
    writer = MemoryWriter()
    job = uuid4()
    events = [
        dispatched(job, T0),
        make_event(Job.DeadLettered, job, 2, attempts=1, reason="x", at=T0),
    ]
    QueueMetricsProjection().process([LoggedEvent(i, e) for i, e in enumerate(events, 1)], writer)
    assert writer.tracked[job] == TrackedJob("default", "default", T0)
    assert writer.minutes[("default", "default", minute_of(T0))].processed == 1


def test_p95_never_exceeds_the_longest_duration_seen():
    one = Durations()
    one.add(3547)
    # Interpolation alone would say 2000 + 3000 x 0.95 = 4850 ms for this lone value.
    assert one.timing().p95 == 3547
    assert one.timing().avg == 3547
    assert Durations().timing().p95 is None


def _waits(*values: float) -> Durations:
    durations = Durations()
    for value in values:
        durations.add(value)
    return durations


def test_slots_are_whole_aligned_steps_ending_with_the_current_minute():
    now = T0 + timedelta(minutes=7, seconds=30)  # 09:07:30
    first, last, count = slots(now, 60, 1)
    assert (last, count) == (minute_of(now), 60)
    assert first == minute_of(now) - 59
    first, last, count = slots(now, 24 * 60, 15)
    # 96 slots of 15 minutes aligned on the quarter hour, the last one 09:00-09:14.
    assert count == 96
    assert last == minute_of(T0) + 14
    assert first == minute_of(T0) + 15 - 24 * 60
    assert RETENTION_MINUTES >= 24 * 60  # the 24 h charts read minute rows still kept
    with pytest.raises(ValueError, match="multiple"):
        slots(now, 60, 7)


def test_series_averages_per_minute_and_merges_wait_histograms_per_slot():
    now = T0 + timedelta(minutes=7)
    rows = [
        SlotStats(slot=95, processed=30, wait=_waits(100, 300)),
        SlotStats(slot=95, processed=15, wait=_waits(200)),
        SlotStats(slot=0, processed=3, wait=Durations()),
        SlotStats(slot=96, processed=99, wait=_waits(5)),  # outside the window: ignored
    ]
    out = series("high", rows, now, minutes=24 * 60, step=15)
    assert (out.queue, out.minutes, out.step) == ("high", 24 * 60, 15)
    assert len(out.starts) == len(out.per_minute) == 96
    assert out.starts[-1] == minute_of(T0) * 60
    assert out.per_minute[-1] == 3.0  # 45 jobs in 15 minutes
    assert out.per_minute[0] == 0.2
    assert sum(out.per_minute[1:-1]) == 0
    assert out.wait_avg_ms[-1] == 200.0
    assert out.wait_p95_ms[-1] is not None
    assert 200 < out.wait_p95_ms[-1] <= 300
    assert out.wait_avg_ms[0] is None
    assert out.wait_p95_ms[0] is None
