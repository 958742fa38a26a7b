"""SQL tables, writer and queries of the queue metrics read model (one row per queue-minute)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from application.views.queue_metrics import (
    BUCKETS,
    Durations,
    MinuteKey,
    MinuteStats,
    QueueActivity,
    QueueSeries,
    SlotStats,
    TrackedJob,
    series,
    slots,
    summarize,
    window,
)
from domain.job import QUEUES
from infrastructure.read_models.store import SqlProjectionStore, Table
from infrastructure.sql import Database, Row, Session

# Histograms as columns: a row is updated by adding to each column in SQL (no read first), and
# merging 60 rows is a sum per column.
WAIT_BUCKETS = tuple(f"w{i}" for i in range(BUCKETS))
RUN_BUCKETS = tuple(f"r{i}" for i in range(BUCKETS))
COUNTERS = (
    "processed",
    "wait_count",
    "wait_sum_ms",
    "run_count",
    "run_sum_ms",
    *WAIT_BUCKETS,
    *RUN_BUCKETS,
)
#: Kept as the largest value, not added up.
MAXIMA = ("wait_max_ms", "run_max_ms")
COLUMNS = (*COUNTERS, *MAXIMA)
_MILLISECONDS = {"wait_sum_ms", "run_sum_ms", *MAXIMA}

QUEUE_METRICS = Table(
    "queue_metrics",
    "tenant TEXT NOT NULL, queue TEXT NOT NULL, minute BIGINT NOT NULL, "
    + ", ".join(
        f"{c} {'DOUBLE PRECISION' if c in _MILLISECONDS else 'BIGINT'} NOT NULL DEFAULT 0"
        for c in COLUMNS
    )
    + ", PRIMARY KEY (tenant, queue, minute)",
    (("minute", "minute"),),
)
QUEUE_METRIC_JOBS = Table(
    "queue_metric_jobs",
    """job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, queue TEXT NOT NULL,
    available_at TIMESTAMPTZ NOT NULL""",
)
#: What the charts' history sums per slot (run times are not charted).
_HISTORY_SUMS = ("processed", "wait_count", "wait_sum_ms", *WAIT_BUCKETS)
# Bounded by the projection's batch size in practice; SQLite allows 32,766 parameters.
_IN_CHUNK = 500


def _values(stats: MinuteStats) -> list[Any]:
    return [
        stats.processed,
        stats.wait.count,
        stats.wait.sum_ms,
        stats.run.count,
        stats.run.sum_ms,
        *stats.wait.buckets,
        *stats.run.buckets,
        stats.wait.max_ms,
        stats.run.max_ms,
    ]


def _stats(row: Row) -> MinuteStats:
    return MinuteStats(
        processed=int(row["processed"]),
        wait=Durations(
            int(row["wait_count"]),
            float(row["wait_sum_ms"]),
            [int(row[c]) for c in WAIT_BUCKETS],
            float(row["wait_max_ms"]),
        ),
        run=Durations(
            int(row["run_count"]),
            float(row["run_sum_ms"]),
            [int(row[c]) for c in RUN_BUCKETS],
            float(row["run_max_ms"]),
        ),
    )


class SqlQueueMetricsWriter:
    """QueueMetricsWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._metrics = table("queue_metrics")
        self._jobs = table("queue_metric_jobs")

    def jobs(self, job_ids: Collection[UUID]) -> dict[UUID, TrackedJob]:
        ids = [str(i) for i in job_ids]
        found: dict[UUID, TrackedJob] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = self._s.fetchall(
                f"SELECT job_id, tenant, queue, available_at FROM {self._jobs}"
                f" WHERE job_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            for row in rows:
                found[UUID(row["job_id"])] = TrackedJob(
                    row["tenant"], row["queue"], row["available_at"]
                )
        return found

    def save_jobs(self, changed: dict[UUID, TrackedJob], finished: Collection[UUID]) -> None:
        self._s.executemany(
            f"INSERT INTO {self._jobs} (job_id, tenant, queue, available_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id) DO UPDATE SET queue = excluded.queue,"
            " available_at = excluded.available_at",
            [(str(i), j.tenant, j.queue, j.available_at) for i, j in changed.items()],
        )
        self._s.executemany(
            f"DELETE FROM {self._jobs} WHERE job_id = ?", [(str(i),) for i in finished]
        )

    def add_minutes(self, deltas: dict[MinuteKey, MinuteStats]) -> None:
        columns = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in range(3 + len(COLUMNS)))
        larger = "GREATEST" if self._s.dialect == "postgres" else "MAX"  # SQLite's scalar max
        sets = ", ".join(
            [f"{c} = {self._metrics}.{c} + excluded.{c}" for c in COUNTERS]
            + [f"{c} = {larger}({self._metrics}.{c}, excluded.{c})" for c in MAXIMA]
        )
        self._s.executemany(
            f"INSERT INTO {self._metrics} (tenant, queue, minute, {columns}) VALUES ({marks})"
            f" ON CONFLICT (tenant, queue, minute) DO UPDATE SET {sets}",
            # Sorted: two writers never exist, but a stable order keeps lock order stable too.
            [(*key, *_values(stats)) for key, stats in sorted(deltas.items())],
        )

    def prune(self, before_minute: int) -> None:
        self._s.execute(f"DELETE FROM {self._metrics} WHERE minute < ?", (before_minute,))


