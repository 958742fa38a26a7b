"""SQL tables, writers and queries of the jobs, queue counts, comments and timeline read models."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.recovery import RunningJob, WaitingJob
from application.views.job_timeline import TimelineEntry
from application.views.jobs import (
    CountKey,
    FailedErrorGroup,
    FailedJobFilter,
    JobComment,
    JobFilter,
    JobOwner,
    JobRow,
    JobState,
    Page,
    QueueCounts,
    QueueStats,
)
from domain.job import QUEUES, JobStatus
from infrastructure.read_models.store import SqlProjectionStore, Table, newest_first
from infrastructure.sql import Database, Session

#: The rows of the failed list (a literal: partial indexes are only used for the same text).
FAILED_LISTED = "status = 'failed' AND NOT forgotten"

JOBS = Table(
    "jobs",
    """id TEXT PRIMARY KEY, seq BIGINT NOT NULL, tenant TEXT NOT NULL, command TEXT NOT NULL,
    command_line TEXT NOT NULL, arguments TEXT NOT NULL, options TEXT NOT NULL,
    queue TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL, timeout_seconds DOUBLE PRECISION, requested_by TEXT NOT NULL,
    batch_id TEXT, schedule_id TEXT, dispatched_at TIMESTAMPTZ NOT NULL,
    available_at TIMESTAMPTZ NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ, duration_ms DOUBLE PRECISION, worker_id TEXT, last_error_type TEXT,
    last_error_message TEXT, last_error_traceback TEXT, output TEXT, result TEXT,
    cancel_requested_by TEXT, cancelled_by TEXT, forgotten BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL, version INTEGER NOT NULL""",
    (
        ("seq", "tenant, seq"),
        ("status", "tenant, status, seq"),
        ("queue_status", "tenant, queue, status, available_at"),
        ("queue_seq", "tenant, queue, seq"),
        ("command", "tenant, command, seq"),
        ("batch", "tenant, batch_id, seq"),
        ("schedule", "tenant, schedule_id, seq"),
    ),
    # The failed list and bulk retry: only failed, not forgotten rows, so these stay small and
    # the writes of running and succeeded jobs never touch them.
    tuple(
        (name, columns, FAILED_LISTED)
        for name, columns in (
            ("failed", "tenant, seq"),
            ("failed_queue", "tenant, queue, seq"),
            ("failed_command", "tenant, command, seq"),
            ("failed_error", "tenant, last_error_type, seq"),
            ("failed_at", "tenant, failed_at"),
        )
    ),
)
QUEUE_COUNTS = Table(
    "queue_counts",
    """tenant TEXT NOT NULL, queue TEXT NOT NULL, status TEXT NOT NULL, count BIGINT NOT NULL,
    PRIMARY KEY (tenant, queue, status)""",
)
JOB_COMMENTS = Table(
    "job_comments",
    """id TEXT PRIMARY KEY, job_id TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL, position BIGINT NOT NULL""",
    (("job", "job_id, position"),),
)
JOB_TIMELINE = Table(
    "job_timeline",
    """job_id TEXT NOT NULL, position BIGINT NOT NULL, version INTEGER NOT NULL,
    event TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, actor TEXT, details TEXT NOT NULL,
    PRIMARY KEY (job_id, position)""",
)

JOB_COLUMNS = (
    "id, seq, tenant, command, command_line, arguments, options, queue, status, attempts,"
    " max_attempts, timeout_seconds, requested_by, batch_id, schedule_id, dispatched_at,"
    " available_at, started_at, finished_at, failed_at, duration_ms, worker_id,"
    " last_error_type, last_error_message, last_error_traceback, output, result,"
    " cancel_requested_by, cancelled_by, forgotten, updated_at, version"
)
_UPDATABLE = frozenset(c.strip() for c in JOB_COLUMNS.split(","))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return repr(value)


class SqlJobsWriter:
    """JobsWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._jobs = table("jobs")
        self._counts = table("queue_counts")
        self._comments = table("job_comments")

    def job_state(self, job_id: UUID) -> JobState | None:
        row = self._s.fetchone(
            f"SELECT tenant, queue, status FROM {self._jobs} WHERE id = ?", (str(job_id),)
        )
        return JobState(row["tenant"], row["queue"], row["status"]) if row else None

    def insert_job(self, row: dict[str, Any]) -> None:
        values = {**row, "id": str(row["id"])}
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._s.execute(
            f"INSERT INTO {self._jobs} ({columns}) VALUES ({marks})", list(values.values())
        )

    def update_job(self, job_id: UUID, changes: dict[str, Any]) -> None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown job columns {sorted(unknown)}")
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._s.execute(
            f"UPDATE {self._jobs} SET {sets} WHERE id = ?", [*changes.values(), str(job_id)]
        )

    def add_counts(self, deltas: dict[CountKey, int]) -> None:
        self._s.executemany(
            f"INSERT INTO {self._counts} (tenant, queue, status, count) VALUES (?, ?, ?, ?)"
            f" ON CONFLICT (tenant, queue, status)"
            f" DO UPDATE SET count = {self._counts}.count + excluded.count",
            [(*key, delta) for key, delta in sorted(deltas.items())],
        )

    def insert_comment(self, row: dict[str, Any]) -> None:
        self._s.execute(
            f"INSERT INTO {self._comments} (id, job_id, author, text, at, position)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(row["id"]),
                str(row["job_id"]),
                row["author"],
                row["text"],
                row["at"],
                row["position"],
            ),
        )


