"""Unit tests for streaming CSV parsing: each real-file case with its row numbers and errors."""

from __future__ import annotations

import csv
import io
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from application.exports.exporters import FORMULA_PREFIXES, neutralise
from application.imports.csv_reader import CsvFileError, ParsedRow, read_rows, split_values


def parse(data: bytes, **options: object) -> tuple[list[str], str, list[ParsedRow]]:
    csv_file = read_rows(io.BytesIO(data), **options)  # type: ignore[arg-type]
    return csv_file.header, csv_file.delimiter, list(csv_file)


def rows_of(data: bytes, **options: object) -> list[tuple[int, list[str] | None, str | None]]:
    return [(row.number, row.values, row.error) for row in parse(data, **options)[2]]


class GeneratedStream(io.RawIOBase):
    """A read-only binary stream whose bytes come from a generator, never held whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def test_plain_lf_file_numbers_rows_from_line_two():
    header, delimiter, rows = parse(b"name,email\nAda,ada@example.com\nBob,bob@example.com\n")
    assert header == ["name", "email"]
    assert delimiter == ","
    assert [(r.number, r.values, r.raw, r.error) for r in rows] == [
        (2, ["Ada", "ada@example.com"], "Ada,ada@example.com", None),
        (3, ["Bob", "bob@example.com"], "Bob,bob@example.com", None),
    ]


def test_bom_is_stripped_from_the_first_column_name():
    header, _, rows = parse(b"\xef\xbb\xbfname,age\r\nAda,36\r\n")
    assert header == ["name", "age"]
    assert rows[0].values == ["Ada", "36"]


def test_crlf_lf_and_mixed_line_endings_give_the_same_rows():
    expected = [(2, ["a", "1"], None), (3, ["b", "2"], None)]
    assert rows_of(b"x,y\r\na,1\r\nb,2\r\n") == expected
    assert rows_of(b"x,y\na,1\nb,2\n") == expected
    assert rows_of(b"x,y\r\na,1\nb,2\r\n") == expected
    assert rows_of(b"x,y\na,1\r\nb,2") == expected  # no newline at the end


def test_quoted_fields_keep_delimiters_doubled_quotes_and_newlines():
    data = (
        b'name,notes,age\n"Lovelace, Ada","said ""hi""",36\n'
        b'"Bob","line one\nline two\r\nline three",40\nCy,plain,50\n'
    )
    assert rows_of(data) == [
        (2, ["Lovelace, Ada", 'said "hi"', "36"], None),
        (3, ["Bob", "line one\nline two\r\nline three", "40"], None),
        (6, ["Cy", "plain", "50"], None),  # the multi-line row used lines 3 to 5
    ]


def test_semicolon_is_detected_from_the_header_outside_quotes():
    header, delimiter, rows = parse(b'"a,b";c;d\n1;"2,5";3\n')
    assert delimiter == ";"
    assert header == ["a,b", "c", "d"]
    assert rows[0].values == ["1", "2,5", "3"]


def test_comma_wins_a_tie_and_a_given_delimiter_is_used():
    assert parse(b"a\n1\n")[1] == ","
    header, delimiter, rows = parse(b"a;b,c\n1;2,3\n", delimiter=";")
    assert (header, delimiter, rows[0].values) == (["a", "b,c"], ";", ["1", "2,3"])
    with pytest.raises(CsvFileError, match="invalid delimiter"):
        read_rows(io.BytesIO(b"a\n"), delimiter="::")


def test_empty_lines_are_skipped_and_numbering_still_counts_them():
    data = b"\n\r\nname,age\n\nAda,36\n   \n\r\nBob,40\n\n"
    header, _, rows = parse(data)
    assert header == ["name", "age"]
    assert [(r.number, r.values) for r in rows] == [(5, ["Ada", "36"]), (8, ["Bob", "40"])]


def test_too_many_or_too_few_fields_is_a_row_error_not_a_crash():
    data = b"a,b,c,d\n1,2,3,4\n1,2,3,4,5,6\n1,2\n5,6,7,8\n"
    assert rows_of(data) == [
        (2, ["1", "2", "3", "4"], None),
        (3, None, "expected 4 fields, got 6"),
        (4, None, "expected 4 fields, got 2"),
        (5, ["5", "6", "7", "8"], None),
    ]


def test_a_field_over_the_limit_is_a_row_error():
    data = b"name,notes\nAda," + b"x" * 101 + b"\nBob,ok\n"
    assert rows_of(data, max_field_chars=100) == [
        (2, None, "field 'notes' is longer than 100 characters (101)"),
        (3, ["Bob", "ok"], None),
    ]


def test_a_huge_quoted_field_is_skipped_to_its_row_end_with_memory_bounded():
    # A 5 MB quoted field over many lines: far past the cap of 2 * (2 * 100 + 3) characters.
    def generate() -> Iterator[bytes]:
        yield b'notes,n\n"'
        for _ in range(5_000):
            yield b"y" * 999 + b"\n"
        yield b'",1\nnext,2\n'

    tracemalloc.start()
    try:
        rows = list(read_rows(GeneratedStream(generate()), max_field_chars=100))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.number, r.values) for r in rows] == [(2, None), (5003, ["next", "2"])]
    assert rows[0].error == (
        "row is longer than 406 characters (a field is too long or quoting is broken)"
    )
    assert len(rows[0].raw) == 1_000  # only the head is kept
    assert peak < 1_000_000, f"peak traced memory {peak:,} bytes"  # the field is 5 MB


def test_unterminated_quote_at_the_end_is_a_row_error():
    assert rows_of(b'a,b\n1,2\n"open,3\n4,5\n') == [
        (2, ["1", "2"], None),
        (3, None, "unterminated quoted field (the row starts on line 3)"),
    ]


