"""The imports read model: imports with totals and progress, and their failed rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from application.imports.importers import describe_errors
from domain.data_import import Import, ImportStatus


@dataclass(frozen=True)
class ImportRow:
    """One import as listed: what was uploaded, where it stands, its totals."""

    id: UUID
    seq: int
    tenant: str
    importer: str
    file_name: str
    file_size: int
    status: str
    rows: int
    succeeded: int
    failed: int
    chunks: int
    bytes_read: int
    header: list[str]
    mapping: dict[str, str]
    options: dict[str, Any]
    chunk_size: int
    failure: str | None
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    last_retry_at: datetime | None
    updated_at: datetime
    #: The import's version this row reflects (every event of the import moves it).
    version: int

    @property
    def progress(self) -> float:
        return import_progress(self.status, self.bytes_read, self.file_size)

    @property
    def duration_seconds(self) -> float | None:
        return import_duration(self.started_at, self.finished_at)


def import_progress(status: str, bytes_read: int, file_size: int) -> float:
    """Share of the file read, 0 to 100 (100 once the import has ended)."""
    if status != ImportStatus.PROCESSING:
        return 100.0
    if file_size <= 0:
        return 0.0
    return round(min(100.0, 100.0 * bytes_read / file_size), 1)


def import_duration(started_at: datetime, finished_at: datetime | None) -> float | None:
    """Seconds from start to end, or None while it runs."""
    if finished_at is None:
        return None
    return round((finished_at - started_at).total_seconds(), 3)


@dataclass(frozen=True)
class FailedImportRow:
    """A row that failed: its line number, its data as read, an error per column."""

    import_id: UUID
    number: int
    data: dict[str, str]
    errors: dict[str, str]
    error: str
    passed: bool
    passed_at: datetime | None


@dataclass(frozen=True)
class ImportFilter:
    """Which imports to list."""

    tenant: str
    status: str | None = None
    importer: str | None = None


class ImportsWriter(Protocol):
    """What the imports projection needs from its store, inside one transaction."""

    def insert_import(self, row: ImportRow) -> None: ...
    def add_chunk(
        self,
        import_id: UUID,
        rows_ok: int,
        failed: int,
        bytes_read: int,
        at: datetime,
        *,
        version: int,
    ) -> None: ...
    def finish(
        self, import_id: UUID, status: str, failure: str | None, at: datetime, *, version: int
    ) -> None: ...
    def tenant_of(self, import_id: UUID) -> str | None: ...
    def put_failed_rows(self, tenant: str, rows: Sequence[FailedImportRow]) -> None: ...
    def pass_rows(
        self, import_id: UUID, numbers: Sequence[int], at: datetime, *, version: int
    ) -> None: ...


class ImportsQueries(Protocol):
    """Reads of the imports read model."""

    def get_import(self, tenant: str, import_id: UUID) -> ImportRow | None: ...
    def list_imports(
        self, where: ImportFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ImportRow], str | None]:
        """Newest first; the cursor of the next page, or None on the last one."""
        ...

    def failed_rows(
        self,
        tenant: str,
        import_id: UUID,
        *,
        limit: int,
        after: int = 0,
        include_passed: bool = False,
    ) -> list[FailedImportRow]: ...


def failed_row(import_id: UUID, raw: dict[str, Any]) -> FailedImportRow:
    """A read-model failed row from a failed row as recorded in an event."""
    errors = {str(key): str(value) for key, value in raw["errors"].items()}
    return FailedImportRow(
        import_id=import_id,
        number=int(raw["number"]),
        data={str(key): str(value) for key, value in raw["data"].items()},
        errors=errors,
        error=describe_errors(errors),
        passed=False,
        passed_at=None,
    )


class ImportsProjection:
    """Keeps one row per import (totals as chunks land) and one row per failed row."""

    name = "imports"
    topics = tuple(
        topic(cls)
        for cls in (
            Import.Started,
            Import.ChunkProcessed,
            Import.Completed,
            Import.Failed,
            Import.FailedRowsRetried,
        )
    )

    def process(self, events: Sequence[LoggedEvent], writer: ImportsWriter) -> None:
        tenants: dict[UUID, str] = {}
        for logged in events:
            event = logged.event
            import_id: UUID = event.originator_id
            if isinstance(event, Import.Started):
                tenants[import_id] = event.tenant
                writer.insert_import(_started(logged.position, event))
                continue
            version = event.originator_version
            if isinstance(event, Import.Completed):
                writer.finish(import_id, event.status, None, event.at, version=version)
            elif isinstance(event, Import.Failed):
                writer.finish(
                    import_id, ImportStatus.FAILED.value, event.reason, event.at, version=version
                )
            elif isinstance(event, Import.ChunkProcessed | Import.FailedRowsRetried):
                tenant = tenants.get(import_id) or writer.tenant_of(import_id)
                if tenant is None:
                    continue
                tenants[import_id] = tenant
                self._rows(event, import_id, tenant, writer)

    @staticmethod
    def _rows(event: Any, import_id: UUID, tenant: str, writer: ImportsWriter) -> None:
        version = event.originator_version
        if isinstance(event, Import.ChunkProcessed):
            writer.add_chunk(
                import_id,
                event.rows_ok,
                len(event.failed_rows),
                event.bytes_read,
                event.at,
                version=version,
            )
            writer.put_failed_rows(tenant, [failed_row(import_id, r) for r in event.failed_rows])
            return
        writer.pass_rows(import_id, event.passed, event.at, version=version)
        writer.put_failed_rows(tenant, [failed_row(import_id, r) for r in event.still_failing])


def _started(position: int, event: Import.Started) -> ImportRow:
    return ImportRow(
        id=event.originator_id,
        seq=position,
        tenant=event.tenant,
        importer=event.importer,
        file_name=event.file_name,
        file_size=event.file_size,
        status=ImportStatus.PROCESSING.value,
        rows=0,
        succeeded=0,
        failed=0,
        chunks=0,
        bytes_read=0,
        header=list(event.header),
        mapping=dict(event.mapping),
        options=dict(event.options),
        chunk_size=event.chunk_size,
        failure=None,
        requested_by=event.by,
        started_at=event.at,
        finished_at=None,
        last_retry_at=None,
        updated_at=event.at,
        version=event.originator_version,
    )
