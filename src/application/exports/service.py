"""Export use cases: request an export (and dispatch its job), write its file, serve it, and
remove files after the retention.

Requesting saves the Export and the job that writes its file in one event-store transaction,
so an export is never requested without its job, nor a job dispatched for no export. The
job's id derives from the export's, and the export refuses to be written once completed: a
duplicated or retried message never writes a file twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.commands import CommandContext, CommandRegistry, Help
from application.event_log import ChronicleEvents
from application.exports.exporters import (
    ExportColumn,
    Exporter,
    ExporterRegistry,
    ExportQuery,
    ExportRow,
    filters_to_json,
)
from application.exports.view import ExportsQueries
from application.jobs import DispatchRequest, JobService
from application.periodic import PeriodicTask
from application.ports import Clock, JobTimedOutError
from application.saving import change
from domain.export import Export, ExportFormat, ExportStatus, export_job_id, parse_format
from domain.shared import (
    DEFAULT_TENANT,
    DomainError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)

log = structlog.get_logger(__name__)

#: The system command whose job writes an export's file.
EXPORT_COMMAND = "chronicle:export"
#: Rows between two looks at whether the job was cancelled.
CANCEL_CHECK_ROWS = 1_000
#: Completed exports looked up per page by the retention sweep.
EXPIRE_PAGE = 100
#: Files in the export folder that no completed export accounts for (a crash between writing
#: and recording, an abandoned partial file) are removed once this old, or after the
#: retention if that is longer: never while an export may still be writing them.
ORPHAN_MIN_AGE = timedelta(days=1)


@dataclass(frozen=True)
class WrittenFile:
    """A complete export file: its name in the export folder, data rows and size in bytes."""

    name: str
    rows: int
    size: int


class ExportFiles(Protocol):
    """The folder export files are written to and downloaded from."""

    def write(
        self,
        export_id: UUID,
        fmt: ExportFormat,
        columns: Sequence[ExportColumn],
        rows: Iterable[ExportRow],
    ) -> WrittenFile:
        """Stream `rows` to the export's file; a file only appears under its name complete."""
        ...

    def path(self, name: str) -> Path:
        """The file called `name`, refusing any name that leads outside the folder
        (ValidationError) and a missing file (NotFoundError)."""
        ...

    def remove(self, name: str) -> None:
        """Delete the file called `name`, if it is there."""
        ...

    def remove_older_than(self, age: timedelta, now: datetime) -> list[str]:
        """Delete the files written at least `age` before `now`; return their names."""
        ...


@dataclass(frozen=True)
class ExportOutcome:
    """Where an export stands after its job ran: the job's result."""

    export_id: UUID
    status: ExportStatus
    rows: int | None
    size: int | None
    file_name: str | None
    failure: str | None

    @classmethod
    def of(cls, export: Export) -> ExportOutcome:
        return cls(
            export_id=export.id,
            status=export.status,
            rows=export.rows,
            size=export.size,
            file_name=export.file_name,
            failure=export.failure,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_id": str(self.export_id),
            "status": self.status.value,
            "rows": self.rows,
            "size": self.size,
            "file": self.file_name,
            "failure": self.failure,
        }


@dataclass(frozen=True)
class ExportDownload:
    """A completed export's file and the name it is offered under."""

    path: Path
    filename: str
    format: ExportFormat
    size: int


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _checked(rows: Iterator[ExportRow], check: Callable[[], None]) -> Iterator[ExportRow]:
    """The rows, looking every CANCEL_CHECK_ROWS rows at whether the job was cancelled."""
    for count, row in enumerate(rows, start=1):
        if count % CANCEL_CHECK_ROWS == 0:
            check()
        yield row


def _export_id_of(file_name: str) -> UUID | None:
    stem = file_name.split(".", 1)[0]
    try:
        return UUID(stem)
    except ValueError:
        return None


