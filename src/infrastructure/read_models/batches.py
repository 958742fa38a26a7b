"""SQL tables, writer and queries of the batches read model and of the batch process's state.

The batch process keeps the same ledger as the read model in tables of its own
(`batch_process_*`): it must decide on counts as of its own log position, which the read
model, followed by another runner, is not.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

from application.views.batches import BatchJob, BatchRow, BatchTally
from domain.batch import CallbackKind
from infrastructure.read_models.store import SqlProjectionStore, Table, newest_first
from infrastructure.sql import Database, Session

_BATCH_COLUMNS_DDL = """id TEXT PRIMARY KEY, seq BIGINT NOT NULL, tenant TEXT NOT NULL,
    name TEXT NOT NULL, allow_failures BOOLEAN NOT NULL, total INTEGER NOT NULL,
    pending INTEGER NOT NULL, processed INTEGER NOT NULL, succeeded INTEGER NOT NULL,
    failed INTEGER NOT NULL, cancelled_jobs INTEGER NOT NULL, progress INTEGER NOT NULL,
    cancelled BOOLEAN NOT NULL, cancelled_at TIMESTAMPTZ, cancelled_by TEXT, cancel_reason TEXT,
    finish_recorded BOOLEAN NOT NULL, finished_at TIMESTAMPTZ, then_command TEXT,
    catch_command TEXT, finally_command TEXT, then_job_id TEXT, catch_job_id TEXT,
    finally_job_id TEXT, created_by TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL, version INTEGER NOT NULL"""
_JOB_COLUMNS_DDL = """job_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL, state TEXT NOT NULL,
    version INTEGER NOT NULL"""

BATCHES = Table("batches", _BATCH_COLUMNS_DDL, (("tenant_seq", "tenant, seq"),))
BATCH_JOBS = Table("batch_jobs", _JOB_COLUMNS_DDL, (("batch_state", "batch_id, state"),))
PROCESS_BATCHES = Table("batch_process_batches", _BATCH_COLUMNS_DDL)
PROCESS_JOBS = Table("batch_process_jobs", _JOB_COLUMNS_DDL, (("batch_state", "batch_id, state"),))

BATCH_COLUMNS = (
    "id, seq, tenant, name, allow_failures, total, pending, processed, succeeded, failed,"
    " cancelled_jobs, progress, cancelled, cancelled_at, cancelled_by, cancel_reason,"
    " finish_recorded, finished_at, then_command, catch_command, finally_command, then_job_id,"
    " catch_job_id, finally_job_id, created_by, created_at, updated_at, version"
)
_UPDATABLE = frozenset(c.strip() for c in BATCH_COLUMNS.split(",")) - {"id", "seq", "tenant"}
_JOB_IDS = ("then_job_id", "catch_job_id", "finally_job_id")
#: Rows looked up per query (SQLite allows a few thousand parameters per statement).
_CHUNK = 500


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def _chunks(items: Collection[UUID]) -> list[list[str]]:
    values = [str(item) for item in items]
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


class SqlBatchesWriter:
    """BatchesWriter on SQL tables (the read model's, or the batch process's own)."""

    def __init__(self, session: Session, batches: str, jobs: str) -> None:
        self._s = session
        self._batches = batches
        self._jobs = jobs

    @classmethod
    def read_model(cls, session: Session, table: Callable[[str], str]) -> SqlBatchesWriter:
        return cls(session, table("batches"), table("batch_jobs"))

    @classmethod
    def process_state(cls, session: Session, table: Callable[[str], str]) -> SqlBatchesWriter:
        return cls(session, table("batch_process_batches"), table("batch_process_jobs"))

    def insert_batch(self, row: dict[str, Any]) -> None:
        values = {key: _plain(value) for key, value in row.items()}
        self._s.execute(
            f"INSERT INTO {self._batches} ({', '.join(values)})"
            f" VALUES ({', '.join('?' for _ in values)}) ON CONFLICT (id) DO NOTHING",
            list(values.values()),
        )

    def tallies(self, batch_ids: Collection[UUID]) -> dict[UUID, BatchTally]:
        found: dict[UUID, BatchTally] = {}
        for chunk in _chunks(batch_ids):
            rows = self._s.fetchall(
                f"SELECT {BATCH_COLUMNS} FROM {self._batches}"
                f" WHERE id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            for row in rows:
                tally = BatchTally(
                    id=UUID(row["id"]),
                    tenant=row["tenant"],
                    allow_failures=bool(row["allow_failures"]),
                    callbacks=frozenset(
                        kind.value
                        for kind in CallbackKind
                        if row[f"{kind.value}_command"] is not None
                    ),
                    total=int(row["total"]),
                    pending=int(row["pending"]),
                    succeeded=int(row["succeeded"]),
                    failed=int(row["failed"]),
                    cancelled_jobs=int(row["cancelled_jobs"]),
                    cancelled=bool(row["cancelled"]),
                    cancelled_at=row["cancelled_at"],
                    cancelled_by=row["cancelled_by"],
                    cancel_reason=row["cancel_reason"],
                    finish_recorded=bool(row["finish_recorded"]),
                    finished_at=row["finished_at"],
                    then_job_id=_uuid(row["then_job_id"]),
                    catch_job_id=_uuid(row["catch_job_id"]),
                    finally_job_id=_uuid(row["finally_job_id"]),
                    updated_at=row["updated_at"],
                    version=int(row["version"]),
                )
                found[tally.id] = tally
        return found

    def update_batch(self, batch_id: UUID, changes: dict[str, Any]) -> None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown batch columns {sorted(unknown)}")
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._s.execute(
            f"UPDATE {self._batches} SET {sets} WHERE id = ?",
            [*(_plain(v) for v in changes.values()), str(batch_id)],
        )

    def batch_jobs(self, job_ids: Collection[UUID]) -> dict[UUID, BatchJob]:
        found: dict[UUID, BatchJob] = {}
        for chunk in _chunks(job_ids):
            rows = self._s.fetchall(
                f"SELECT job_id, batch_id, state, version FROM {self._jobs}"
                f" WHERE job_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            for row in rows:
                job = BatchJob(
                    UUID(row["job_id"]), UUID(row["batch_id"]), row["state"], int(row["version"])
                )
                found[job.job_id] = job
        return found

    def put_batch_jobs(self, jobs: Sequence[BatchJob]) -> None:
        self._s.executemany(
            f"INSERT INTO {self._jobs} (job_id, batch_id, state, version)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (job_id)"
            " DO UPDATE SET state = excluded.state, version = excluded.version",
            [(str(j.job_id), str(j.batch_id), j.state, j.version) for j in jobs],
        )

    def job_ids(self, batch_id: UUID, state: str) -> list[UUID]:
        rows = self._s.fetchall(
            f"SELECT job_id FROM {self._jobs} WHERE batch_id = ? AND state = ? ORDER BY job_id",
            (str(batch_id), state),
        )
        return [UUID(row["job_id"]) for row in rows]


def batches_store(db: Database) -> SqlProjectionStore[SqlBatchesWriter]:
    return SqlProjectionStore(db, "batches", [BATCHES, BATCH_JOBS], SqlBatchesWriter.read_model)


def batch_process_store(db: Database) -> SqlProjectionStore[SqlBatchesWriter]:
    return SqlProjectionStore(
        db, "batch_process", [PROCESS_BATCHES, PROCESS_JOBS], SqlBatchesWriter.process_state
    )


def _row(row: dict[str, Any]) -> BatchRow:
    fields = {key: value for key, value in row.items() if key != "finish_recorded"}
    return BatchRow(
        **{
            **fields,
            "id": UUID(row["id"]),
            "allow_failures": bool(row["allow_failures"]),
            "cancelled": bool(row["cancelled"]),
            **{key: _uuid(row[key]) for key in _JOB_IDS},
        }
    )


class SqlBatchQueries:
    """BatchesQueries over the SQL read model; every query is indexed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_batch(self, tenant: str, batch_id: UUID) -> BatchRow | None:
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ? AND tenant = ?",
                (str(batch_id), tenant),
            )
        return _row(row) if row else None

    def list_batches(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[builtins.list[BatchRow], str | None]:
        where = ["tenant = ?"]
        params: list[Any] = [tenant]
        return newest_first(
            self._db,
            f"SELECT {BATCH_COLUMNS} FROM batches",
            where,
            params,
            limit=limit,
            cursor=cursor,
            convert=_row,
        )

    def batch_job_ids(self, batch_id: UUID, state: str) -> builtins.list[UUID]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT job_id FROM batch_jobs WHERE batch_id = ? AND state = ? ORDER BY job_id",
                (str(batch_id), state),
            )
        return [UUID(row["job_id"]) for row in rows]
