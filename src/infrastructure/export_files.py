"""Export files on disk: streaming CSV and XLSX writers and the folder downloads are served from."""

from __future__ import annotations

import csv
import math
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Literal
from uuid import UUID
from xml.sax.saxutils import escape

from application.exports.exporters import ExportColumn, ExportRow, neutralise
from application.exports.service import WrittenFile
from domain.shared import NotFoundError, ValidationError, require_utc

__all__ = [
    "XLSX_MAX_COLUMNS",
    "XLSX_MAX_ROWS",
    "XLSX_MAX_TEXT",
    "ExportFileStore",
    "ExportFormat",
    "ExportResult",
    "FileStore",
    "column_letters",
    "write_csv",
    "write_xlsx",
]

ExportFormat = Literal["csv", "xlsx"]

#: Excel's sheet limits; a file beyond them opens truncated or "repaired", so we refuse instead.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_COLUMNS = 16_384
#: Excel's longest cell text; longer text makes Excel "repair" (drop) the whole sheet.
XLSX_MAX_TEXT = 32_767
#: Beyond 2**53 a float (all Excel has) no longer holds every integer, so such ints go as text.
_EXACT_FLOAT_INT = 2**53

_FLUSH_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What a writer produced: data rows written (header excluded) and file size in bytes."""

    rows: int
    size: int


def _text(value: object) -> str | None:
    """The text a non-numeric cell shows, or None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    # Dates and times go as ISO 8601 text: unambiguous, sortable and free of the 1900/1904
    # epoch and timezone questions an Excel serial date would raise.
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _number(value: object) -> str | None:
    """The lexical form of a cell that is a real number, or None when it is not one."""
    # bool is an int subclass but is a cell type of its own.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    return None


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _finish(partial: Path, path: Path, rows: int) -> ExportResult:
    # Written beside the target and renamed when complete, so a download never sees half a file.
    partial.replace(path)
    return ExportResult(rows=rows, size=path.stat().st_size)


# --- CSV ---------------------------------------------------------------------------------------


def _csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _number(value)
    if number is not None:
        return number
    text = _text(value)
    # Non-finite floats ("-inf") are text too, and neutralised like any other text.
    return "" if text is None else neutralise(text)