def queue_metrics_store(db: Database) -> SqlProjectionStore[SqlQueueMetricsWriter]:
    return SqlProjectionStore(
        db, "queue_metrics", [QUEUE_METRICS, QUEUE_METRIC_JOBS], SqlQueueMetricsWriter
    )


class SqlQueueMetrics:
    """QueueMetricsQueries over the SQL read model."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def activity(self, tenant: str, now: datetime) -> list[QueueActivity]:
        first, last = window(now)
        activity = []
        with self._db.read() as s:
            for queue in QUEUES:
                # A range of the primary key (tenant, queue, minute): at most 60 rows.
                rows = s.fetchall(
                    f"SELECT minute, {', '.join(COLUMNS)} FROM queue_metrics"
                    " WHERE tenant = ? AND queue = ? AND minute >= ? AND minute <= ?",
                    (tenant, queue, first, last),
                )
                activity.append(
                    summarize(queue, [(int(row["minute"]), _stats(row)) for row in rows], now)
                )
        return activity

    def history(self, tenant: str, now: datetime, *, minutes: int, step: int) -> list[QueueSeries]:
        # The minute rows are kept 24 h (RETENTION_MINUTES), which is what the 24 h charts need:
        # no roll-up table. Per queue, one range of the primary key (tenant, queue, minute), at
        # most `minutes` rows, summed per slot of `step` minutes in SQL.
        first, last, _ = slots(now, minutes, step)
        sums = ", ".join(f"SUM({c}) AS {c}" for c in _HISTORY_SUMS)
        # `first` and `step` are ints computed here, written into the SQL so that both
        # databases divide integers (slot numbers) without guessing a parameter's type.
        slot = f"(minute - {int(first)}) / {int(step)}"
        out = []
        with self._db.read() as s:
            for queue in QUEUES:
                rows = s.fetchall(
                    f"SELECT {slot} AS slot, {sums}, MAX(wait_max_ms) AS wait_max_ms"
                    " FROM queue_metrics"
                    " WHERE tenant = ? AND queue = ? AND minute >= ? AND minute <= ?"
                    f" GROUP BY {slot}",
                    (tenant, queue, first, last),
                )
                out.append(
                    series(queue, [_slot(row) for row in rows], now, minutes=minutes, step=step)
                )
        return out


def _slot(row: Row) -> SlotStats:
    return SlotStats(
        slot=int(row["slot"]),
        processed=int(row["processed"]),
        wait=Durations(
            int(row["wait_count"]),
            float(row["wait_sum_ms"]),
            [int(row[c]) for c in WAIT_BUCKETS],
            float(row["wait_max_ms"]),
        ),
    )
