"""Request and response bodies of `/api/exports` and `/api/exporters` (msgspec Structs), and
their builders."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from msgspec import Meta, Struct

from application.exports.exporters import Exporter
from application.exports.view import ExportRecord
from domain.export import ExportFormat, ExportStatus
from interfaces.http.schemas.common import job_path, utc, utc_or_none

MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_path(export_id: UUID) -> str:
    return f"/api/exports/{export_id}"


class RequestExport(Struct, forbid_unknown_fields=True, kw_only=True):
    """Export an exporter's rows to a file, written by a job."""

    exporter: Annotated[
        str, Meta(description="A registered exporter (`GET /api/exporters`), e.g. `jobs`.")
    ]
    format: Annotated[str, Meta(description="`csv` (UTF-8 with BOM) or `xlsx`.")] = "csv"
    filters: Annotated[
        dict[str, Any] | None,
        Meta(description="Filter name → value, among the exporter's filters."),
    ] = None


class ExportLinks(Struct, kw_only=True):
    """Where to find an export, its file (once completed) and the job writing it."""

    self: str
    download: str | None
    job: str | None


class ExportView(Struct, kw_only=True):
    """An export: `pending` until its job starts, `running`, then `completed` (its file can be
    downloaded until `expires_at`) or `failed` (`failure` says why; a retry of its job runs it
    again); `expired` once the file was removed after the retention."""

    id: UUID
    tenant: str
    exporter: str
    format: str
    filters: dict[str, Any]
    status: str
    attempts: int
    rows: Annotated[int | None, Meta(description="Data rows in the file (header excluded).")]
    size: Annotated[int | None, Meta(description="File size in bytes.")]
    file_name: str | None
    job_id: UUID | None
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    failure: str | None
    expires_at: Annotated[
        datetime | None,
        Meta(description="When the retention sweep removes the file of a completed export."),
    ]
    expired_at: datetime | None
    retention_hours: Annotated[
        float | None, Meta(description="The retention the file was removed after.")
    ]
    projected: Annotated[
        bool, Meta(description="False while the read model has not caught up with a change.")
    ]
    links: ExportLinks


class ExportPage(Struct, kw_only=True):
    """A page of exports, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[ExportView]
    next_cursor: str | None


class ExportColumnView(Struct, kw_only=True):
    """A column of an exporter's file: the row key and its header."""

    name: str
    header: str


class ExportFilterView(Struct, kw_only=True):
    """A filter an exporter takes: `type` is str, int, bool, datetime or uuid."""

    name: str
    type: str
    help: str
    required: bool
    choices: list[str] | None


class ExporterView(Struct, kw_only=True):
    """A registered exporter: its columns and filters."""

    name: str
    description: str
    columns: list[ExportColumnView]
    filters: list[ExportFilterView]


def exporter_view(exporter: Exporter) -> ExporterView:
    return ExporterView(
        name=exporter.name,
        description=exporter.description,
        columns=[ExportColumnView(name=c.name, header=c.header) for c in exporter.columns],
        filters=[ExportFilterView(**item.describe()) for item in exporter.filters],
    )


def _links(export_id: UUID, status: str, job_id: UUID | None) -> ExportLinks:
    completed = status == ExportStatus.COMPLETED.value
    return ExportLinks(
        self=export_path(export_id),
        download=f"{export_path(export_id)}/download" if completed else None,
        job=job_path(job_id) if job_id else None,
    )


def _expires_at(status: str, finished_at: datetime | None, retention: timedelta) -> datetime | None:
    if status != ExportStatus.COMPLETED.value or finished_at is None:
        return None
    return utc(finished_at + retention)


def export_view(row: ExportRecord, retention: timedelta, *, projected: bool = True) -> ExportView:
    """An export as the read model holds it, or (`projected` false) as its events make it."""
    return ExportView(
        id=row.id,
        tenant=row.tenant,
        exporter=row.exporter,
        format=row.format,
        filters=row.filters,
        status=row.status,
        attempts=row.attempts,
        rows=row.rows,
        size=row.size,
        file_name=row.file_name,
        job_id=row.job_id,
        requested_by=row.requested_by,
        requested_at=utc(row.requested_at),
        started_at=utc_or_none(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        failure=row.failure,
        expires_at=_expires_at(row.status, row.finished_at, retention),
        expired_at=utc_or_none(row.expired_at),
        retention_hours=row.retention_hours,
        projected=projected,
        links=_links(row.id, row.status, row.job_id),
    )
