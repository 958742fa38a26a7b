"""Import use cases: start an upload, run it in chunks as a job, retry its failed rows.

An import runs as one job (`chronicle:import`) that streams the stored file, validates rows
and hands valid ones to the importer's handler chunk by chunk; after each chunk it records the
chunk's outcome. If the worker dies, the job is retried: the new run validates the file from
the start again (rules spanning rows, such as unique columns, need every earlier row) but
writes only the chunks not yet recorded. A handler may see the chunk that was being written at
the crash a second time; handlers are idempotent per (import, row). When the job gives up
(dead-lettered or cancelled), `job_stopped` fails the import: an import never stays
"processing" forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeVar
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.commands import CommandContext, CommandRegistry
from application.event_log import ChronicleEvents
from application.imports.csv_reader import CsvFile, CsvFileError, ParsedRow, read_rows, split_values
from application.imports.importers import (
    ROW_ERROR,
    ChunkContext,
    Importer,
    ImporterRegistry,
    InMemoryKeys,
    RowValidator,
    UniqueKeys,
    missing_columns,
)
from application.jobs import DispatchRequest, JobService
from application.ports import Clock
from application.saving import CHANGE_ATTEMPTS, change, saved
from domain.data_import import FailedRow, Import, ImportStatus
from domain.shared import (
    DEFAULT_TENANT,
    DomainError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
    deterministic_id,
)

log = structlog.get_logger(__name__)

__all__ = [
    "IMPORT_COMMAND",
    "ImportFiles",
    "ImportRequest",
    "ImportService",
    "RetryOutcome",
    "UploadTooLargeError",
    "import_job_id",
    "register_import_command",
]

IMPORT_COMMAND = "chronicle:import"
#: Attempts of an import job: enough to ride out a crashed worker or a database restart.
IMPORT_JOB_ATTEMPTS = 5
#: Key of the extra fields of a row that had more fields than the header.
EXTRA_FIELDS = "_extra"
#: Key of a row's raw text when even its quoting could not be read.
RAW_TEXT = "_raw"
_SNIFF_BYTES = 8192
_NEEDS_CORRECTION = (
    "the row was read with the wrong number of fields: send a correction with its columns"
)

T = TypeVar("T")


class UploadTooLargeError(DomainError):
    """The uploaded file is larger than the configured limit."""


class ImportFiles(Protocol):
    """Where uploaded files are kept until their import has run (shared by API and workers)."""

    def save(self, import_id: UUID, stream: BinaryIO, *, max_bytes: int) -> tuple[str, int]:
        """Store the upload; (stored name, size). Beyond `max_bytes` raise UploadTooLargeError."""
        ...

    def open(self, name: str) -> BinaryIO:
        """The stored file for reading; NotFoundError when it is gone."""
        ...

    def remove(self, name: str) -> None:
        """Delete a stored file (no error when it is already gone)."""
        ...


@dataclass(frozen=True)
class ImportRequest:
    """An upload to import: which importer, how CSV headers map to its columns, its options."""

    importer: str
    file_name: str
    mapping: Mapping[str, str] | None = None
    options: Mapping[str, Any] | None = None
    delimiter: str | None = None
    chunk_size: int | None = None
    tenant: str = DEFAULT_TENANT
    by: str = "api"


@dataclass(frozen=True)
class _ChunkWrite:
    chunk: int
    first_row: int
    last_row: int
    bytes_read: int


@dataclass(frozen=True)
class RetryOutcome:
    """What a retry of failed rows did: which rows passed, which still fail and why."""

    passed: list[int]
    still_failing: list[FailedRow]


def import_job_id(import_id: UUID) -> UUID:
    """The id of the job that runs an import (one per import)."""
    return deterministic_id("import-job", str(import_id))


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def row_data(header: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    """A row's values by CSV header; fields beyond the header are kept under `_extra`."""
    data = dict(zip(header, values, strict=False))
    if len(values) > len(header):
        data[EXTRA_FIELDS] = ", ".join(values[len(header) :])
    return data