def write_csv(
    path: Path, columns: Sequence[ExportColumn], rows: Iterable[ExportRow]
) -> ExportResult:
    """Stream rows to a UTF-8 CSV (with BOM, CRLF, minimal quoting) and report what was written."""
    partial = _partial(path)
    count = 0
    try:
        # The BOM is how Excel knows the file is UTF-8 rather than the local ANSI code page.
        with partial.open("w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.writer(stream, dialect="excel", lineterminator="\r\n")
            writer.writerow([neutralise(column.header) for column in columns])
            for row in rows:
                writer.writerow([_csv_cell(row.get(column.name)) for column in columns])
                count += 1
        return _finish(partial, path, count)
    finally:
        partial.unlink(missing_ok=True)


# --- XLSX --------------------------------------------------------------------------------------

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"

_CONTENT_TYPES = (
    _XML_DECLARATION
    + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SHEET_TYPE}.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    f'ContentType="{_SHEET_TYPE}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_SHEET_TYPE}.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML_DECLARATION + f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    _XML_DECLARATION + f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
    '<sheets><sheet name="Export" sheetId="1" r:id="rId1"/></sheets>'
    "</workbook>"
)
_WORKBOOK_RELS = (
    _XML_DECLARATION + f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Excel requires the two default fills (none, gray125); style 1 is the bold header.
_STYLES = (
    _XML_DECLARATION + f'<styleSheet xmlns="{_MAIN_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# The header row stays frozen in view while scrolling.
_SHEET_START = (
    _XML_DECLARATION + f'<worksheet xmlns="{_MAIN_NS}">'
    '<sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    "</sheetView></sheetViews><sheetData>"
)
_SHEET_END = "</sheetData></worksheet>"

# Characters XML 1.0 allows; anything else (most C0 controls, lone surrogates, U+FFFE/FFFF)
# makes the sheet unreadable, so it is dropped.
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Excel decodes `_xHHHH_` in cell text as an escaped character; escaping the underscore keeps
# such text literal (the same rule XlsxWriter applies).
_EXCEL_ESCAPE = re.compile("_(x[0-9A-Fa-f]{4}_)")


def column_letters(index: int) -> str:
    """Spreadsheet column name of a zero-based index: 0 → A, 25 → Z, 26 → AA."""
    if index < 0:
        raise ValueError("column index must not be negative")
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _xlsx_text(text: str, *, guard: bool = True) -> str:
    text = _ILLEGAL_XML.sub("", text)
    text = (neutralise(text) if guard else text)[:XLSX_MAX_TEXT]
    # XML parsers turn a raw carriage return into a line feed; a character reference keeps it.
    return escape(_EXCEL_ESCAPE.sub(r"_x005F_\1", text), {"\r": "&#13;"})


def _inline(ref: str, text: str, style: str = "") -> str:
    return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _xlsx_cell(ref: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    number = _number(value)
    if number is None:
        return _inline(ref, _xlsx_text(_text(value) or ""))
    if isinstance(value, int) and abs(value) > _EXACT_FLOAT_INT:
        # Still a number, so never neutralised, even when negative.
        return _inline(ref, _xlsx_text(number, guard=False))
    return f'<c r="{ref}"><v>{number}</v></c>'


def write_xlsx(
    path: Path, columns: Sequence[ExportColumn], rows: Iterable[ExportRow]
) -> ExportResult:
    """Stream rows to a one-sheet XLSX with inline strings and report what was written."""
    if len(columns) > XLSX_MAX_COLUMNS:
        raise ValidationError(
            f"an xlsx sheet holds at most {XLSX_MAX_COLUMNS} columns, not {len(columns)}",
            field="columns",
        )
    letters = [column_letters(index) for index in range(len(columns))]
    partial = _partial(path)
    count = 0
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
            archive.writestr("_rels/.rels", _ROOT_RELS)
            archive.writestr("xl/workbook.xml", _WORKBOOK)
            archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
            archive.writestr("xl/styles.xml", _STYLES)
            # Inline strings and a member written as rows arrive keep memory flat: no
            # shared-strings table, no sheet held whole before compressing.
            with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
                count = _write_sheet(sheet, columns, letters, rows)
        return _finish(partial, path, count)
    finally:
        partial.unlink(missing_ok=True)


def _write_sheet(
    sheet: IO[bytes],
    columns: Sequence[ExportColumn],
    letters: Sequence[str],
    rows: Iterable[ExportRow],
) -> int:
    buffer: list[str] = [_SHEET_START, '<row r="1">']
    buffer.extend(
        _inline(f"{letter}1", _xlsx_text(column.header), ' s="1"')
        for letter, column in zip(letters, columns, strict=True)
    )
    buffer.append("</row>")
    size = 0
    count = 0
    for count, row in enumerate(rows, start=1):
        number = count + 1
        if number > XLSX_MAX_ROWS:
            raise ValidationError(
                f"an xlsx sheet holds at most {XLSX_MAX_ROWS - 1} rows; export as csv instead",
                field="format",
            )
        cells = "".join(
            _xlsx_cell(f"{letter}{number}", row.get(column.name))
            for letter, column in zip(letters, columns, strict=True)
        )
        line = f'<row r="{number}">{cells}</row>'
        buffer.append(line)
        size += len(line)
        # Small writes each pass through the compressor; batching them is much faster.
        if size >= _FLUSH_BYTES:
            sheet.write("".join(buffer).encode())
            buffer.clear()
            size = 0
    buffer.append(_SHEET_END)
    sheet.write("".join(buffer).encode())
    return count


# --- File store --------------------------------------------------------------------------------


class FileStore:
    """The folder export files live in; downloads can never reach outside it."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._root = root.resolve(strict=True)

    @property
    def root(self) -> Path:
        """The resolved storage folder."""
        return self._root

    def path_for(self, export_id: UUID, fmt: ExportFormat) -> Path:
        """Where the file of an export in the given format is written."""
        if fmt not in {"csv", "xlsx"}:
            raise ValidationError(f"unknown export format {fmt!r}; use csv or xlsx", field="format")
        return self._root / f"{export_id}.{fmt}"

    def open_download(self, relative_name: str) -> Path:
        """The file a download may serve, after refusing any name that leaves the root."""
        if not relative_name or "\x00" in relative_name:
            raise ValidationError("invalid file name", field="file")
        # Both path flavours, so `C:\x` or `\\host\x` is refused whichever OS we run on.
        if (
            PurePosixPath(relative_name).is_absolute()
            or PureWindowsPath(relative_name).is_absolute()
            or PureWindowsPath(relative_name).drive
            or relative_name.startswith(("/", "\\"))
        ):
            raise ValidationError("file name must be relative to the export folder", field="file")
        if ".." in PureWindowsPath(relative_name).parts:
            raise ValidationError("file name must not contain '..'", field="file")
        # Resolving follows symlinks, so a link inside the root that points out is caught here.
        candidate = (self._root / relative_name).resolve(strict=False)
        if not candidate.is_relative_to(self._root) or candidate == self._root:
            raise ValidationError("file name leaves the export folder", field="file")
        if not candidate.is_file():
            raise NotFoundError(f"export file {relative_name!r} does not exist")
        return candidate

    def remove_older_than(self, age: timedelta, now: datetime) -> list[Path]:
        """Delete files last written at least `age` before `now`; return what was removed."""
        if age < timedelta(0):
            raise ValidationError("retention must not be negative", field="age")
        cutoff = require_utc(now, "now") - age
        removed: list[Path] = []
        with os.scandir(self._root) as entries:
            for entry in entries:
                # Only regular files the store wrote; a symlink is never followed for deletion.
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    continue
                if datetime.fromtimestamp(info.st_mtime, UTC) <= cutoff:
                    path = Path(entry.path)
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return sorted(removed)


_WRITERS = {"csv": write_csv, "xlsx": write_xlsx}


class ExportFileStore:
    """ExportFiles on a local (or shared, mounted) folder: `<export id>.<format>` files."""

    def __init__(self, root: Path) -> None:
        self._store = FileStore(root)

    @property
    def root(self) -> Path:
        return self._store.root

    def write(
        self,
        export_id: UUID,
        fmt: str,
        columns: Sequence[ExportColumn],
        rows: Iterable[ExportRow],
    ) -> WrittenFile:
        known: ExportFormat = "xlsx" if fmt == "xlsx" else "csv"
        if fmt != known:
            raise ValidationError(f"unknown export format {fmt!r}; use csv or xlsx", field="format")
        path = self._store.path_for(export_id, known)
        result = _WRITERS[known](path, columns, rows)
        return WrittenFile(name=path.name, rows=result.rows, size=result.size)

    def path(self, name: str) -> Path:
        return self._store.open_download(name)

    def remove(self, name: str) -> None:
        try:
            path = self._store.open_download(name)
        except NotFoundError:
            return
        path.unlink(missing_ok=True)

    def remove_older_than(self, age: timedelta, now: datetime) -> list[str]:
        return [path.name for path in self._store.remove_older_than(age, now)]
