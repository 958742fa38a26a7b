"""SQL tables, writers and queries of the schedules and schedule-runs read models."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from application.views.schedules import Comment, RunRow, ScheduleRow
from infrastructure.read_models.store import (
    SqlProjectionStore,
    Table,
    newest_first,
    tracking_position,
)
from infrastructure.sql import Database, Session

SCHEDULES = Table(
    "schedules",
    """id TEXT PRIMARY KEY, seq BIGINT NOT NULL, tenant TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL, command TEXT NOT NULL, command_line TEXT NOT NULL,
    arguments TEXT NOT NULL, options TEXT NOT NULL, frequency TEXT NOT NULL,
    timezone TEXT NOT NULL, queue TEXT NOT NULL, max_attempts INTEGER NOT NULL,
    timeout_seconds DOUBLE PRECISION, without_overlapping BOOLEAN NOT NULL,
    missed_runs TEXT NOT NULL, active BOOLEAN NOT NULL, deleted BOOLEAN NOT NULL DEFAULT FALSE,
    paused_at TIMESTAMPTZ, created_by TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL, last_due_at TIMESTAMPTZ, last_job_id TEXT,
    last_run_at TIMESTAMPTZ, version INTEGER NOT NULL""",
    (
        ("tenant_seq", "tenant, deleted, seq"),
        ("tenant_name", "tenant, name"),
        ("active_seq", "active, seq"),
    ),
    # 1: `version` follows comments too (rows of commented schedules were behind).
    revision=1,
)
SCHEDULE_COMMENTS = Table(
    "schedule_comments",
    """id TEXT PRIMARY KEY, schedule_id TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL, position BIGINT NOT NULL""",
    (("schedule", "schedule_id, position"),),
)
SCHEDULE_RUNS = Table(
    "schedule_runs",
    """id TEXT PRIMARY KEY, seq BIGINT NOT NULL, schedule_id TEXT NOT NULL, tenant TEXT NOT NULL,
    due_at TIMESTAMPTZ NOT NULL, triggered_at TIMESTAMPTZ, manual BOOLEAN NOT NULL,
    job_id TEXT, status TEXT NOT NULL, attempts INTEGER, started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ, duration_ms DOUBLE PRECISION, outcome TEXT, error TEXT,
    output TEXT, skip_reason TEXT, skip_detail TEXT, skip_count INTEGER NOT NULL,
    dst TEXT, triggered_by TEXT, late_ms DOUBLE PRECISION""",
    # tenant_seq: the schedule-runs export of a whole tenant reads it a page at a time.
    (("schedule_seq", "schedule_id, seq"), ("job", "job_id"), ("tenant_seq", "tenant, seq")),
)

SCHEDULE_COLUMNS = (
    "id, seq, tenant, name, description, command, command_line, arguments, options, frequency,"
    " timezone, queue, max_attempts, timeout_seconds, without_overlapping, missed_runs, active,"
    " deleted, paused_at, created_by, created_at, updated_at, last_due_at, last_job_id,"
    " last_run_at, version"
)
_SCHEDULE_UPDATABLE = frozenset(c.strip() for c in SCHEDULE_COLUMNS.split(","))
RUN_COLUMNS = (
    "id, seq, schedule_id, due_at, triggered_at, late_ms, manual, job_id, status, attempts,"
    " started_at, finished_at, duration_ms, outcome, error, output, skip_reason, skip_detail,"
    " skip_count, dst, triggered_by"
)
_RUN_UPDATABLE = frozenset(c.strip() for c in RUN_COLUMNS.split(","))


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value


def _insert(session: Session, table: str, row: dict[str, Any]) -> None:
    values = {key: _plain(value) for key, value in row.items()}
    session.execute(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
        list(values.values()),
    )


def _update(
    session: Session,
    table: str,
    *,
    allowed: frozenset[str],
    changes: dict[str, Any],
    where: str,
    params: list[Any],
) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)} for {table}")
    sets = ", ".join(f"{column} = ?" for column in changes)
    session.execute(
        f"UPDATE {table} SET {sets} WHERE {where}",
        [*(_plain(v) for v in changes.values()), *params],
    )


class SqlSchedulesWriter:
    """SchedulesWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._schedules = table("schedules")
        self._comments = table("schedule_comments")

    def insert_schedule(self, row: dict[str, Any]) -> None:
        _insert(self._s, self._schedules, row)

    def update_schedule(self, schedule_id: UUID, changes: dict[str, Any]) -> None:
        _update(
            self._s,
            self._schedules,
            allowed=_SCHEDULE_UPDATABLE,
            changes=changes,
            where="id = ?",
            params=[str(schedule_id)],
        )

    def record_due(self, schedule_id: UUID, due_at: datetime, changes: dict[str, Any]) -> None:
        _update(
            self._s,
            self._schedules,
            allowed=_SCHEDULE_UPDATABLE,
            changes={**changes, "last_due_at": due_at},
            where="id = ? AND (last_due_at IS NULL OR last_due_at < ?)",
            params=[str(schedule_id), due_at],
        )

    def insert_comment(self, row: dict[str, Any]) -> None:
        _insert(self._s, self._comments, row)


