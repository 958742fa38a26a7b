"""`/imports`: the imports of the tenant, one import's totals and live progress, and its
failed rows with each error on the column it concerns.

Pages read the imports read model only (`chronicle.import_queries`), as the API's lists do:
a page view never replays an import's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from application.imports.importers import ROW_ERROR
from application.imports.service import EXTRA_FIELDS, RAW_TEXT, import_job_id
from application.imports.view import FailedImportRow, ImportFilter, ImportRow
from application.reads.read_your_writes import not_found
from domain.data_import import ImportStatus
from domain.shared import ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.dependencies import parse_id
from interfaces.http.imports import MAX_ROW_NUMBER, ImportId, ImportView, row_view
from interfaces.web.pages import PAGE_OPT, page_context

#: Imports a page of the list shows.
PAGE_SIZE = 50
#: Failed rows a page shows (as the API's default).
ROWS_PAGE_SIZE = 100
STATUSES = [status.value for status in ImportStatus]
#: How the failed-rows table names the columns that are not the file's own.
_SPECIAL_COLUMNS = {EXTRA_FIELDS: "Extra fields", RAW_TEXT: "Raw text"}
#: The API's handlers for these (app level) would answer JSON: named on the controllers, the
#: page's win, and a missing or malformed import or export is the error page with the API's
#: status.


def human_size(size: int | None) -> str:
    """Bytes as `512 B`, `12.3 KB`, `4.0 MB`."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def find_import(chronicle: Chronicle, tenant: str, raw_id: str) -> ImportRow:
    """The tenant's import from the read model; another tenant's is not found."""
    import_id = parse_id(raw_id, "import")
    row = chronicle.import_queries.get_import(tenant, import_id)
    if row is None:
        raise not_found("import", import_id)
    return row


def importer_columns(header: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Importer column → the CSV column that feeds it (the mapping first, else the column of
    the same name, as the importer matches them)."""
    mapped = {source.strip().casefold(): target for source, target in mapping.items()}
    columns: dict[str, str] = {}
    for name in header:
        target = mapped.get(name.strip().casefold(), name.strip().casefold())
        columns.setdefault(target, name)
    return columns


@dataclass(frozen=True)
class Cell:
    """One value of a failed row, with the error of its column if it has one."""

    value: str
    error: str | None


@dataclass(frozen=True)
class FailedRowLine:
    """A failed row as the table shows it: a cell per column, and the errors of no column."""

    number: int
    cells: list[Cell]
    row_errors: list[str]
    passed: bool
    row: FailedImportRow


def failed_row_lines(
    row: ImportRow, failed: list[FailedImportRow]
) -> tuple[list[str], list[FailedRowLine]]:
    """The table's columns (the file's own, then extra or raw fields when a row has them) and
    its lines, each error placed on the cell of the column it concerns."""
    extra = [key for key in _SPECIAL_COLUMNS if any(key in item.data for item in failed)]
    keys = [*row.header, *extra]
    by_importer = importer_columns(row.header, row.mapping)
    lines = []
    for item in failed:
        on_cell: dict[str, str] = {}
        elsewhere: list[str] = []
        for column, message in item.errors.items():
            target = column if column in row.header else by_importer.get(column)
            if column == ROW_ERROR or target is None:
                elsewhere.append(message if column == ROW_ERROR else f"{column}: {message}")
            else:
                on_cell[target] = f"{on_cell[target]}; {message}" if target in on_cell else message
        cells = [Cell(item.data.get(key, ""), on_cell.get(key)) for key in keys]
        lines.append(FailedRowLine(item.number, cells, elsewhere, item.passed, item))
    headings = [*row.header, *(_SPECIAL_COLUMNS[key] for key in extra)]
    return headings, lines


def _status(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw not in STATUSES:
        raise ValidationError(
            f"status must be one of {', '.join(STATUSES)}, got {raw[:50]!r}", field="status"
        )
    return raw


def _after(raw: str | None) -> int:
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ROW_NUMBER:
        raise ValidationError(
            f"after must be a row number from 0 to {MAX_ROW_NUMBER}, got {raw[:50]!r}",
            field="after",
        )
    return int(raw)


def _detail_context(view: ImportView) -> dict[str, Any]:
    return {
        "item": view,
        "job_href": f"/jobs/{import_job_id(view.id)}",
        "processing": view.status == ImportStatus.PROCESSING.value,
        "human_size": human_size,
    }


class ImportPages(Controller):
    """The imports list, one import, its failed rows."""

    include_in_schema = False
    opt = PAGE_OPT

    @get("/imports", sync_to_thread=True)
    def list_imports(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[str | None, QueryParameter(required=False)] = None,
        importer: Annotated[str | None, QueryParameter(required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        rows, next_cursor = chronicle.import_queries.list_imports(
            ImportFilter(request.state.tenant, status=_status(status), importer=importer or None),
            limit=PAGE_SIZE,
            cursor=cursor or None,
        )
        items = [row_view(row) for row in rows]
        return Template(
            "imports/list.html",
            context=page_context(
                request,
                items=items,
                next_cursor=next_cursor,
                statuses=STATUSES,
                importers=chronicle.imports.importers.names(),
                processing=any(item.status == ImportStatus.PROCESSING.value for item in items),
            ),
        )

    @get("/imports/{import_id:str}", sync_to_thread=True)
    def show_import(self, request: Request[Any, Any, Any], import_id: ImportId) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        view = row_view(find_import(chronicle, request.state.tenant, import_id))
        return Template(
            "imports/detail.html", context=page_context(request, **_detail_context(view))
        )

    @get("/imports/{import_id:str}/failed-rows", sync_to_thread=True)
    def failed_rows(
        self,
        request: Request[Any, Any, Any],
        import_id: ImportId,
        after: Annotated[str | None, QueryParameter(required=False)] = None,
        include_passed: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant = request.state.tenant
        row = find_import(chronicle, tenant, import_id)
        with_passed = include_passed in {"1", "true", "on", "yes"}
        start = _after(after)
        found = chronicle.import_queries.failed_rows(
            tenant, row.id, limit=ROWS_PAGE_SIZE + 1, after=start, include_passed=with_passed
        )
        more = len(found) > ROWS_PAGE_SIZE
        found = found[:ROWS_PAGE_SIZE]
        headings, lines = failed_row_lines(row, found)
        return Template(
            "imports/failed_rows.html",
            context=page_context(
                request,
                **_detail_context(row_view(row)),
                headings=headings,
                lines=lines,
                next_after=found[-1].number if more else None,
                after=start,
                include_passed=with_passed,
            ),
        )


PAGES = [ImportPages]