class ImportService:
    """Starts imports, runs them chunk by chunk and retries their failed rows."""

    def __init__(
        self,
        events: ChronicleEvents,
        jobs: JobService,
        importers: ImporterRegistry,
        files: ImportFiles,
        clock: Clock,
        *,
        chunk_size: int = 1000,
        max_bytes: int = 100 * 1024 * 1024,
        max_field_chars: int = 100_000,
        unique_keys: Callable[[UUID], UniqueKeys] | None = None,
    ) -> None:
        self._events = events
        self._jobs = jobs
        self.importers = importers
        self._files = files
        self._clock = clock
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes
        self._max_field_chars = max_field_chars
        #: Where a run keeps the keys of unique columns (on disk in production).
        self._unique_keys = unique_keys or (lambda _import_id: InMemoryKeys())

    # -- start ---------------------------------------------------------------------------------

    def start(self, request: ImportRequest, stream: BinaryIO) -> Import:
        """Store the file and start its import; its job runs it on a worker.

        Request problems (unknown importer, option or column, a mapping from a CSV column the
        file lacks, a file that is not CSV) raise ValidationError and leave nothing behind. A
        file without the importer's required columns is recorded as a failed import.
        """
        importer = self.importers.get(request.importer)
        options = importer.resolve_options(request.options)
        mapping = dict(request.mapping or {})
        for target in mapping.values():
            importer.column(target)
        import_id = uuid4()
        stored_as, size = self._files.save(import_id, stream, max_bytes=self.max_bytes)
        try:
            header, delimiter = self._read_header(stored_as, request.delimiter)
            missing = missing_columns(importer, header, mapping)
            now = self._clock.now()
            started = Import.start(
                import_id=import_id,
                importer=importer.name,
                file_name=request.file_name,
                file_size=size,
                stored_as=stored_as,
                header=header,
                delimiter=delimiter,
                mapping=mapping,
                options=options,
                chunk_size=request.chunk_size or self.chunk_size,
                tenant=request.tenant,
                by=request.by,
                at=now,
            )
        except Exception:
            self._files.remove(stored_as)
            raise
        if missing:
            started.fail(
                reason=(
                    f"the file lacks required columns for importer {importer.name!r}: "
                    f"{', '.join(missing)} (its header is: {', '.join(header)})"
                ),
                at=now,
            )
            self._events.save(started)
            self._files.remove(stored_as)
            return started
        job = self._jobs.build(
            DispatchRequest(
                command=IMPORT_COMMAND,
                arguments={"import_id": str(import_id)},
                tenant=request.tenant,
                requested_by=request.by,
                max_attempts=IMPORT_JOB_ATTEMPTS,
                job_id=import_job_id(import_id),
            ),
            now,
        )
        self._events.save(started, job)
        log.info("import started", import_id=str(import_id), importer=importer.name, size=size)
        return started

    def _read_header(self, stored_as: str, delimiter: str | None) -> tuple[list[str], str]:
        with self._files.open(stored_as) as stream:
            head = stream.read(_SNIFF_BYTES)
            if b"\x00" in head:
                raise ValidationError(
                    "the file is not a CSV text file: it contains binary data (NUL bytes)",
                    field="file",
                )
            stream.seek(0)
            try:
                csv_file = read_rows(
                    stream, delimiter=delimiter, max_field_chars=self._max_field_chars
                )
            except CsvFileError as exc:
                field = "delimiter" if "delimiter" in str(exc) else "file"
                raise ValidationError(
                    f"the file is not a readable CSV: {exc}", field=field
                ) from None
            return csv_file.header, csv_file.delimiter

    # -- run (the job) -------------------------------------------------------------------------

    def get(self, import_id: UUID, *, tenant: str | None = None) -> Import:
        """The import, or NotFoundError (also for another tenant's import)."""
        try:
            found: Import = self._events.repository.get(import_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"import {import_id} not found") from None
        if not isinstance(found, Import) or (tenant is not None and found.tenant != tenant):
            raise NotFoundError(f"import {import_id} not found")
        return found

    def run(self, import_id: UUID, context: CommandContext | None = None) -> dict[str, Any]:
        """Import the file chunk by chunk; safe to run again after a crash."""
        current = self.get(import_id)
        bound = log.bind(import_id=str(import_id))
        if current.status is not ImportStatus.PROCESSING:
            return summary(current)
        try:
            importer = self.importers.get(current.importer)
        except ValidationError as exc:
            return self._fail(current, str(exc))
        try:
            stream = self._files.open(current.stored_as)
        except NotFoundError:
            return self._fail(current, f"the uploaded file {current.file_name!r} is gone")
        keys = self._unique_keys(import_id)
        with stream, contextlib.closing(keys):
            try:
                csv_file = read_rows(
                    stream, delimiter=current.delimiter, max_field_chars=self._max_field_chars
                )
                validator = RowValidator(importer, csv_file.header, current.mapping, keys=keys)
            except (CsvFileError, ValidationError) as exc:
                return self._fail(current, str(exc))
            if current.chunks:
                bound.info("import resumed", chunks_done=len(current.chunks))
            if not self._import_chunks(current, importer, csv_file, validator, context):
                return summary(self.get(import_id))
        finished = change(
            self._events,
            lambda: self.get(import_id),
            lambda found: found.complete(at=self._clock.now()),
            f"import {import_id}",
        )
        self._files.remove(finished.stored_as)  # failed rows live on in the events
        bound.info("import finished", **summary(finished))
        return summary(finished)

    @staticmethod
    def _validate(
        validator: RowValidator, header: list[str], current: Import, parsed: list[ParsedRow]
    ) -> tuple[list[tuple[int, dict[str, Any]]], list[FailedRow]]:
        readable: list[tuple[int, list[str]]] = []
        failed: list[FailedRow] = []
        for row in parsed:
            if row.values is not None:
                readable.append((row.number, row.values))
                continue
            values = split_values(row.raw, current.delimiter)
            data = row_data(header, values) if values is not None else {RAW_TEXT: row.raw}
            failed.append(FailedRow(row.number, data, {ROW_ERROR: row.error or "unreadable"}))
        valid, invalid = validator.validate_chunk(readable)
        failed.extend(
            FailedRow(number, row_data(header, values), errors)
            for number, values, errors in invalid
        )
        return valid, failed

    @staticmethod
    def _rejected(
        valid: list[tuple[int, dict[str, Any]]],
        rejected: Mapping[int, Mapping[str, str]] | None,
        current: Import,
    ) -> Iterator[tuple[int, list[str], dict[str, str]]]:
        """The valid rows the handler refused, with their values as text for correction."""
        if not rejected:
            return
        for number, row in valid:
            errors = rejected.get(number)
            if errors is None:
                continue
            by_column = {
                column: "" if value is None else str(value) for column, value in row.items()
            }
            values = [by_column.get(_target(current, name), "") for name in current.header]
            yield number, values, dict(errors)

    def _import_chunks(
        self,
        current: Import,
        importer: Importer,
        csv_file: CsvFile,
        validator: RowValidator,
        context: CommandContext | None,
    ) -> bool:
        """Every chunk not recorded yet, written and recorded; False if the import stopped.

        (Writing chunk N on a thread while chunk N+1 is validated was measured: no faster,
        as both halves are Python holding the GIL.)
        """
        done = frozenset(current.chunks)
        for chunk, parsed in enumerate(_batched(csv_file, current.chunk_size)):
            valid, failed = self._validate(validator, csv_file.header, current, parsed)
            if chunk in done:
                continue  # recorded by an earlier run: validated only to carry its keys
            if context is not None:
                context.raise_if_cancelled()
            write = _ChunkWrite(chunk, parsed[0].number, parsed[-1].number, csv_file.bytes_read)
            written = self._write_chunk(importer, current, write, valid, failed)
            if written is None:
                return False
            current = written
        return True

    def _write_chunk(
        self,
        importer: Importer,
        current: Import,
        write: _ChunkWrite,
        valid: list[tuple[int, dict[str, Any]]],
        failed: list[FailedRow],
    ) -> Import | None:
        """Hand the valid rows to the importer, then record the chunk's outcome."""
        rejected = importer.handler(
            valid, ChunkContext(current.id, current.tenant, write.chunk, current.options)
        )
        failed.extend(
            FailedRow(number, row_data(current.header, values), errors)
            for number, values, errors in self._rejected(valid, rejected, current)
        )
        failed.sort(key=lambda row: row.number)
        return self._record(
            current,
            chunk=write.chunk,
            first_row=write.first_row,
            last_row=write.last_row,
            rows_ok=len(valid) - len(rejected or {}),
            failed_rows=failed,
            bytes_read=write.bytes_read,
        )

    def _record(self, current: Import, **chunk: Any) -> Import | None:
        """Record a chunk; None when the import stopped meanwhile (failed by the watcher)."""
        aggregate = current
        for _ in range(CHANGE_ATTEMPTS):
            if aggregate.status is not ImportStatus.PROCESSING:
                return None
            if chunk["chunk"] not in aggregate.chunks:
                aggregate.record_chunk(at=self._clock.now(), **chunk)
            if saved(self._events.save, aggregate):
                return aggregate
            aggregate = self.get(current.id)
        raise InvalidTransitionError(f"import {current.id} keeps changing while it runs")

    def _fail(self, current: Import, reason: str) -> dict[str, Any]:
        failed = self.fail(current.id, reason)
        return summary(failed)

    def job_stopped(self, arguments: Mapping[str, Any], reason: str) -> None:
        """The import's job was dead-lettered or cancelled: a processing import fails."""
        try:
            current = self.get(UUID(str(arguments["import_id"])))
        except (KeyError, ValueError, NotFoundError):
            return
        if current.status is ImportStatus.PROCESSING:
            self.fail(current.id, f"the import stopped: {reason}")

    def fail(self, import_id: UUID, reason: str) -> Import:
        """End a processing import as failed (no-op once it has ended)."""

        def decide(found: Import) -> None:
            if found.status is ImportStatus.PROCESSING:
                found.fail(reason=reason, at=self._clock.now())

        failed = change(self._events, lambda: self.get(import_id), decide, f"import {import_id}")
        self._files.remove(failed.stored_as)
        log.warning("import failed", import_id=str(import_id), reason=reason)
        return failed

    def cancel(self, import_id: UUID, *, tenant: str, by: str, reason: str = "") -> Import:
        """Stop an import: its job is cancelled (between two chunks if it runs), and the
        import then ends failed, saying who cancelled it; chunks already written stay."""
        current = self.get(import_id, tenant=tenant)
        if current.status is not ImportStatus.PROCESSING:
            raise InvalidTransitionError(
                f"import {import_id} is {current.status}: only a processing import can be cancelled"
            )
        self._jobs.cancel(import_job_id(import_id), tenant=tenant, by=by, reason=reason)
        log.info("import cancel requested", import_id=str(import_id), by=by)
        return current

    # -- retry failed rows ---------------------------------------------------------------------

    def retry_failed(
        self,
        import_id: UUID,
        *,
        tenant: str,
        by: str,
        corrections: Mapping[int, Mapping[str, str]] | None = None,
        rows: Sequence[int] | None = None,
    ) -> RetryOutcome:
        """Run failed rows again, with `corrections` (row → values by CSV header) applied.

        `rows` limits the retry to those rows (default: every failing row). Each chunk's
        outcome is recorded as it completes, so an interrupted retry keeps what passed.
        """
        current = self.get(import_id, tenant=tenant)
        if current.status not in {ImportStatus.COMPLETED, ImportStatus.COMPLETED_WITH_FAILURES}:
            raise InvalidTransitionError(
                f"import {import_id} is {current.status}: only a finished import's rows can be "
                "retried"
            )
        fixes = {int(number): dict(values) for number, values in (corrections or {}).items()}
        named = sorted(set(rows or ()) | set(fixes))
        self._check_rows(current, named, fixes)
        wanted = named if rows is not None else sorted(current.failing)
        importer = self.importers.get(current.importer)
        validator = RowValidator(importer, current.header, current.mapping)
        outcome = RetryOutcome(passed=[], still_failing=[])
        for numbers in _batched(wanted, current.chunk_size):
            parsed: list[tuple[int, list[str]]] = []
            still: list[FailedRow] = []
            for number in numbers:
                original = current.failing[number]
                if number not in fixes and set(original) != set(current.header):
                    # A row read with the wrong number of fields is not guessed into shape.
                    still.append(FailedRow(number, original, {ROW_ERROR: _NEEDS_CORRECTION}))
                    continue
                data = {**original, **fixes.get(number, {})}
                parsed.append((number, [data.get(name, "") for name in current.header]))
            valid, invalid = validator.validate_chunk(parsed)
            rejected = importer.handler(
                valid, ChunkContext(current.id, current.tenant, -1, current.options)
            )
            still.extend(
                FailedRow(number, row_data(current.header, values), errors)
                for number, values, errors in invalid
            )
            still.extend(
                FailedRow(number, row_data(current.header, values), errors)
                for number, values, errors in self._rejected(valid, rejected, current)
            )
            still.sort(key=lambda row: row.number)
            passed = [number for number, _ in valid if number not in (rejected or {})]
            current = self._record_retry(import_id, passed, still, by)
            outcome.passed.extend(passed)
            outcome.still_failing.extend(still)
        log.info(
            "import rows retried",
            import_id=str(import_id),
            passed=len(outcome.passed),
            still_failing=len(outcome.still_failing),
        )
        return outcome

    def _record_retry(
        self, import_id: UUID, passed: list[int], still: list[FailedRow], by: str
    ) -> Import:
        def decide(found: Import) -> None:
            # Rows another retry resolved meanwhile are left out rather than recorded twice.
            now_passed = [number for number in passed if number in found.failing]
            now_still = [row for row in still if row.number in found.failing]
            if now_passed or now_still:
                found.record_retry(
                    passed=now_passed, still_failing=now_still, by=by, at=self._clock.now()
                )

        return change(self._events, lambda: self.get(import_id), decide, f"import {import_id}")

    @staticmethod
    def _check_rows(current: Import, named: Sequence[int], fixes: Mapping[int, Any]) -> None:
        """Every row named (to retry or to correct) must be failing now, or nothing runs."""
        if not current.failing:
            raise InvalidTransitionError(f"import {current.id} has no failed rows to retry")
        not_failing = [number for number in named if number not in current.failing]
        if not_failing:
            shown = ", ".join(str(number) for number in not_failing[:10])
            more = f" and {len(not_failing) - 10} more" if len(not_failing) > 10 else ""
            which = (
                f"row {shown} is not a failed row"
                if len(not_failing) == 1
                else f"rows {shown}{more} are not failed rows"
            )
            raise ValidationError(
                f"{which} of import {current.id} (no such row, or it passed an earlier retry): "
                "nothing was retried",
                field="rows" if set(not_failing) - set(fixes) else "corrections",
            )
        known = set(current.header)
        for number, values in fixes.items():
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValidationError(
                    f"the correction of row {number} names columns the file does not have: "
                    f"{', '.join(unknown)} (its columns: {', '.join(current.header)})",
                    field="corrections",
                )


def _target(current: Import, header_name: str) -> str:
    """The importer column a CSV header feeds (explicit mapping, else the same name)."""
    for source, target in current.mapping.items():
        if source.strip().casefold() == header_name.strip().casefold():
            return target
    return header_name.strip().casefold()


def summary(found: Import) -> dict[str, Any]:
    """An import's outcome as a job result: status and totals."""
    result: dict[str, Any] = {
        "import_id": str(found.id),
        "status": found.status.value,
        "rows": found.rows,
        "succeeded": found.succeeded,
        "failed": found.failed,
    }
    if found.failure:
        result["failure"] = found.failure
    return result


def register_import_command(registry: CommandRegistry, imports: ImportService) -> None:
    """Add the `chronicle:import` system command that runs an import on a worker."""

    def run_import(context: CommandContext, import_id: str) -> dict[str, Any]:
        """Run an import (started through the API or `chronicle import`)."""
        try:
            parsed = UUID(import_id)
        except ValueError:
            raise ValidationError(f"invalid import id {import_id!r}", field="import_id") from None
        return imports.run(parsed, context)

    registry.register(IMPORT_COMMAND, run_import)