class SqlRunsWriter:
    """RunsWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._runs = table("schedule_runs")

    def insert_run(self, row: dict[str, Any]) -> None:
        _insert(self._s, self._runs, row)

    def update_run_of_job(self, job_id: UUID, changes: dict[str, Any]) -> None:
        # Most job events are of jobs no schedule started: the indexed lookup finds nothing.
        _update(
            self._s,
            self._runs,
            allowed=_RUN_UPDATABLE,
            changes=changes,
            where="job_id = ?",
            params=[str(job_id)],
        )


def schedules_store(db: Database) -> SqlProjectionStore[SqlSchedulesWriter]:
    return SqlProjectionStore(db, "schedules", [SCHEDULES, SCHEDULE_COMMENTS], SqlSchedulesWriter)


def runs_store(db: Database) -> SqlProjectionStore[SqlRunsWriter]:
    return SqlProjectionStore(db, "schedule_runs", [SCHEDULE_RUNS], SqlRunsWriter)


def _schedule(row: dict[str, Any]) -> ScheduleRow:
    return ScheduleRow(
        **{
            **row,
            "id": UUID(row["id"]),
            "arguments": json.loads(row["arguments"]),
            "options": json.loads(row["options"]),
            "frequency": json.loads(row["frequency"]),
            "without_overlapping": bool(row["without_overlapping"]),
            "active": bool(row["active"]),
            "deleted": bool(row["deleted"]),
            "last_job_id": UUID(row["last_job_id"]) if row["last_job_id"] else None,
        }
    )


def _run(row: dict[str, Any]) -> RunRow:
    return RunRow(
        **{
            **row,
            "id": UUID(row["id"]),
            "schedule_id": UUID(row["schedule_id"]),
            "job_id": UUID(row["job_id"]) if row["job_id"] else None,
            "manual": bool(row["manual"]),
        }
    )


class SqlScheduleQueries:
    """SchedulesQueries and RunsQueries over the SQL read models."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_schedule(self, tenant: str, schedule_id: UUID) -> ScheduleRow | None:
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ? AND tenant = ?"
                " AND deleted = ?",
                (str(schedule_id), tenant, False),
            )
        return _schedule(row) if row else None

    def list_schedules(
        self,
        tenant: str,
        *,
        active: bool | None,
        limit: int,
        cursor: str | None,
        name: str | None = None,
    ) -> tuple[builtins.list[ScheduleRow], str | None]:
        where = ["tenant = ?", "deleted = ?"]
        params: list[Any] = [tenant, False]
        if active is not None:
            where.append("active = ?")
            params.append(active)
        if name:
            # A substring of the name, any case; `%`, `_` and `!` typed are matched as such.
            # A tenant's schedules are few next to its jobs: the walk along tenant_seq is short.
            escaped = name.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            where.append("LOWER(name) LIKE ? ESCAPE '!'")
            params.append(f"%{escaped}%")
        return newest_first(
            self._db,
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules",
            where,
            params,
            limit=limit,
            cursor=cursor,
            convert=_schedule,
        )

    def comments(self, schedule_id: UUID) -> builtins.list[Comment]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT id, author, text, at FROM schedule_comments WHERE schedule_id = ?"
                " ORDER BY position",
                (str(schedule_id),),
            )
        return [Comment(UUID(r["id"]), r["author"], r["text"], r["at"]) for r in rows]

    def active_schedules(self) -> tuple[int, Iterator[ScheduleRow]]:
        """Every active schedule, read in pages of 2,000 rows within one transaction (one
        snapshot) so that 100,000 rows are never all in memory at once."""
        session = self._db.read()
        s = session.__enter__()
        position = tracking_position(s, "schedules", lock=False)

        def rows() -> Iterator[ScheduleRow]:
            try:
                after = -1
                while True:
                    page = s.fetchall(
                        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE active = ? AND seq > ?"
                        " ORDER BY seq LIMIT 2000",
                        (True, after),
                    )
                    for row in page:
                        yield _schedule(row)
                    if len(page) < 2000:
                        return
                    after = page[-1]["seq"]
            finally:
                session.__exit__(None, None, None)

        return position, rows()

    def runs(
        self, tenant: str, schedule_id: UUID, *, limit: int, cursor: str | None
    ) -> tuple[builtins.list[RunRow], str | None]:
        where = ["schedule_id = ?", "tenant = ?"]
        params: list[Any] = [str(schedule_id), tenant]
        return newest_first(
            self._db,
            f"SELECT {RUN_COLUMNS} FROM schedule_runs",
            where,
            params,
            limit=limit,
            cursor=cursor,
            convert=_run,
        )