def test_text_after_a_closing_quote_is_a_row_error():
    [(number, values, error)] = rows_of(b'a,b\n"x"y,1\n')
    assert (number, values) == (2, None)
    assert error is not None
    assert error.startswith("malformed quoting:")


def test_invalid_utf8_in_a_row_names_its_byte_offset_and_line():
    header, _, rows = parse(b"name;email\nA;b\n\xff;c\nlast;row")
    assert header == ["name", "email"]
    assert [(r.number, r.values, r.error) for r in rows] == [
        (2, ["A", "b"], None),
        (3, None, "invalid utf-8 byte 0xFF at byte offset 15 (line 3, column 1)"),
        (4, ["last", "row"], None),
    ]
    assert rows[1].raw == "\ufffd;c"  # storable text, the bad byte shown as U+FFFD


def test_invalid_utf8_offset_counts_the_bom_and_multibyte_characters():
    data = b"\xef\xbb\xbfname\n\xc3\xa9t\xc3\xa9\nok\xc3\n"
    rows = parse(data)[2]
    # BOM (3) + "name\n" (5) + "été\n" (6) + "ok" (2) = 16
    assert rows[1].error == "invalid utf-8 byte 0xC3 at byte offset 16 (line 3, column 3)"


def test_invalid_utf8_in_the_header_is_a_file_error():
    with pytest.raises(CsvFileError, match=r"header is not valid utf-8: .*0xFE at byte offset 2"):
        read_rows(io.BytesIO(b"na\xfeme,email\nA,b\n"))


def test_duplicate_and_empty_column_names_are_file_errors():
    with pytest.raises(CsvFileError, match="duplicate column names: Email, Name"):
        read_rows(io.BytesIO(b"name,email,Email,Name\n"))
    with pytest.raises(CsvFileError, match="empty column names at positions 2, 4"):
        read_rows(io.BytesIO(b"name, ,age,\n"))


def test_empty_file_or_only_blank_lines_is_a_file_error():
    for data in (b"", b"\xef\xbb\xbf", b"\n\r\n  \n"):
        with pytest.raises(CsvFileError, match="the file is empty"):
            read_rows(io.BytesIO(data))


def test_header_only_file_has_no_rows():
    assert parse(b"name,email\n") == (["name", "email"], ",", [])


def test_multibyte_characters_split_across_chunks_decode_correctly():
    text = "name\n" + "é" * 70_000 + "\n"  # 140,001 bytes: a chunk boundary falls mid-character
    rows = parse(text.encode(), max_field_chars=100_000)[2]
    assert rows[0].values == ["é" * 70_000]
    assert rows[0].error is None


def test_rows_stream_with_flat_memory():
    # 200,000 rows keep this a unit test: tracemalloc slows parsing ~6x (1,000,000 rows parse in
    # ~4 s untraced; benchmarks/import.py shows the full-size run). Memory does not depend on it.
    count = 200_000

    def generate() -> Iterator[bytes]:
        yield b"name,email,age,country\n"
        batch = []
        for index in range(count):
            batch.append(f"Person {index},p{index}@example.com,{index % 100},DE\n")
            if len(batch) == 10_000:
                yield "".join(batch).encode()
                batch = []
        yield "".join(batch).encode()

    started = time.perf_counter()
    tracemalloc.start()
    try:
        seen = errors = 0
        last = 0
        for row in read_rows(io.BufferedReader(GeneratedStream(generate()))):
            seen += 1
            errors += row.error is not None
            last = row.number
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (seen, errors, last) == (count, 0, count + 1)
    assert peak < 4_000_000, f"peak traced memory {peak:,} bytes"
    assert time.perf_counter() - started < 60


def test_rows_after_a_malformed_one_still_parse():
    """One csv reader serves the whole file: an error in a row must not leak into the next."""
    data = b'a,b,c\n1,"x"y,3\n4,"q\nr",6\n7,"""z""",9\n'
    rows = list(read_rows(io.BytesIO(data)))
    assert rows[0].values is None
    assert rows[0].error is not None
    assert rows[0].error.startswith("malformed quoting:")
    assert [(row.number, row.values) for row in rows[1:]] == [
        (3, ["4", "q\nr", "6"]),
        (5, ["7", '"z"', "9"]),
    ]


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_a_neutralised_value_reads_back_as_it_was_written(prefix: str):
    """The `'` that formula neutralisation adds is not data: reading removes exactly it."""
    typed = [f"{prefix}Minus Sign", "+39 06 1234", "=not a formula", "@handle"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["a", "b", "c", "d"])
    writer.writerow([neutralise(value) for value in typed])
    _, _, rows = parse(out.getvalue().encode())
    assert [row.values for row in rows] == [typed]


def test_only_an_apostrophe_before_a_neutralised_character_is_removed():
    data = b"a,b,c,d,e,f\n'Tis,'quoted',it's,',''=x,' -1\n'-5,'@x,\"'\t\",\"'\r\",-5,'123\n"
    assert rows_of(data) == [
        (2, ["'Tis", "'quoted'", "it's", "'", "''=x", "' -1"], None),
        (3, ["-5", "@x", "\t", "\r", "-5", "'123"], None),
    ]


def test_the_mark_is_removed_from_a_row_with_the_wrong_number_of_fields_too():
    assert split_values("'-Minus,'+39,'Tis,x", ",") == ["-Minus", "+39", "'Tis", "x"]


def test_the_mark_is_removed_from_column_names_too():
    header, _, rows = parse(b"'=total,'Tis\n1,2\n")
    assert header == ["=total", "'Tis"]
    assert [row.values for row in rows] == [["1", "2"]]
