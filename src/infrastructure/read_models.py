"""Read-model tables and projection stores on Postgres or SQLite (one SQL text for both).

Each projection owns its tables and one row in `projection_tracking`. Rebuilding writes into
`<table>__rebuild` copies, then swaps them in, in one transaction that holds the live
tracking row, so readers see the old tables until the new ones replace them.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import structlog

from application.ports import WorkerBeat
from application.projections import ProjectionStore, Tracked
from application.recovery import RunningJob, WaitingJob
from application.views.job_timeline import TimelineEntry
from application.views.jobs import (
    CountKey,
    FailedJobFilter,
    JobComment,
    JobFilter,
    JobRow,
    JobState,
    Page,
    QueueCounts,
    QueueStats,
)
from domain.job import QUEUES, JobStatus
from domain.shared import ValidationError
from infrastructure.sql import Database, Session

W = TypeVar("W")
log = structlog.get_logger(__name__)

SHADOW = "__rebuild"
SCHEMAS_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_schemas ("
    " name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
)
TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
)


@dataclass(frozen=True)
class Table:
    """A read-model table: its logical name, columns and indexes (name suffix → columns).

    `partial_indexes` (name suffix, columns, predicate) hold only the rows a query needs; a
    query uses one only if its WHERE repeats the predicate word for word, as SQL text.
    """

    name: str
    columns: str
    indexes: tuple[tuple[str, str], ...] = ()
    partial_indexes: tuple[tuple[str, str, str], ...] = ()

    def index_names(self) -> list[str]:
        return [name for name, *_ in (*self.indexes, *self.partial_indexes)]


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
    " cancel_requested_by, cancelled_by, forgotten, updated_at"
)
_UPDATABLE = frozenset(c.strip() for c in JOB_COLUMNS.split(",")) | {"version"}


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return repr(value)


def create_tracking(db: Database) -> None:
    with db.transaction() as s:
        s.execute(TRACKING_DDL)


def _create_tables(session: Session, tables: Sequence[Table], suffix: str) -> None:
    for table in tables:
        name = table.name + suffix
        session.execute(f"CREATE TABLE IF NOT EXISTS {name} ({table.columns})")
        for index, columns in table.indexes:
            session.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{index} ON {name} ({columns})")
        for index, columns, predicate in table.partial_indexes:
            session.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{name}_{index} ON {name} ({columns})"
                f" WHERE {predicate}"
            )


def _tracking_position(session: Session, name: str, *, lock: bool) -> int:
    clause = session.lock_row_clause() if lock else ""
    row = session.fetchone(
        f"SELECT position FROM projection_tracking WHERE name = ? {clause}", (name,)
    )
    if row is None and not lock:
        return 0  # readers never write: a missing row means nothing was projected yet
    if row is None:
        session.execute(
            "INSERT INTO projection_tracking (name, position, updated_at) VALUES (?, 0, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, datetime.now(UTC)),
        )
        if lock:
            row = session.fetchone(
                f"SELECT position FROM projection_tracking WHERE name = ? {clause}", (name,)
            )
        return int(row["position"]) if row else 0
    return int(row["position"])


class _Tracked(Generic[W]):
    def __init__(self, session: Session, name: str, writer: W) -> None:
        self._session = session
        self._name = name
        self._writer = writer
        self._position = _tracking_position(session, name, lock=True)

    @property
    def position(self) -> int:
        return self._position

    @property
    def writer(self) -> W:
        return self._writer

    def advance(self, position: int) -> None:
        if position < self._position:
            raise ValueError(f"projection {self._name} cannot move back to {position}")
        self._session.execute(
            "UPDATE projection_tracking SET position = ?, updated_at = ? WHERE name = ?",
            (position, datetime.now(UTC), self._name),
        )
        self._position = position


class SqlProjectionStore(Generic[W]):
    """A projection's tables and tracking row; `make_writer` binds a writer to a session."""

    def __init__(
        self,
        db: Database,
        name: str,
        tables: Sequence[Table],
        make_writer: Callable[[Session, Callable[[str], str]], W],
        *,
        suffix: str = "",
    ) -> None:
        self._db = db
        self._name = name
        self._tables = tuple(tables)
        self._make_writer = make_writer
        self._suffix = suffix

    @property
    def name(self) -> str:
        return self._name + self._suffix

    def _table(self, logical: str) -> str:
        return logical + self._suffix

    def create(self) -> None:
        """Create the tables; if their definition changed since they were created, drop them
        and reset the tracking position, so the projector rebuilds them from the log."""
        fingerprint = hashlib.sha256(repr(self._tables).encode()).hexdigest()
        with self._db.transaction() as s:
            s.execute(TRACKING_DDL)
            s.execute(SCHEMAS_DDL)
            row = s.fetchone(
                "SELECT fingerprint FROM projection_schemas WHERE name = ?", (self.name,)
            )
            if row is not None and row["fingerprint"] != fingerprint:
                log.warning("read model definition changed, rebuilding it", projection=self.name)
                for table in self._tables:
                    s.execute(f"DROP TABLE IF EXISTS {table.name}{self._suffix}")
                s.execute("DELETE FROM projection_tracking WHERE name = ?", (self.name,))
            _create_tables(s, self._tables, self._suffix)
            s.execute(
                "INSERT INTO projection_schemas (name, fingerprint) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint",
                (self.name, fingerprint),
            )

    def _tracked(self, session: Session) -> _Tracked[W]:
        return _Tracked(session, self.name, self._make_writer(session, self._table))

    @contextmanager
    def transaction(self) -> Iterator[Tracked[W]]:
        with self._db.transaction() as s:
            yield self._tracked(s)

    def position(self) -> int:
        with self._db.read() as s:
            return _tracking_position(s, self.name, lock=False)

    def shadow(self) -> SqlProjectionStore[W]:
        shadow = SqlProjectionStore(
            self._db, self._name, self._tables, self._make_writer, suffix=SHADOW
        )
        with self._db.transaction() as s:
            for table in self._tables:
                s.execute(f"DROP TABLE IF EXISTS {table.name}{SHADOW}")
            s.execute("DELETE FROM projection_tracking WHERE name = ?", (shadow.name,))
            _create_tables(s, self._tables, SHADOW)
        return shadow

    def replace_with(
        self, shadow: ProjectionStore[W], finish: Callable[[Tracked[W]], None]
    ) -> None:
        if not isinstance(shadow, SqlProjectionStore) or shadow._suffix != SHADOW:  # noqa: SLF001
            raise TypeError("replace_with takes this store's own shadow")
        with self._db.transaction() as s:
            # Holding the live tracking row stops the live runner until the swap commits.
            _tracking_position(s, self.name, lock=True)
            tracked = shadow._tracked(s)  # noqa: SLF001
            finish(tracked)
            for table in self._tables:
                s.execute(f"DROP TABLE IF EXISTS {table.name}")
                if s.dialect == "sqlite":
                    for index in table.index_names():
                        s.execute(f"DROP INDEX IF EXISTS ix_{table.name}{SHADOW}_{index}")
                s.execute(f"ALTER TABLE {table.name}{SHADOW} RENAME TO {table.name}")
                if s.dialect == "postgres":
                    self._rename_postgres_indexes(s, table.name)
                else:
                    _create_tables(s, [table], "")
            s.execute(
                "UPDATE projection_tracking SET position = ?, updated_at = ? WHERE name = ?",
                (tracked.position, datetime.now(UTC), self.name),
            )
            s.execute("DELETE FROM projection_tracking WHERE name = ?", (shadow.name,))

    @staticmethod
    def _rename_postgres_indexes(s: Session, table: str) -> None:
        # Index names are global in a schema: give the shadow's indexes (primary key
        # included) their live names, or the next rebuild could not create its own.
        rows = s.fetchall(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = ?",
            (table,),
        )
        for row in rows:
            old = row["indexname"]
            if SHADOW in old:
                s.execute(f'ALTER INDEX "{old}" RENAME TO "{old.replace(SHADOW, "")}"')


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


