"""An import as of at least a write, and its failed rows (see `ImportReads`)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from uuid import UUID

from application.event_log import LoggedEvent
from application.exports.exporters import neutralise
from application.imports.service import EXTRA_FIELDS, RAW_TEXT
from application.imports.view import FailedImportRow, ImportRow, ImportsProjection, ImportsQueries
from application.reads.read_your_writes import Current, ReadYourWrites, replay
from domain.data_import import ImportStatus

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: Failed rows read per query while writing them as CSV.
_CSV_PAGE = 1000


class _OneImport:
    """An ImportsWriter that keeps one import's row in memory, with the SQL writer's rules
    (its failed rows are read from the read model only)."""

    def __init__(self) -> None:
        self.row: ImportRow | None = None

    def insert_import(self, row: ImportRow) -> None:
        self.row = row

    def add_chunk(
        self,
        import_id: UUID,  # noqa: ARG002 - one import only
        rows_ok: int,
        failed: int,
        bytes_read: int,
        at: datetime,
        *,
        version: int,
    ) -> None:
        if self.row is not None:
            self.row = dataclasses.replace(
                self.row,
                rows=self.row.rows + rows_ok + failed,
                succeeded=self.row.succeeded + rows_ok,
                failed=self.row.failed + failed,
                chunks=self.row.chunks + 1,
                bytes_read=bytes_read,
                updated_at=at,
                version=version,
            )

    def finish(
        self,
        import_id: UUID,  # noqa: ARG002
        status: str,
        failure: str | None,
        at: datetime,
        *,
        version: int,
    ) -> None:
        if self.row is not None:
            self.row = dataclasses.replace(
                self.row,
                status=status,
                failure=failure,
                finished_at=at,
                updated_at=at,
                version=version,
            )

    def tenant_of(self, import_id: UUID) -> str | None:  # noqa: ARG002
        return None if self.row is None else self.row.tenant

    def put_failed_rows(self, tenant: str, rows: Sequence[FailedImportRow]) -> None:
        """Failed rows are listed from the read model, page by page."""

    def pass_rows(
        self,
        import_id: UUID,  # noqa: ARG002
        numbers: Sequence[int],
        at: datetime,
        *,
        version: int,
    ) -> None:
        if self.row is not None:
            failed = self.row.failed - len(numbers)
            self.row = dataclasses.replace(
                self.row,
                succeeded=self.row.succeeded + len(numbers),
                failed=failed,
                status=(
                    ImportStatus.COMPLETED_WITH_FAILURES.value
                    if failed > 0
                    else ImportStatus.COMPLETED.value
                ),
                last_retry_at=at,
                updated_at=at,
                version=version,
            )


def failed_rows_columns(header: list[str]) -> tuple[str, str]:
    """Names of the row-number and error columns that do not clash with the file's own."""
    names = {name.casefold() for name in header}
    row = "row" if "row" not in names else "_row"
    error = "error" if "error" not in names else "_error"
    return row, error


def _cell(value: str) -> str:
    # Numbers such as "-5" stay as they are (they are not formulas); other text that a
    # spreadsheet would evaluate gets the apostrophe that keeps it text.
    return value if _NUMBER.fullmatch(value) else neutralise(value)


class ImportReads:
    """Imports as HTTP, the CLI and the dashboard read them; the list is on `ImportsQueries`."""

    def __init__(self, reads: ReadYourWrites, queries: ImportsQueries) -> None:
        self._reads = reads
        self._queries = queries

    def get(
        self, tenant: str, import_id: UUID, *, at_least: int | None = None
    ) -> Current[ImportRow]:
        """The import as of at least version `at_least` (by default its current one).
        Another tenant's import, or an id that is not an import's, is not found."""

        def own(events: Sequence[LoggedEvent], _: ImportRow | None) -> ImportRow | None:
            found = replay(ImportsProjection(), events, _OneImport()).row
            return found if found is not None and found.tenant == tenant else None

        stored = self._queries.get_import(tenant, import_id)
        return self._reads.read("import", import_id, stored, own, at_least=at_least)

    def failed_rows(
        self,
        tenant: str,
        import_id: UUID,
        *,
        limit: int,
        after: int = 0,
        include_passed: bool = False,
    ) -> list[FailedImportRow]:
        """Failed rows of the import by row number, after row `after` (not found: an error)."""
        self.get(tenant, import_id)
        return self._queries.failed_rows(
            tenant, import_id, limit=limit, after=after, include_passed=include_passed
        )

    def failed_rows_csv(self, tenant: str, found: ImportRow) -> Iterator[bytes]:
        """The failed rows of `found` as CSV (UTF-8 with a BOM), page by page: the row
        number, the file's own columns, and an `error` column."""
        row_column, error_column = failed_rows_columns(found.header)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([row_column, *(neutralise(name) for name in found.header), error_column])
        yield ("\ufeff" + buffer.getvalue()).encode()
        after = 0
        while True:
            page = self._queries.failed_rows(tenant, found.id, limit=_CSV_PAGE, after=after)
            if not page:
                return
            buffer.seek(0)
            buffer.truncate()
            for failed in page:
                error = failed.error
                extra = failed.data.get(EXTRA_FIELDS) or failed.data.get(RAW_TEXT)
                if extra:
                    error = f"{error} (unplaced values: {extra})"
                cells = [_cell(failed.data.get(name, "")) for name in found.header]
                writer.writerow([failed.number, *cells, _cell(error)])
            yield buffer.getvalue().encode()
            after = page[-1].number
