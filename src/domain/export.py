"""The Export aggregate: rows of a registered exporter written to a CSV or XLSX file.

An export is requested (by an operator or the CLI), started by the job that writes its file,
and ends completed (with its file, row count and size) or failed (with the reason). A failed
export may be started again — its job's retry runs it once more — but a completed one never:
running its job twice must not write the file twice. The file is removed after the
configured retention, and the export records that it expired.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import (
    DEFAULT_TENANT,
    GoneError,
    InvalidTransitionError,
    ValidationError,
    deterministic_id,
    require_utc,
)

#: The longest failure reason kept on the export (a traceback belongs on the job).
MAX_REASON = 2_000


class ExportFormat(StrEnum):
    """The file formats an export can be written in."""

    CSV = "csv"
    XLSX = "xlsx"


class ExportStatus(StrEnum):
    """Where an export stands; only a completed export has a file to download."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


def parse_format(value: object) -> ExportFormat:
    """The format named by `value`, or a ValidationError naming the ones there are."""
    try:
        return ExportFormat(str(value).strip().lower())
    except ValueError:
        known = " or ".join(item.value for item in ExportFormat)
        raise ValidationError(
            f"unknown export format {value!r}; use {known}", field="format"
        ) from None


def export_job_id(export_id: UUID) -> UUID:
    """The id of the job that writes an export's file: the same however often it is asked."""
    return deterministic_id("export", str(export_id))


def _plain_file_name(name: str) -> str:
    # The file lives in the export folder under this name: a separator or `..` would point
    # elsewhere, whatever wrote the event.
    if (
        not name
        or name in {".", ".."}
        or any(char in name for char in "/\\\x00")
        or name.startswith(".")
    ):
        raise ValidationError(f"export file name {name!r} must be a plain file name", field="file")
    return name


class Export(Aggregate):
    """One request to export an exporter's rows to a file."""

    class Requested(Aggregate.Created):
        tenant: str
        exporter: str
        format: str
        filters: dict[str, Any]
        job_id: UUID | None
        by: str
        at: datetime

    class Started(Aggregate.Event):
        attempt: int
        at: datetime

    class Finished(Aggregate.Event):
        rows: int
        size: int
        file_name: str
        at: datetime

    class Failed(Aggregate.Event):
        attempt: int
        reason: str
        at: datetime

    class Expired(Aggregate.Event):
        retention_hours: float
        at: datetime

    @event(Requested)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        exporter: str,
        format: str,  # noqa: A002 - the event's field, as the API names it
        filters: dict[str, Any],
        job_id: UUID | None,
        by: str,
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.exporter = exporter
        self.format = ExportFormat(format)
        self.filters = filters
        self.job_id = job_id
        self.requested_by = by
        self.requested_at = at
        self.status = ExportStatus.PENDING
        self.attempts = 0
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.rows: int | None = None
        self.size: int | None = None
        self.file_name: str | None = None
        self.failure: str | None = None
        self.expired_at: datetime | None = None
        self.retention_hours: float | None = None

    @classmethod
    def request(
        cls,
        *,
        export_id: UUID,
        exporter: str,
        format: str,  # noqa: A002 - as the API names it
        filters: dict[str, Any],
        by: str,
        at: datetime,
        tenant: str = DEFAULT_TENANT,
        job_id: UUID | None = None,
    ) -> Export:
        """Record the request; the exporter and its filters were checked by the application."""
        if not tenant:
            raise ValidationError("tenant must not be empty", field="tenant")
        if not exporter:
            raise ValidationError("exporter must not be empty", field="exporter")
        if not by:
            raise ValidationError("who requests the export must be known", field="by")
        return cls(
            id=export_id,
            tenant=tenant,
            exporter=exporter,
            format=parse_format(format).value,
            filters=dict(filters),
            job_id=job_id,
            by=by,
            at=require_utc(at, "at"),
        )

    # -- commands -------------------------------------------------------------------------

    def start(self, *, at: datetime) -> None:
        """Begin writing the file: a new export, a failed one retried, or one whose previous
        attempt died mid-way (still running). A completed or expired export is never
        written again."""
        if self.status in {ExportStatus.COMPLETED, ExportStatus.EXPIRED}:
            raise InvalidTransitionError(
                f"export {self.id} is {self.status}: its file is not written again"
            )
        self._started(attempt=self.attempts + 1, at=require_utc(at, "at"))

    def finish(self, *, rows: int, size: int, file_name: str, at: datetime) -> None:
        """Record the complete file: how many data rows and bytes, and its name in the folder."""
        self._require_running("finish")
        if rows < 0 or size < 0:
            raise ValidationError("rows and size must not be negative", field="rows")
        self._finished(
            rows=rows, size=size, file_name=_plain_file_name(file_name), at=require_utc(at, "at")
        )

    def fail(self, *, reason: str, at: datetime) -> None:
        """Record why no file was written: this attempt failed, or the job gave up or was
        cancelled before (or while) writing it."""
        if self.status not in {ExportStatus.PENDING, ExportStatus.RUNNING}:
            raise InvalidTransitionError(f"export {self.id} is {self.status}, it cannot fail")
        reason = reason.strip() or "unknown error"
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 1] + "…"
        self._failed(attempt=self.attempts, reason=reason, at=require_utc(at, "at"))

    def expire(self, *, retention_hours: float, at: datetime) -> None:
        """Record that the file was removed after the retention (called before removing it,
        so the export never points at a file that is gone)."""
        if self.status is not ExportStatus.COMPLETED:
            raise InvalidTransitionError(
                f"export {self.id} is {self.status}: only a completed export expires"
            )
        if retention_hours < 0:
            raise ValidationError("retention must not be negative", field="retention_hours")
        self._expired(retention_hours=float(retention_hours), at=require_utc(at, "at"))

    def require_file(self) -> str:
        """The name of the export's file, or why it has none: 409 not yet, 410 no longer."""
        if self.status is ExportStatus.EXPIRED:
            when = (
                self.expired_at.strftime("%Y-%m-%d %H:%M:%S UTC") if self.expired_at else "earlier"
            )
            raise GoneError(
                f"the file of export {self.id} was removed on {when}, after the retention of"
                f" {self.retention_hours:g} hours; request the export again"
            )
        if self.status is not ExportStatus.COMPLETED or self.file_name is None:
            detail = f": {self.failure}" if self.status is ExportStatus.FAILED else ""
            raise InvalidTransitionError(
                f"export {self.id} is {self.status}{detail}; its file is ready once it is completed"
            )
        return self.file_name

    def _require_running(self, verb: str) -> None:
        if self.status is not ExportStatus.RUNNING:
            raise InvalidTransitionError(f"export {self.id} is {self.status}, it cannot {verb}")

    # -- mutators: they only assign state ---------------------------------------------------

    @event(Started)
    def _started(self, attempt: int, at: datetime) -> None:
        self.status = ExportStatus.RUNNING
        self.attempts = attempt
        self.started_at = at
        self.failure = None

    @event(Finished)
    def _finished(self, rows: int, size: int, file_name: str, at: datetime) -> None:
        self.status = ExportStatus.COMPLETED
        self.rows = rows
        self.size = size
        self.file_name = file_name
        self.finished_at = at

    @event(Failed)
    def _failed(self, attempt: int, reason: str, at: datetime) -> None:
        self.status = ExportStatus.FAILED
        self.failure = reason
        self.finished_at = at

    @event(Expired)
    def _expired(self, retention_hours: float, at: datetime) -> None:
        self.status = ExportStatus.EXPIRED
        self.retention_hours = retention_hours
        self.expired_at = at