class TrackingOnlyStore(Generic[W]):
    """A projection store with no tables, for reactions such as the outbox relay."""

    def __init__(self, db: Database, name: str, writer: W) -> None:
        self._db = db
        self._name = name
        self._writer = writer

    @property
    def name(self) -> str:
        return self._name

    def create(self) -> None:
        create_tracking(self._db)

    @contextmanager
    def transaction(self) -> Iterator[Tracked[W]]:
        with self._db.transaction() as s:
            yield _Tracked(s, self._name, self._writer)

    def position(self) -> int:
        with self._db.read() as s:
            return _tracking_position(s, self._name, lock=False)

    def shadow(self) -> ProjectionStore[W]:
        raise ValidationError(f"{self._name} has no read model to rebuild")

    def replace_with(
        self,
        shadow: ProjectionStore[W],  # noqa: ARG002 - nothing to replace
        finish: Callable[[Tracked[W]], None],  # noqa: ARG002
    ) -> None:
        raise ValidationError(f"{self._name} has no read model to rebuild")


def jobs_store(db: Database) -> SqlProjectionStore[SqlJobsWriter]:
    return SqlProjectionStore(db, "jobs", [JOBS, QUEUE_COUNTS, JOB_COMMENTS], SqlJobsWriter)


def timeline_store(db: Database) -> SqlProjectionStore[SqlTimelineWriter]:
    return SqlProjectionStore(db, "job_timeline", [JOB_TIMELINE], SqlTimelineWriter)


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


