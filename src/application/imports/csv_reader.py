"""Streaming CSV parsing that survives real files: BOM, CRLF, quotes, `;`, bad bytes, huge cells."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from application.exports.exporters import FORMULA_MARK, remove_formula_mark

__all__ = ["CHUNK_BYTES", "CsvFile", "CsvFileError", "ParsedRow", "read_rows", "split_values"]

CHUNK_BYTES = 64 * 1024
#: How much of an oversized row is kept as its `raw` text, so failed rows stay small.
RAW_KEEP_CHARS = 1_000
_HEADER_CAP_CHARS = 1_000_000
_QUOTED = re.compile(r'"(?:[^"]|"")*"?')
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


class CsvFileError(ValueError):
    """The file as a whole cannot be read (no header, bad header, bad bytes in the header)."""


# Named tuples, not frozen dataclasses: one of each is made per row, and a frozen
# dataclass's __init__ costs several times more.
class ParsedRow(NamedTuple):
    """One data row: its first line number, its values or the error that prevents them."""

    number: int
    values: list[str] | None
    raw: str
    error: str | None


class _Record(NamedTuple):
    number: int
    text: str
    start_byte: int
    error: str | None


class _Records:
    """Splits decoded text into records (rows), holding at most `cap` characters of one row."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self._bom_bytes = len(codecs.BOM_UTF8) if codecs.lookup(encoding).name == "utf-8" else 0
        self.cap = _HEADER_CAP_CHARS
        self._pieces = self._read_pieces()
        self._line = 0
        self._byte = 0
        #: Whether any undecodable byte was seen yet; until then rows need no check for one.
        self.saw_bad_bytes = False

    def _read_pieces(self) -> Iterator[tuple[str, bool]]:
        """Yield (text, ends_line) pieces; a line longer than a chunk arrives in several pieces."""
        decoder = codecs.getincrementaldecoder(self._encoding)(errors="surrogateescape")
        first = True
        while True:
            data = self._stream.read(CHUNK_BYTES)
            text = decoder.decode(data, final=not data)
            if first and text:
                first = False
                if self._bom_bytes and text.startswith("\ufeff"):
                    text = text[1:]
                    self._byte = self._bom_bytes
            if text:
                if not self.saw_bad_bytes and _ESCAPED_BYTE.search(text):
                    self.saw_bad_bytes = True
                parts = text.split("\n")
                for part in parts[:-1]:
                    yield part, True
                if parts[-1]:
                    yield parts[-1], False
            if not data:
                return

    @property
    def position(self) -> int:
        """Bytes of the file consumed so far (read ahead by at most one line)."""
        return self._byte

    def _byte_length(self, text: str) -> int:
        return len(text) if text.isascii() else len(text.encode(self._encoding, "surrogateescape"))

    def __iter__(self) -> Iterator[_Record]:  # noqa: C901 - one pass; helpers would cost a call per line
        lines: list[str] = []  # completed lines of the current record
        current: list[str] = []  # pieces of the current line
        size = quotes = 0
        start_line = start_byte = 0
        overflow: str | None = None  # the kept head of a record that grew past the cap
        for piece, ends_line in self._pieces:
            if not lines and not current and overflow is None:
                start_line, start_byte = self._line + 1, self._byte
            self._byte += (len(piece) if piece.isascii() else self._byte_length(piece)) + ends_line
            quotes += piece.count('"')
            if overflow is None:
                current.append(piece)
                size += len(piece)
                if size > self.cap:
                    # Stop accumulating: keep a short head for `raw`, skip to the row's end.
                    overflow = ("\n".join([*lines, "".join(current)]))[:RAW_KEEP_CHARS]
                    lines, current = [], []
            if not ends_line:
                continue
            self._line += 1
            if overflow is not None:
                if quotes % 2 == 0:
                    yield _Record(start_line, overflow, start_byte, self._too_long())
                    overflow, size, quotes = None, 0, 0
                continue
            line = current[0] if len(current) == 1 else "".join(current)
            current = []
            if not lines and not line.strip():
                size = quotes = 0  # empty line between rows
                continue
            lines.append(line)
            size += 1
            if quotes % 2 == 0:
                text = lines[0] if len(lines) == 1 else "\n".join(lines)
                yield _Record(start_line, text.removesuffix("\r"), start_byte, None)
                lines, size, quotes = [], 0, 0
        if overflow is not None:
            yield _Record(start_line, overflow, start_byte, self._too_long())
        elif lines or current:
            self._line += 1 if current else 0
            text = "\n".join([*lines, "".join(current)]) if current else "\n".join(lines)
            text = text.removesuffix("\r")
            if text.strip():
                error = (
                    f"unterminated quoted field (the row starts on line {start_line})"
                    if quotes % 2
                    else None
                )
                yield _Record(start_line, text, start_byte, error)

    def _too_long(self) -> str:
        return (
            f"row is longer than {self.cap} characters (a field is too long or quoting is broken)"
        )

    def bad_byte(self, record: _Record) -> str | None:
        """Describe the first byte of `record` that is not valid in the encoding, if any."""
        if not self.saw_bad_bytes:
            return None
        match = _ESCAPED_BYTE.search(record.text)
        if match is None:
            return None
        index = match.start()
        line = record.number + record.text.count("\n", 0, index)
        column = index - record.text.rfind("\n", 0, index)
        offset = record.start_byte + self._byte_length(record.text[:index])
        value = ord(match.group()) - 0xDC00
        return (
            f"invalid {self._encoding} byte 0x{value:02X} at byte offset {offset} "
            f"(line {line}, column {column})"
        )


