"""The Import aggregate: a CSV file imported in chunks, every failed row kept with its error.

An import never stays "processing" forever: it ends completed, completed with failures, or
failed, and says which. Each chunk is recorded once (a chunk recorded twice — a retried
job whose first run did commit — is refused), so totals are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import DEFAULT_TENANT, InvalidTransitionError, ValidationError, require_utc

MAX_CHUNK_SIZE = 50_000


class ImportStatus(StrEnum):
    """Where an import stands."""

    PROCESSING = "processing"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"


@dataclass(frozen=True)
class FailedRow:
    """A row that was not imported: its line number, its data as read, and why."""

    number: int
    data: dict[str, str]
    errors: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "data": self.data, "errors": self.errors}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FailedRow:
        return cls(number=int(raw["number"]), data=dict(raw["data"]), errors=dict(raw["errors"]))


class Import(Aggregate):
    """One upload of one file for one importer."""

    class Started(Aggregate.Created):
        tenant: str
        importer: str
        file_name: str
        file_size: int
        stored_as: str
        header: list[str]
        delimiter: str
        mapping: dict[str, str]
        options: dict[str, Any]
        chunk_size: int
        by: str
        at: datetime

    class ChunkProcessed(Aggregate.Event):
        chunk: int
        first_row: int
        last_row: int
        rows_ok: int
        failed_rows: list[dict[str, Any]]
        bytes_read: int
        at: datetime

    class FailedRowsRetried(Aggregate.Event):
        """Some failed rows ran again (maybe corrected): which passed, which still fail."""

        passed: list[int]
        still_failing: list[dict[str, Any]]
        by: str
        at: datetime

    class Completed(Aggregate.Event):
        status: str
        rows: int
        succeeded: int
        failed: int
        at: datetime

    class Failed(Aggregate.Event):
        reason: str
        at: datetime

    @event(Started)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        importer: str,
        file_name: str,
        file_size: int,
        stored_as: str,
        header: list[str],
        delimiter: str,
        mapping: dict[str, str],
        options: dict[str, Any],
        chunk_size: int,
        by: str,
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.importer = importer
        self.file_name = file_name
        self.file_size = file_size
        self.started_by = by
        self.stored_as = stored_as
        self.header = header
        self.delimiter = delimiter
        self.mapping = mapping
        self.options = options
        self.chunk_size = chunk_size
        self.status = ImportStatus.PROCESSING
        self.started_at = at
        self.finished_at: datetime | None = None
        self.failure: str | None = None
        self.chunks: set[int] = set()
        self.rows = 0
        self.succeeded = 0
        self.failed = 0
        self.bytes_read = 0
        #: The rows that failed and have not passed a retry since: number → data as last tried.
        self.failing: dict[int, dict[str, str]] = {}

    @classmethod
    def start(
        cls,
        *,
        import_id: UUID,
        importer: str,
        file_name: str,
        file_size: int,
        stored_as: str,
        by: str,
        at: datetime,
        header: list[str],
        delimiter: str = ",",
        tenant: str = DEFAULT_TENANT,
        mapping: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        chunk_size: int = 1000,
    ) -> Import:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValidationError(
                f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}", field="chunk_size"
            )
        if file_size < 0:
            raise ValidationError("file_size must not be negative", field="file_size")
        return cls(
            id=import_id,
            tenant=tenant,
            importer=importer,
            file_name=file_name,
            file_size=file_size,
            stored_as=stored_as,
            header=list(header),
            delimiter=delimiter,
            mapping=dict(mapping or {}),
            options=dict(options or {}),
            chunk_size=chunk_size,
            by=by,
            at=require_utc(at, "at"),
        )

    def _require_processing(self) -> None:
        if self.status is not ImportStatus.PROCESSING:
            raise InvalidTransitionError(f"import {self.id} is {self.status}")

    def record_chunk(
        self,
        *,
        chunk: int,
        first_row: int,
        last_row: int,
        rows_ok: int,
        failed_rows: list[FailedRow],
        at: datetime,
        bytes_read: int = 0,
    ) -> None:
        """Record one chunk's outcome; a chunk is counted once, however often it ran."""
        self._require_processing()
        if chunk in self.chunks:
            raise InvalidTransitionError(f"chunk {chunk} of import {self.id} was already recorded")
        if rows_ok < 0 or last_row < first_row:
            raise ValidationError("a chunk covers rows first_row..last_row with rows_ok >= 0")
        self._chunk_processed(
            chunk=chunk,
            first_row=first_row,
            last_row=last_row,
            rows_ok=rows_ok,
            failed_rows=[row.to_dict() for row in failed_rows],
            bytes_read=max(bytes_read, self.bytes_read),
            at=require_utc(at, "at"),
        )

    def record_retry(
        self, *, passed: list[int], still_failing: list[FailedRow], by: str, at: datetime
    ) -> None:
        """Failed rows ran again: `passed` now imported, `still_failing` with their new errors."""
        if self.status not in {ImportStatus.COMPLETED, ImportStatus.COMPLETED_WITH_FAILURES}:
            raise InvalidTransitionError(
                f"import {self.id} is {self.status}: only a finished import's rows can be retried"
            )
        unknown = sorted(({*passed} | {row.number for row in still_failing}) - self.failing.keys())
        if unknown:
            shown = ", ".join(str(number) for number in unknown[:10])
            raise ValidationError(
                f"rows {shown} of import {self.id} are not failing rows", field="rows"
            )
        if set(passed) & {row.number for row in still_failing}:
            raise ValidationError("a row cannot both pass and fail", field="rows")
        self._failed_rows_retried(
            passed=sorted(passed),
            still_failing=[row.to_dict() for row in still_failing],
            by=by,
            at=require_utc(at, "at"),
        )

    def complete(self, *, at: datetime) -> None:
        """Every chunk is in: the import ends, saying whether rows failed."""
        self._require_processing()
        status = ImportStatus.COMPLETED_WITH_FAILURES if self.failed else ImportStatus.COMPLETED
        self._completed(
            status=status.value,
            rows=self.rows,
            succeeded=self.succeeded,
            failed=self.failed,
            at=require_utc(at, "at"),
        )

    def fail(self, *, reason: str, at: datetime) -> None:
        """The file as a whole could not be imported (unreadable, columns missing…)."""
        self._require_processing()
        if not reason.strip():
            raise ValidationError("a failed import needs a reason", field="reason")
        self._failed(reason=reason[:2000], at=require_utc(at, "at"))

    @event(ChunkProcessed)
    def _chunk_processed(
        self,
        *,
        chunk: int,
        first_row: int,
        last_row: int,
        rows_ok: int,
        failed_rows: list[dict[str, Any]],
        bytes_read: int,
        at: datetime,
    ) -> None:
        self.chunks.add(chunk)
        self.succeeded += rows_ok
        self.failed += len(failed_rows)
        self.rows += rows_ok + len(failed_rows)
        self.bytes_read = bytes_read
        self.failing.update((int(row["number"]), dict(row["data"])) for row in failed_rows)

    @event(FailedRowsRetried)
    def _failed_rows_retried(
        self, passed: list[int], still_failing: list[dict[str, Any]], by: str, at: datetime
    ) -> None:
        for number in passed:
            self.failing.pop(number, None)
        self.failing.update((int(row["number"]), dict(row["data"])) for row in still_failing)
        self.succeeded += len(passed)
        self.failed -= len(passed)
        self.status = (
            ImportStatus.COMPLETED_WITH_FAILURES if self.failed else ImportStatus.COMPLETED
        )

    @event(Completed)
    def _completed(self, status: str, rows: int, succeeded: int, failed: int, at: datetime) -> None:
        self.status = ImportStatus(status)
        self.finished_at = at

    @event(Failed)
    def _failed(self, reason: str, at: datetime) -> None:
        self.status = ImportStatus.FAILED
        self.failure = reason
        self.finished_at = at