class SqlTimelineWriter:
    """TimelineWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._table = table("job_timeline")

    def insert_entries(self, entries: Sequence[TimelineEntry]) -> None:
        self._s.executemany(
            f"INSERT INTO {self._table} (job_id, position, version, event, at, actor, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    str(e.job_id),
                    e.position,
                    e.version,
                    e.event,
                    e.at,
                    e.actor,
                    json.dumps(e.details, default=_json_default),
                )
                for e in entries
            ],
        )


def jobs_store(db: Database) -> SqlProjectionStore[SqlJobsWriter]:
    return SqlProjectionStore(db, "jobs", [JOBS, QUEUE_COUNTS, JOB_COMMENTS], SqlJobsWriter)


def timeline_store(db: Database) -> SqlProjectionStore[SqlTimelineWriter]:
    return SqlProjectionStore(db, "job_timeline", [JOB_TIMELINE], SqlTimelineWriter)


def _like_escaped(text: str) -> str:
    """`text` as a LIKE pattern that matches it literally (with `ESCAPE '!'`)."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _moment(value: Any) -> datetime | None:
    """A MAX() of a time column: SQLite may give it back as text."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row_to_job(row: dict[str, Any]) -> JobRow:
    return JobRow(
        **{
            **row,
            "id": UUID(row["id"]),
            "arguments": json.loads(row["arguments"]),
            "options": json.loads(row["options"]),
            "result": json.loads(row["result"]) if row["result"] is not None else None,
            "forgotten": bool(row["forgotten"]),  # SQLite gives 0 or 1
        }
    )


class SqlJobsQueries:
    """JobsQueries and TimelineQueries over the SQL read models; every query is indexed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, tenant: str, job_id: UUID) -> JobRow | None:
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND tenant = ?",
                (str(job_id), tenant),
            )
        return _row_to_job(row) if row else None

    def owners(self, job_ids: Collection[UUID]) -> dict[UUID, JobOwner]:
        ids = [str(job_id) for job_id in job_ids]
        found: dict[UUID, JobOwner] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            with self._db.read() as s:
                rows = s.fetchall(
                    f"SELECT id, tenant, queue, command FROM jobs WHERE id IN ({marks})",
                    chunk,
                )
            for row in rows:
                found[UUID(str(row["id"]))] = JobOwner(row["tenant"], row["queue"], row["command"])
        return found

    def list(self, flt: JobFilter, *, limit: int, cursor: str | None, now: datetime) -> Page:
        where = ["tenant = ?"]
        params: list[Any] = [flt.tenant]
        if flt.status == "delayed":
            where += ["status = ?", "available_at > ?"]
            params += [JobStatus.WAITING.value, now]
        elif flt.status == "ready":
            where += ["status = ?", "available_at <= ?"]
            params += [JobStatus.WAITING.value, now]
        elif flt.status is not None:
            where.append("status = ?")
            params.append(flt.status)
        for column in ("queue", "command", "batch_id", "schedule_id"):
            value = getattr(flt, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        # The time range and the search narrow the rows the keyset walk meets; they choose no
        # index themselves. The walk goes down one of the indexes above (tenant, seq; or the
        # status, queue, command, batch or schedule one) newest first and stops after
        # `limit + 1` matches, so a page costs the rows between its first and last match.
        if flt.dispatched_from is not None:
            where.append("dispatched_at >= ?")
            params.append(flt.dispatched_from)
        if flt.dispatched_to is not None:
            where.append("dispatched_at < ?")
            params.append(flt.dispatched_to)
        if flt.search is not None:
            # A case-insensitive substring of the command line, within the tenant: `%` and `_`
            # are matched as themselves.
            where.append("LOWER(command_line) LIKE ? ESCAPE '!'")
            params.append(f"%{_like_escaped(flt.search.lower())}%")
        return self._page(where, params, limit=limit, cursor=cursor, oldest_first=flt.oldest_first)

    @staticmethod
    def _failed_where(flt: FailedJobFilter) -> tuple[builtins.list[str], builtins.list[Any]]:
        where = ["tenant = ?", FAILED_LISTED]
        params: builtins.list[Any] = [flt.tenant]
        for column, value in (
            ("queue", flt.queue),
            ("command", flt.command),
            ("last_error_type", flt.error_type),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if flt.failed_from is not None:
            where.append("failed_at >= ?")
            params.append(flt.failed_from)
        if flt.failed_to is not None:
            where.append("failed_at < ?")
            params.append(flt.failed_to)
        return where, params

    def failed(self, flt: FailedJobFilter, *, limit: int, cursor: str | None) -> Page:
        where, params = self._failed_where(flt)
        return self._page(where, params, limit=limit, cursor=cursor)

    def _page(
        self,
        where: builtins.list[str],
        params: builtins.list[Any],
        *,
        limit: int,
        cursor: str | None,
        oldest_first: bool = False,
    ) -> Page:
        items, next_cursor = newest_first(
            self._db,
            f"SELECT {JOB_COLUMNS} FROM jobs",
            where,
            params,
            limit=limit,
            cursor=cursor,
            convert=_row_to_job,
            oldest_first=oldest_first,
        )
        return Page(items=items, next_cursor=next_cursor)

    def failed_ids(
        self, flt: FailedJobFilter, *, after_seq: int, limit: int
    ) -> builtins.list[tuple[int, UUID]]:
        where, params = self._failed_where(flt)
        where.append("seq > ?")
        sql = f"SELECT seq, id FROM jobs WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        with self._db.read() as s:
            rows = s.fetchall(sql, [*params, after_seq, limit])
        return [(int(row["seq"]), UUID(row["id"])) for row in rows]

    def count_failed(self, flt: FailedJobFilter) -> int:
        where, params = self._failed_where(flt)
        with self._db.read() as s:
            row = s.fetchone(f"SELECT COUNT(*) AS n FROM jobs WHERE {' AND '.join(where)}", params)
        return int(row["n"]) if row else 0

    def failed_groups(self, flt: FailedJobFilter, *, limit: int) -> builtins.list[FailedErrorGroup]:
        # Only the failed, not forgotten rows (the partial indexes of the failed list), never
        # the whole history; at most `limit` groups come back.
        where, params = self._failed_where(flt)
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT last_error_type, last_error_message, COUNT(*) AS n,"
                " MAX(failed_at) AS newest FROM jobs"
                f" WHERE {' AND '.join(where)}"
                " GROUP BY last_error_type, last_error_message"
                " ORDER BY newest DESC, n DESC, last_error_type, last_error_message LIMIT ?",
                [*params, limit],
            )
        return [
            FailedErrorGroup(
                error_type=row["last_error_type"],
                message=row["last_error_message"],
                count=int(row["n"]),
                newest_failed_at=_moment(row["newest"]),
            )
            for row in rows
        ]

    def waiting_in_order(
        self, tenant: str, queue: str, *, delayed: bool, now: datetime, limit: int
    ) -> builtins.list[JobRow]:
        # A range of the (tenant, queue, status, available_at) index, in its order.
        due = "available_at > ?" if delayed else "available_at <= ?"
        with self._db.read() as s:
            rows = s.fetchall(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = ? AND queue = ? AND status = ?"
                f" AND {due} ORDER BY available_at, seq LIMIT ?",
                (tenant, queue, JobStatus.WAITING.value, now, limit),
            )
        return [_row_to_job(row) for row in rows]

    def comments(self, job_id: UUID) -> builtins.list[JobComment]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT id, author, text, at FROM job_comments WHERE job_id = ? ORDER BY position",
                (str(job_id),),
            )
        return [JobComment(UUID(r["id"]), r["author"], r["text"], r["at"]) for r in rows]

    def queue_stats(self, tenant: str, now: datetime) -> QueueStats:
        with self._db.read() as s:
            counts = s.fetchall(
                "SELECT queue, status, count FROM queue_counts WHERE tenant = ?", (tenant,)
            )
            # One range scan per queue on (tenant, queue, status, available_at): the cost is
            # the number of delayed jobs, never the number of jobs ever run.
            delayed_rows = [
                s.fetchone(
                    "SELECT ? AS queue, COUNT(*) AS n FROM jobs WHERE tenant = ? AND queue = ?"
                    " AND status = ? AND available_at > ?",
                    (queue, tenant, queue, JobStatus.WAITING.value, now),
                )
                or {"queue": queue, "n": 0}
                for queue in QUEUES
            ]
        by_queue: dict[str, dict[str, int]] = {q: {s.value: 0 for s in JobStatus} for q in QUEUES}
        for row in counts:
            by_queue.setdefault(row["queue"], {s.value: 0 for s in JobStatus})[row["status"]] = int(
                row["count"]
            )
        delayed = {row["queue"]: int(row["n"]) for row in delayed_rows}
        queues = [
            QueueCounts(
                queue=queue,
                waiting=c["waiting"] - delayed.get(queue, 0),
                delayed=delayed.get(queue, 0),
                running=c["running"],
                succeeded=c["succeeded"],
                failed=c["failed"],
                cancelled=c["cancelled"],
            )
            for queue, c in by_queue.items()
        ]
        totals = {
            field: sum(getattr(q, field) for q in queues)
            for field in ("waiting", "delayed", "running", "succeeded", "failed", "cancelled")
        }
        return QueueStats(queues=queues, totals=totals)

    def timeline(self, job_id: UUID) -> builtins.list[TimelineEntry]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT job_id, position, version, event, at, actor, details FROM job_timeline"
                " WHERE job_id = ? ORDER BY position",
                (str(job_id),),
            )
        return [
            TimelineEntry(
                job_id=UUID(row["job_id"]),
                position=int(row["position"]),
                version=int(row["version"]),
                event=row["event"],
                at=row["at"],
                actor=row["actor"],
                details=json.loads(row["details"]),
            )
            for row in rows
        ]

    def tracking(self) -> dict[str, int]:
        with self._db.read() as s:
            rows = s.fetchall("SELECT name, position FROM projection_tracking")
        return {row["name"]: int(row["position"]) for row in rows}

    # -- RecoveryQueries -------------------------------------------------------------------

    def tenant_queues(self, status: JobStatus) -> set[tuple[str, str]]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT tenant, queue FROM queue_counts WHERE status = ? AND count > 0",
                (status.value,),
            )
        return {(row["tenant"], row["queue"]) for row in rows}

    def running_jobs(self, tenant: str, *, limit: int) -> builtins.list[RunningJob]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT id, worker_id, started_at, attempts FROM jobs"
                " WHERE tenant = ? AND status = ? ORDER BY seq LIMIT ?",
                (tenant, JobStatus.RUNNING.value, limit),
            )
        return [
            RunningJob(
                id=UUID(row["id"]),
                worker_id=row["worker_id"],
                started_at=row["started_at"],
                attempts=int(row["attempts"]),
            )
            for row in rows
        ]

    def waiting_jobs(
        self,
        tenant: str,
        queue: str,
        *,
        due_before: datetime | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> builtins.list[WaitingJob]:
        where = ["tenant = ?", "queue = ?", "status = ?"]
        params: builtins.list[Any] = [tenant, queue, JobStatus.WAITING.value]
        if due_before is not None:
            where += ["available_at < ?", "updated_at < ?"]
            params += [due_before, due_before]
        if after is not None:
            where.append("(available_at > ? OR (available_at = ? AND id > ?))")
            params += [after[0], after[0], str(after[1])]
        with self._db.read() as s:
            rows = s.fetchall(
                f"SELECT id, queue, available_at FROM jobs WHERE {' AND '.join(where)}"
                " ORDER BY available_at, id LIMIT ?",
                [*params, limit],
            )
        return [
            WaitingJob(id=UUID(row["id"]), queue=row["queue"], available_at=row["available_at"])
            for row in rows
        ]