def _split(text: str, delimiter: str) -> list[str]:
    if '"' not in text:
        return text.split(delimiter)
    rows = list(csv.reader([text], delimiter=delimiter, strict=True))
    if len(rows) != 1:
        raise csv.Error("a line break outside a quoted field")
    return rows[0]


class _Splitter:
    """Splits records with one csv reader for the whole file, fed a record at a time.

    Making a reader per quoted record costs more than parsing it; this one is kept and
    handed each record's text through `__next__`.
    """

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter
        self._feed: list[str] = []
        self._reader = csv.reader(self, delimiter=delimiter, strict=True)

    def __iter__(self) -> _Splitter:
        return self

    def __next__(self) -> str:
        if self._feed:
            return self._feed.pop()
        raise StopIteration

    def split(self, text: str) -> list[str]:
        if '"' not in text:
            return text.split(self.delimiter)
        self._feed.append(text)
        try:
            values = next(self._reader)
        except StopIteration:
            raise csv.Error("unexpected end of data") from None
        finally:
            if self._feed:  # an error before the text was read: drop it
                self._feed.clear()
        return values


def split_values(raw: str, delimiter: str) -> list[str] | None:
    """The fields of a row's raw text, or None when its quoting cannot be read.

    Rows with the wrong number of fields keep their values this way, so an operator can
    correct them column by column.
    """
    try:
        return _unmarked(_split(raw, delimiter), raw)
    except csv.Error:
        return None


def _unmarked(values: list[str], text: str) -> list[str]:
    """`values` without the `'` that formula neutralisation puts before `=`, `+`, `-`, `@`…

    Every CSV Chronicle reads passes here, so a failed-rows or export file fixed in a
    spreadsheet and imported again gives back the values as typed (`-Minus Sign`, not
    `'-Minus Sign`). The test on the row's text keeps rows without an apostrophe free.
    """
    if FORMULA_MARK not in text:
        return values
    return [remove_formula_mark(value) for value in values]


def _detect_delimiter(header_text: str) -> str:
    unquoted = _QUOTED.sub("", header_text)
    return ";" if unquoted.count(";") > unquoted.count(",") else ","


