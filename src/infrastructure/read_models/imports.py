"""SQL tables, writer and queries of the imports read model (imports and failed rows)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from application.imports.view import (
    FailedImportRow,
    ImportFilter,
    ImportRow,
)
from domain.data_import import ImportStatus
from infrastructure.read_models.store import SqlProjectionStore, Table, newest_first
from infrastructure.sql import Database, Session

IMPORTS = Table(
    "imports",
    """id TEXT PRIMARY KEY, seq BIGINT NOT NULL, tenant TEXT NOT NULL, importer TEXT NOT NULL,
    file_name TEXT NOT NULL, file_size BIGINT NOT NULL, status TEXT NOT NULL,
    rows INTEGER NOT NULL, succeeded INTEGER NOT NULL, failed INTEGER NOT NULL,
    chunks INTEGER NOT NULL, bytes_read BIGINT NOT NULL, header TEXT NOT NULL,
    mapping TEXT NOT NULL, options TEXT NOT NULL, chunk_size INTEGER NOT NULL, failure TEXT,
    requested_by TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ,
    last_retry_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL, version INTEGER NOT NULL""",
    (
        ("tenant_seq", "tenant, seq"),
        ("tenant_status", "tenant, status, seq"),
        ("tenant_importer", "tenant, importer, seq"),
    ),
)
#: The failed rows of every import; `passed` once a retry imported the row.
IMPORT_FAILED_ROWS = Table(
    "import_failed_rows",
    """import_id TEXT NOT NULL, tenant TEXT NOT NULL, number INTEGER NOT NULL,
    data TEXT NOT NULL, errors TEXT NOT NULL, error TEXT NOT NULL, passed BOOLEAN NOT NULL,
    passed_at TIMESTAMPTZ, PRIMARY KEY (import_id, number)""",
)

IMPORT_COLUMNS = (
    "id, seq, tenant, importer, file_name, file_size, status, rows, succeeded, failed, chunks,"
    " bytes_read, header, mapping, options, chunk_size, failure, requested_by, started_at,"
    " finished_at, last_retry_at, updated_at, version"
)
_JSON_COLUMNS = ("header", "mapping", "options")
_FAILED_COLUMNS = "import_id, number, data, errors, error, passed, passed_at"


class SqlImportsWriter:
    """ImportsWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._imports = table("imports")
        self._failed = table("import_failed_rows")

    def insert_import(self, row: ImportRow) -> None:
        values: dict[str, Any] = {
            column.strip(): getattr(row, column.strip()) for column in IMPORT_COLUMNS.split(",")
        }
        values["id"] = str(row.id)
        for column in _JSON_COLUMNS:
            values[column] = json.dumps(values[column])
        self._s.execute(
            f"INSERT INTO {self._imports} ({IMPORT_COLUMNS})"
            f" VALUES ({', '.join('?' for _ in values)}) ON CONFLICT (id) DO NOTHING",
            list(values.values()),
        )

    def add_chunk(
        self,
        import_id: UUID,
        rows_ok: int,
        failed: int,
        bytes_read: int,
        at: datetime,
        *,
        version: int,
    ) -> None:
        self._s.execute(
            f"UPDATE {self._imports} SET rows = rows + ?, succeeded = succeeded + ?,"
            " failed = failed + ?, chunks = chunks + 1, bytes_read = ?, updated_at = ?,"
            " version = ? WHERE id = ?",
            (rows_ok + failed, rows_ok, failed, bytes_read, at, version, str(import_id)),
        )

    def finish(
        self, import_id: UUID, status: str, failure: str | None, at: datetime, *, version: int
    ) -> None:
        self._s.execute(
            f"UPDATE {self._imports} SET status = ?, failure = ?, finished_at = ?,"
            " updated_at = ?, version = ? WHERE id = ?",
            (status, failure, at, at, version, str(import_id)),
        )

    def tenant_of(self, import_id: UUID) -> str | None:
        row = self._s.fetchone(
            f"SELECT tenant FROM {self._imports} WHERE id = ?",
            (str(import_id),),
        )
        return None if row is None else str(row["tenant"])

    def put_failed_rows(self, tenant: str, rows: Sequence[FailedImportRow]) -> None:
        self._s.executemany(
            f"INSERT INTO {self._failed} (import_id, tenant, number, data, errors, error,"
            " passed, passed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (import_id, number) DO UPDATE SET data = excluded.data,"
            " errors = excluded.errors, error = excluded.error, passed = excluded.passed,"
            " passed_at = excluded.passed_at",
            [
                (
                    str(row.import_id),
                    tenant,
                    row.number,
                    json.dumps(row.data),
                    json.dumps(row.errors),
                    row.error,
                    row.passed,
                    row.passed_at,
                )
                for row in rows
            ],
        )

    def pass_rows(
        self, import_id: UUID, numbers: Sequence[int], at: datetime, *, version: int
    ) -> None:
        if numbers:
            self._s.executemany(
                f"UPDATE {self._failed} SET passed = ?, passed_at = ?"
                " WHERE import_id = ? AND number = ?",
                [(True, at, str(import_id), number) for number in numbers],
            )
        passed = len(numbers)
        self._s.execute(
            f"UPDATE {self._imports} SET succeeded = succeeded + ?, failed = failed - ?,"
            " status = CASE WHEN failed - ? > 0 THEN ? ELSE ? END, last_retry_at = ?,"
            " updated_at = ?, version = ? WHERE id = ?",
            (
                passed,
                passed,
                passed,
                ImportStatus.COMPLETED_WITH_FAILURES.value,
                ImportStatus.COMPLETED.value,
                at,
                at,
                version,
                str(import_id),
            ),
        )


