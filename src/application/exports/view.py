"""The exports read model: every export of a tenant, newest first, with its status and file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.export import Export, ExportStatus

EXPORT_EVENTS = (
    Export.Requested,
    Export.Started,
    Export.Finished,
    Export.Failed,
    Export.Expired,
)


class ExportsWriter(Protocol):
    """What the exports projection needs from its store, inside one transaction."""

    def insert_export(self, row: dict[str, Any]) -> None: ...
    def update_export(self, export_id: UUID, version: int, changes: dict[str, Any]) -> None:
        """Apply `changes` unless the row already holds this version (or a later one)."""
        ...


class ExportsProjection:
    """Keeps one row per export."""

    name = "exports"
    topics = tuple(topic(cls) for cls in EXPORT_EVENTS)

    def process(self, events: Sequence[LoggedEvent], writer: ExportsWriter) -> None:
        for logged in events:
            event = logged.event
            export_id = event.originator_id
            version = event.originator_version
            if isinstance(event, Export.Requested):
                writer.insert_export(
                    {
                        "id": export_id,
                        "seq": logged.position,
                        "tenant": event.tenant,
                        "exporter": event.exporter,
                        "format": event.format,
                        "filters": dict(event.filters),
                        "status": ExportStatus.PENDING.value,
                        "attempts": 0,
                        "job_id": event.job_id,
                        "requested_by": event.by,
                        "requested_at": event.at,
                        "version": version,
                    }
                )
            elif isinstance(event, Export.Started):
                writer.update_export(
                    export_id,
                    version,
                    {
                        "status": ExportStatus.RUNNING.value,
                        "attempts": event.attempt,
                        "started_at": event.at,
                        "finished_at": None,
                        "failure": None,
                    },
                )
            elif isinstance(event, Export.Finished):
                writer.update_export(
                    export_id,
                    version,
                    {
                        "status": ExportStatus.COMPLETED.value,
                        "rows": event.rows,
                        "size": event.size,
                        "file_name": event.file_name,
                        "finished_at": event.at,
                    },
                )
            elif isinstance(event, Export.Failed):
                writer.update_export(
                    export_id,
                    version,
                    {
                        "status": ExportStatus.FAILED.value,
                        "failure": event.reason,
                        "finished_at": event.at,
                    },
                )
            elif isinstance(event, Export.Expired):
                writer.update_export(
                    export_id,
                    version,
                    {
                        "status": ExportStatus.EXPIRED.value,
                        "expired_at": event.at,
                        "retention_hours": event.retention_hours,
                    },
                )


@dataclass(frozen=True)
class ExportRecord:
    """An export as the read model holds it."""

    id: UUID
    seq: int
    tenant: str
    exporter: str
    format: str
    filters: dict[str, Any]
    status: str
    attempts: int
    rows: int | None
    size: int | None
    file_name: str | None
    job_id: UUID | None
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    failure: str | None
    expired_at: datetime | None
    retention_hours: float | None
    version: int


class ExportsQueries(Protocol):
    """Read side of the exports read model."""

    def get_export(self, tenant: str, export_id: UUID) -> ExportRecord | None: ...
    def list_exports(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ExportRecord], str | None]:
        """A tenant's exports, newest first; the cursor continues after the last one."""
        ...

    def completed_before(
        self, cutoff: datetime, *, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[tuple[datetime, UUID]]:
        """(finished_at, id) of completed exports (any tenant) finished at or before `cutoff`,
        oldest first, continuing after `after`."""
        ...