def _safe(text: str) -> str:
    """`text` with undecodable bytes shown as U+FFFD, so it can be stored and shown."""
    return _ESCAPED_BYTE.sub("\ufffd", text)


class CsvFile:
    """A CSV file being read: its header and delimiter, then its rows (iterate once)."""

    def __init__(
        self,
        records: _Records,
        remaining: Iterator[_Record],
        header: list[str],
        delimiter: str,
        max_field_chars: int,
    ) -> None:
        self.header = header
        self.delimiter = delimiter
        self.max_field_chars = max_field_chars
        self._splitter = _Splitter(delimiter)
        self._records = records
        self._iterator = remaining

    def __iter__(self) -> Iterator[ParsedRow]:
        for record in self._iterator:
            yield self._parse(record)

    @property
    def bytes_read(self) -> int:
        """How far into the file reading has got, for progress."""
        return self._records.position

    def _parse(self, record: _Record) -> ParsedRow:
        raw = _safe(record.text) if self._records.saw_bad_bytes else record.text
        if record.error is not None:
            return ParsedRow(record.number, None, raw, record.error)
        bad = self._records.bad_byte(record)
        if bad is not None:
            return ParsedRow(record.number, None, raw, bad)
        try:
            values = self._splitter.split(record.text)
        except csv.Error as exc:
            return ParsedRow(record.number, None, raw, f"malformed quoting: {exc}")
        if len(values) != len(self.header):
            error = f"expected {len(self.header)} fields, got {len(values)}"
            return ParsedRow(record.number, None, raw, error)
        if len(record.text) > self.max_field_chars:
            for name, value in zip(self.header, values, strict=True):
                if len(value) > self.max_field_chars:
                    error = (
                        f"field {name!r} is longer than {self.max_field_chars} characters "
                        f"({len(value)})"
                    )
                    return ParsedRow(record.number, None, raw, error)
        return ParsedRow(record.number, _unmarked(values, record.text), raw, None)


def read_rows(
    stream: BinaryIO,
    *,
    delimiter: str | None = None,
    max_field_chars: int = 100_000,
    encoding: str = "utf-8",
) -> CsvFile:
    """Read the header of `stream` now and return a `CsvFile` whose rows stream lazily."""
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise CsvFileError(f"invalid delimiter {delimiter!r}: use one character such as ',' or ';'")
    if max_field_chars < 1:
        raise ValueError("max_field_chars must be positive")
    if max_field_chars >= csv.field_size_limit():
        # The limit is process-wide; we only ever raise it, and enforce our own limit per row.
        csv.field_size_limit(max_field_chars + 1)
    records = _Records(stream, encoding)
    iterator = iter(records)
    first = next(iterator, None)
    if first is None:
        raise CsvFileError("the file is empty: expected a header line with column names")
    if first.error is not None:
        raise CsvFileError(f"cannot read the header (line {first.number}): {first.error}")
    bad = records.bad_byte(first)
    if bad is not None:
        raise CsvFileError(f"the header is not valid {encoding}: {bad}")
    chosen = delimiter or _detect_delimiter(first.text)
    try:
        header = [remove_formula_mark(name.strip()) for name in _split(first.text, chosen)]
    except csv.Error as exc:
        raise CsvFileError(f"cannot read the header (line {first.number}): {exc}") from None
    _check_header(header)
    # A valid row holds at most one field per column, each quoted with every character doubled.
    records.cap = len(header) * (2 * max_field_chars + 3)
    return CsvFile(records, iterator, header, chosen, max_field_chars)


def _check_header(header: list[str]) -> None:
    empty = [str(index) for index, name in enumerate(header, start=1) if not name]
    if empty:
        raise CsvFileError(f"the header has empty column names at positions {', '.join(empty)}")
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in header:
        key = name.casefold()
        if key in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(key)
    if duplicates:
        raise CsvFileError(f"the header has duplicate column names: {', '.join(duplicates)}")