class ExportService:
    """Writes Export aggregates, and the files of exports."""

    def __init__(
        self,
        events: ChronicleEvents,
        jobs: JobService,
        clock: Clock,
        *,
        exporters: ExporterRegistry,
        files: ExportFiles,
        queries: ExportsQueries,
        retention_hours: float,
        queue: str = "default",
    ) -> None:
        if retention_hours < 0:
            raise ValueError("retention_hours must not be negative")
        self._events = events
        self._jobs = jobs
        self._clock = clock
        self._exporters = exporters
        self._files = files
        self._queries = queries
        self._queue = queue
        self.retention = timedelta(hours=retention_hours)

    @property
    def exporters(self) -> ExporterRegistry:
        return self._exporters

    def request(
        self,
        exporter: str,
        fmt: str,
        filters: Mapping[str, object] | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        by: str = "system",
        dispatch: bool = True,
    ) -> Export:
        """Check the exporter, format and filters, then record the export — with the job
        that writes its file in the same transaction, unless `dispatch` is False (the CLI
        writes the file itself, in its own process)."""
        found: Exporter = self._exporters.get(exporter)
        export_format = parse_format(fmt)
        if filters is not None and not isinstance(filters, Mapping):
            raise ValidationError("filters must be an object of name → value", field="filters")
        values = found.parse_filters(filters)
        export_id = uuid4()
        now = self._clock.now()
        job = None
        if dispatch:
            job = self._jobs.build(
                DispatchRequest(
                    command=EXPORT_COMMAND,
                    arguments=[str(export_id)],
                    queue=self._queue,
                    tenant=tenant,
                    requested_by=by,
                    job_id=export_job_id(export_id),
                ),
                now,
            )
        export = Export.request(
            export_id=export_id,
            exporter=found.name,
            format=export_format.value,
            filters=filters_to_json(values),
            by=by,
            at=now,
            tenant=tenant,
            job_id=job.id if job is not None else None,
        )
        self._events.save(export, *([job] if job is not None else []))
        return export

    def _load(self, export_id: UUID) -> Export:
        try:
            export: object = self._events.repository.get(export_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"export {export_id} not found") from None
        if not isinstance(export, Export):
            raise NotFoundError(f"export {export_id} not found")
        return export

    def get(self, export_id: UUID, *, tenant: str) -> Export:
        """The export, if it belongs to `tenant` (another tenant's is not found either)."""
        export = self._load(export_id)
        if export.tenant != tenant:
            raise NotFoundError(f"export {export_id} not found")
        return export

    def _change(self, export_id: UUID, command: Callable[[Export], object]) -> Export:
        return change(self._events, lambda: self._load(export_id), command, f"export {export_id}")

    def run(self, export_id: UUID, *, check: Callable[[], None] | None = None) -> ExportOutcome:
        """Write the export's file and record the outcome (the body of its job).

        A completed or expired export is left as it is and its outcome returned: running the
        job twice is safe. When reading the rows or writing the file fails, the export
        records why and the error is raised again, so the job fails (and may retry it).
        `check` is called every few rows and raises to stop (a cancelled job).
        """
        try:
            export = self._change(export_id, lambda e: e.start(at=self._clock.now()))
        except InvalidTransitionError:
            export = self._load(export_id)
            log.info("export already written, nothing to do", export_id=str(export_id))
            return ExportOutcome.of(export)
        try:
            exporter = self._exporters.get(export.exporter)
            query = ExportQuery(
                tenant=export.tenant, filters=exporter.parse_filters(export.filters)
            )
            rows: Iterator[ExportRow] = iter(exporter.rows(query))
            if check is not None:
                rows = _checked(rows, check)
            written = self._files.write(export.id, export.format, exporter.columns, rows)
        except (Exception, JobTimedOutError) as exc:
            self._record_failure(export_id, exc)
            raise
        export = self._change(
            export_id,
            lambda e: e.finish(
                rows=written.rows,
                size=written.size,
                file_name=written.name,
                at=self._clock.now(),
            ),
        )
        log.info(
            "export written",
            export_id=str(export_id),
            exporter=export.exporter,
            rows=written.rows,
            size=written.size,
        )
        return ExportOutcome.of(export)

    def _record_failure(self, export_id: UUID, exc: BaseException) -> None:
        reason = _reason(exc)
        try:
            self._change(export_id, lambda e: e.fail(reason=reason, at=self._clock.now()))
        except Exception:
            # The original error matters more; the job records it with its traceback.
            log.warning("could not record the export's failure", export_id=str(export_id))
        log.warning("export failed", export_id=str(export_id), reason=reason)

    def job_stopped(self, arguments: Mapping[str, Any], reason: str) -> None:
        """The export's job was dead-lettered or cancelled before it recorded an outcome."""
        try:
            export_id = UUID(str(arguments["export_id"]))
        except (KeyError, ValueError):
            return
        self.abandon(export_id, reason)

    def abandon(self, export_id: UUID, reason: str) -> bool:
        """Record that an export's job stopped without it: fail it if it is still pending or
        running. Returns whether it changed."""

        changed = [False]

        def fail(export: Export) -> None:
            changed[0] = export.status in {ExportStatus.PENDING, ExportStatus.RUNNING}
            if changed[0]:
                export.fail(reason=reason, at=self._clock.now())

        try:
            self._change(export_id, fail)
        except NotFoundError:
            return False
        if changed[0]:
            log.warning("export abandoned by its job", export_id=str(export_id), reason=reason)
        return changed[0]

    def download(self, export_id: UUID, *, tenant: str) -> ExportDownload:
        """The file of a completed export: 409 before it completed, 410 once it expired."""
        export = self.get(export_id, tenant=tenant)
        name = export.require_file()
        try:
            path = self._files.path(name)
        except NotFoundError:
            raise NotFoundError(
                f"the file of export {export_id} is not in the export folder (API and workers"
                " must share CHRONICLE_FILES_DIR)"
            ) from None
        stamp = export.requested_at.strftime("%Y%m%d-%H%M%S")
        return ExportDownload(
            path=path,
            filename=f"{export.exporter}-{stamp}.{export.format.value}",
            format=export.format,
            size=export.size or 0,
        )

    def expire(self, now: datetime | None = None) -> int:
        """Remove the files of exports completed at least the retention ago, recording on
        each that it expired; also remove files no export accounts for. Returns how many
        exports expired."""
        now = now or self._clock.now()
        cutoff = now - self.retention
        expired = 0
        after: tuple[datetime, UUID] | None = None
        while True:
            page = self._queries.completed_before(cutoff, after=after, limit=EXPIRE_PAGE)
            for _, export_id in page:
                expired += self._expire_one(export_id, now, cutoff)
            if len(page) < EXPIRE_PAGE:
                break
            after = page[-1]
        for name in self._files.remove_older_than(max(self.retention, ORPHAN_MIN_AGE), now):
            orphan_of = _export_id_of(name)
            if orphan_of is not None:
                # Its file is gone already: whatever the read model said, the export says so.
                expired += self._expire_one(orphan_of, now, None)
        if expired:
            log.info("export files removed after the retention", exports=expired)
        return expired

    def _expire_one(self, export_id: UUID, now: datetime, cutoff: datetime | None) -> int:
        def expire(export: Export) -> None:
            if cutoff is not None and (export.finished_at is None or export.finished_at > cutoff):
                raise InvalidTransitionError(f"export {export_id} is not due to expire")
            export.expire(retention_hours=self.retention.total_seconds() / 3600, at=now)

        try:
            export = self._change(export_id, expire)
        except (NotFoundError, InvalidTransitionError):
            return 0
        # Recorded first, removed after: the export never points at a file that is gone; a
        # crash in between leaves a file the orphan sweep removes.
        if export.file_name is not None:
            self._files.remove(export.file_name)
        return 1

    def sweeper(self, interval: float = 60.0) -> PeriodicTask:
        """A thread running `expire` every `interval` seconds, until stopped."""
        return PeriodicTask("export-retention", self.expire, interval)


def register_export_command(registry: CommandRegistry, service: ExportService) -> None:
    """Register `chronicle:export EXPORT_ID`, the job that writes an export's file."""

    def export(
        ctx: CommandContext, export_id: Annotated[str, Help("the export's id (a UUID)")]
    ) -> dict[str, Any]:
        try:
            uuid = UUID(export_id)
        except ValueError:
            raise ValidationError(
                f"{export_id!r} is not an export id (a UUID)", field="export_id"
            ) from None
        outcome = service.run(uuid, check=ctx.raise_if_cancelled)
        ctx.write(
            f"export {uuid} {outcome.status.value}: {outcome.rows} rows, {outcome.size} bytes"
        )
        return outcome.to_dict()

    registry.register(
        EXPORT_COMMAND, export, description="Write the file of a requested export (system)"
    )