def imports_store(db: Database) -> SqlProjectionStore[SqlImportsWriter]:
    return SqlProjectionStore(db, "imports", [IMPORTS, IMPORT_FAILED_ROWS], SqlImportsWriter)


def _import_row(row: dict[str, Any]) -> ImportRow:
    fields = dict(row)
    fields["id"] = UUID(row["id"])
    for column in _JSON_COLUMNS:
        fields[column] = json.loads(row[column])
    return ImportRow(**fields)


def _failed_row(row: dict[str, Any]) -> FailedImportRow:
    return FailedImportRow(
        import_id=UUID(row["import_id"]),
        number=int(row["number"]),
        data=json.loads(row["data"]),
        errors=json.loads(row["errors"]),
        error=row["error"],
        passed=bool(row["passed"]),
        passed_at=row["passed_at"],
    )


class SqlImportQueries:
    """ImportsQueries over the SQL read model; every query is indexed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_import(self, tenant: str, import_id: UUID) -> ImportRow | None:
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT {IMPORT_COLUMNS} FROM imports WHERE id = ? AND tenant = ?",
                (str(import_id), tenant),
            )
        return None if row is None else _import_row(row)

    def list_imports(
        self, where: ImportFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ImportRow], str | None]:
        clauses = ["tenant = ?"]
        params: list[Any] = [where.tenant]
        if where.status is not None:
            clauses.append("status = ?")
            params.append(where.status)
        if where.importer is not None:
            clauses.append("importer = ?")
            params.append(where.importer)
        return newest_first(
            self._db,
            f"SELECT {IMPORT_COLUMNS} FROM imports",
            clauses,
            params,
            limit=limit,
            cursor=cursor,
            convert=_import_row,
        )

    def failed_rows(
        self,
        tenant: str,
        import_id: UUID,
        *,
        limit: int,
        after: int = 0,
        include_passed: bool = False,
    ) -> list[FailedImportRow]:
        passed = "" if include_passed else " AND NOT passed"
        with self._db.read() as s:
            rows = s.fetchall(
                f"SELECT {_FAILED_COLUMNS} FROM import_failed_rows"
                f" WHERE import_id = ? AND tenant = ? AND number > ?{passed}"
                " ORDER BY number LIMIT ?",
                (str(import_id), tenant, after, limit),
            )
        return [_failed_row(row) for row in rows]
