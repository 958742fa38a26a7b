"""SQL table, writer and queries of the exports read model."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from application.exports.view import ExportRecord
from domain.export import ExportStatus
from infrastructure.read_models.store import SqlProjectionStore, Table, newest_first
from infrastructure.sql import Database, Session

#: The rows the retention sweep looks for (a literal: partial indexes need the same text).
COMPLETED = f"status = '{ExportStatus.COMPLETED.value}'"

EXPORTS = Table(
    "exports",
    """id TEXT PRIMARY KEY, seq BIGINT NOT NULL, tenant TEXT NOT NULL, exporter TEXT NOT NULL,
    format TEXT NOT NULL, filters TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    rows BIGINT, size BIGINT, file_name TEXT, job_id TEXT, requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    failure TEXT, expired_at TIMESTAMPTZ, retention_hours DOUBLE PRECISION,
    version INTEGER NOT NULL""",
    (("tenant_seq", "tenant, seq"),),
    (("completed", "finished_at, id", COMPLETED),),
)
EXPORT_COLUMNS = (
    "id, seq, tenant, exporter, format, filters, status, attempts, rows, size, file_name, job_id,"
    " requested_by, requested_at, started_at, finished_at, failure, expired_at, retention_hours,"
    " version"
)
_UPDATABLE = frozenset(c.strip() for c in EXPORT_COLUMNS.split(",")) - {"id", "seq", "tenant"}


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


class SqlExportsWriter:
    """ExportsWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._exports = table("exports")

    def insert_export(self, row: dict[str, Any]) -> None:
        values = {key: _plain(value) for key, value in row.items()}
        self._s.execute(
            f"INSERT INTO {self._exports} ({', '.join(values)})"
            f" VALUES ({', '.join('?' for _ in values)}) ON CONFLICT (id) DO NOTHING",
            list(values.values()),
        )

    def update_export(self, export_id: UUID, version: int, changes: dict[str, Any]) -> None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown export columns {sorted(unknown)}")
        values = {**changes, "version": version}
        sets = ", ".join(f"{column} = ?" for column in values)
        self._s.execute(
            f"UPDATE {self._exports} SET {sets} WHERE id = ? AND version < ?",
            [*(_plain(v) for v in values.values()), str(export_id), version],
        )


def exports_store(db: Database) -> SqlProjectionStore[SqlExportsWriter]:
    return SqlProjectionStore(db, "exports", [EXPORTS], SqlExportsWriter)


def _row(row: dict[str, Any]) -> ExportRecord:
    return ExportRecord(
        **{
            **row,
            "id": UUID(row["id"]),
            "filters": json.loads(row["filters"]),
            "job_id": UUID(row["job_id"]) if row["job_id"] else None,
            "rows": None if row["rows"] is None else int(row["rows"]),
            "size": None if row["size"] is None else int(row["size"]),
        }
    )


class SqlExportQueries:
    """ExportsQueries over the SQL read model; every query is indexed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_export(self, tenant: str, export_id: UUID) -> ExportRecord | None:
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ? AND tenant = ?",
                (str(export_id), tenant),
            )
        return _row(row) if row else None

    def list_exports(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[builtins.list[ExportRecord], str | None]:
        where = ["tenant = ?"]
        params: list[Any] = [tenant]
        return newest_first(
            self._db,
            f"SELECT {EXPORT_COLUMNS} FROM exports",
            where,
            params,
            limit=limit,
            cursor=cursor,
            convert=_row,
        )

    def completed_before(
        self, cutoff: datetime, *, after: tuple[datetime, UUID] | None, limit: int
    ) -> builtins.list[tuple[datetime, UUID]]:
        where = [COMPLETED, "finished_at <= ?"]
        params: list[Any] = [cutoff]
        if after is not None:
            where.append("(finished_at > ? OR (finished_at = ? AND id > ?))")
            params += [after[0], after[0], str(after[1])]
        with self._db.read() as s:
            rows = s.fetchall(
                f"SELECT finished_at, id FROM exports WHERE {' AND '.join(where)}"
                " ORDER BY finished_at, id LIMIT ?",
                [*params, limit],
            )
        return [(row["finished_at"], UUID(row["id"])) for row in rows]