def encode_cursor(seq: int) -> str:
    return f"s{seq}"


def decode_cursor(cursor: str) -> int:
    digits = cursor[1:]
    # isascii: str.isdigit() also holds for digits such as '²', which int() refuses.
    number = digits.isascii() and digits.isdigit()
    if not cursor.startswith("s") or not number or len(digits) > 18:
        raise ValidationError(f"invalid cursor {cursor!r}", field="cursor")
    return int(digits)


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
        if cursor is not None:
            where.append("seq < ?")
            params.append(decode_cursor(cursor))
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        )
        with self._db.read() as s:
            rows = s.fetchall(sql, [*params, limit + 1])
        items = [_row_to_job(row) for row in rows[:limit]]
        next_cursor = encode_cursor(items[-1].seq) if len(rows) > limit and items else None
        return Page(items=items, next_cursor=next_cursor)

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
        if cursor is not None:
            where.append("seq < ?")
            params.append(decode_cursor(cursor))
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        )
        with self._db.read() as s:
            rows = s.fetchall(sql, [*params, limit + 1])
        items = [_row_to_job(row) for row in rows[:limit]]
        next_cursor = encode_cursor(items[-1].seq) if len(rows) > limit and items else None
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


WORKER_HEARTBEATS_DDL = (
    "CREATE TABLE IF NOT EXISTS worker_beats ("
    " worker_id TEXT PRIMARY KEY, last_seen TIMESTAMPTZ NOT NULL, running TEXT NOT NULL,"
    " pauses_seen BIGINT NOT NULL)"
)


class SqlWorkerHeartbeats:
    """WorkerHeartbeats in the read-model database: one row per live worker process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self) -> None:
        with self._db.transaction() as s:
            # The table before the beats named the running jobs.
            s.execute("DROP TABLE IF EXISTS worker_heartbeats")
            s.execute(WORKER_HEARTBEATS_DDL)

    def beat(
        self,
        worker_id: str,
        at: datetime,
        running: frozenset[UUID] = frozenset(),
        pauses_seen: int = 0,
    ) -> None:
        with self._db.transaction() as s:
            s.execute(
                "INSERT INTO worker_beats (worker_id, last_seen, running, pauses_seen)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE"
                " SET last_seen = excluded.last_seen, running = excluded.running,"
                " pauses_seen = excluded.pauses_seen",
                (
                    worker_id,
                    at,
                    json.dumps(sorted(str(job_id) for job_id in running)),
                    pauses_seen,
                ),
            )

    @staticmethod
    def _beat(row: dict[str, Any]) -> WorkerBeat:
        return WorkerBeat(
            worker_id=row["worker_id"],
            last_seen=row["last_seen"],
            running=frozenset(UUID(job_id) for job_id in json.loads(row["running"])),
            pauses_seen=int(row["pauses_seen"]),
        )

    def latest(self, worker_id: str) -> WorkerBeat | None:
        with self._db.read() as s:
            row = s.fetchone(
                "SELECT worker_id, last_seen, running, pauses_seen FROM worker_beats"
                " WHERE worker_id = ?",
                (worker_id,),
            )
        return self._beat(row) if row else None

    def live(self, since: datetime) -> builtins.list[WorkerBeat]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT worker_id, last_seen, running, pauses_seen FROM worker_beats"
                " WHERE last_seen >= ? ORDER BY worker_id",
                (since,),
            )
        return [self._beat(row) for row in rows]

    def forget(self, worker_id: str) -> None:
        with self._db.transaction() as s:
            s.execute("DELETE FROM worker_beats WHERE worker_id = ?", (worker_id,))
