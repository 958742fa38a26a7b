"""Export files on disk: CSV and XLSX writers read back, and the file store's boundaries."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4
from xml.etree import ElementTree as ET

import pytest

from application.exports.exporters import ExportColumn, ExportRow
from domain.shared import NotFoundError, ValidationError
from infrastructure.export_files import (
    XLSX_MAX_TEXT,
    FileStore,
    column_letters,
    write_csv,
    write_xlsx,
)

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
COLUMNS = [ExportColumn("name", "Name"), ExportColumn("value", "Value")]
XLSX_MEMBERS = {
    "[Content_Types].xml",
    "_rels/.rels",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
    "xl/worksheets/sheet1.xml",
}
DANGEROUS = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]


def _rows(*values: object) -> list[ExportRow]:
    return [{"name": f"row{index}", "value": value} for index, value in enumerate(values)]


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


Cell = tuple[str | None, str | None]


def _read_sheet(path: Path) -> dict[str, Cell]:
    """Cell reference → (type attribute, value text) from the sheet XML."""
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("xl/worksheets/sheet1.xml"))  # noqa: S314 our own file
    cells: dict[str, Cell] = {}
    for cell in root.iterfind("m:sheetData/m:row/m:c", NS):
        kind = cell.get("t")
        value: str | None
        if kind == "inlineStr":
            text = cell.find("m:is/m:t", NS)
            value = "" if text is None else (text.text or "")
        else:
            v = cell.find("m:v", NS)
            value = None if v is None else v.text
        cells[cell.get("r", "")] = (kind, value)
    return cells


# -- CSV ----------------------------------------------------------------------------------------


def test_csv_has_bom_crlf_header_and_reports_rows_and_size(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    result = write_csv(path, COLUMNS, _rows(1, "two"))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw == b"\xef\xbb\xbfName,Value\r\nrow0,1\r\nrow1,two\r\n"
    assert result.rows == 2
    assert result.size == len(raw)
    assert not list(tmp_path.glob("*.part"))


def test_csv_quotes_commas_quotes_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    values = ["a,b", 'say "hi"', "line1\nline2", "crlf\r\ninside"]
    write_csv(path, COLUMNS, _rows(*values))
    assert [row[1] for row in _read_csv(path)[1:]] == values
    assert b'"say ""hi"""' in path.read_bytes()


@pytest.mark.parametrize("text", DANGEROUS)
def test_csv_neutralises_formula_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, COLUMNS, _rows(text))
    assert _read_csv(path)[1][1] == "'" + text


def test_csv_writes_numbers_and_other_types_untouched(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = [-5, -1.5, Decimal("-2.50"), 0, True, False, None, moment, date(2026, 1, 2)]
    write_csv(path, COLUMNS, _rows(*values))
    assert [row[1] for row in _read_csv(path)[1:]] == [
        "-5",
        "-1.5",
        "-2.50",
        "0",
        "true",
        "false",
        "",
        "2026-01-02T03:04:05+00:00",
        "2026-01-02",
    ]


def test_csv_non_finite_floats_are_text_and_neutralised(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, COLUMNS, _rows(float("-inf"), float("nan")))
    assert [row[1] for row in _read_csv(path)[1:]] == ["'-inf", "nan"]


def test_csv_missing_keys_are_empty_and_extra_keys_ignored(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, COLUMNS, [{"name": "only", "extra": "ignored"}])
    assert _read_csv(path) == [["Name", "Value"], ["only", ""]]


def test_csv_failure_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> Iterator[ExportRow]:
        yield {"name": "a"}
        raise RuntimeError("query failed")

    path = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        write_csv(path, COLUMNS, broken())
    assert list(tmp_path.iterdir()) == []


# -- XLSX ---------------------------------------------------------------------------------------


def test_column_letters() -> None:
    assert [column_letters(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702, 16383)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
        "XFD",
    ]


def test_xlsx_has_required_members_that_all_parse(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    result = write_xlsx(path, COLUMNS, _rows("a", "b"))
    assert result.rows == 2
    assert result.size == path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == XLSX_MEMBERS
        for name in archive.namelist():
            ET.fromstring(archive.read(name))  # noqa: S314 our own file
        assert b"sharedStrings" not in archive.read("[Content_Types].xml")
    assert not list(tmp_path.glob("*.part"))


def test_xlsx_header_row_and_types_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = ["text", 42, -7, 2.5, -0.125, True, False, None, moment, Decimal("1.10"), 2**60]
    write_xlsx(path, COLUMNS, _rows(*values))
    cells = _read_sheet(path)
    assert cells["A1"] == ("inlineStr", "Name")
    assert cells["B1"] == ("inlineStr", "Value")
    assert cells["A2"] == ("inlineStr", "row0")
    assert [cells.get(f"B{row}") for row in range(2, 2 + len(values))] == [
        ("inlineStr", "text"),
        (None, "42"),
        (None, "-7"),
        (None, "2.5"),
        (None, "-0.125"),
        ("b", "1"),
        ("b", "0"),
        None,  # None is no cell at all
        ("inlineStr", "2026-01-02T03:04:05+00:00"),
        (None, "1.10"),
        ("inlineStr", str(2**60)),  # beyond a double's exact range: kept as text
    ]


def test_xlsx_cell_references_past_z(tmp_path: Path) -> None:
    columns = [ExportColumn(f"c{i}", f"H{i}") for i in range(28)]
    path = tmp_path / "wide.xlsx"
    write_xlsx(path, columns, [{f"c{i}": i for i in range(28)}])
    cells = _read_sheet(path)
    assert cells["Z1"] == ("inlineStr", "H25")
    assert cells["AA1"] == ("inlineStr", "H26")
    assert cells["AB2"] == (None, "27")


def test_xlsx_escapes_markup_and_drops_illegal_characters(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(path, COLUMNS, _rows('<b>&"x"</b>', "a\x00b\x01c\x0bd\x1fe\ufffff", "tab\tnl\n"))
    cells = _read_sheet(path)
    assert cells["B2"] == ("inlineStr", '<b>&"x"</b>')
    assert cells["B3"] == ("inlineStr", "abcdef")
    assert cells["B4"] == ("inlineStr", "tab\tnl\n")


def test_xlsx_keeps_excel_escape_sequences_literal(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(path, COLUMNS, _rows("_x0041_"))
    # Excel would show `_x0041_` as "A"; the escaped underscore makes it show the text as given.
    assert _read_sheet(path)["B2"] == ("inlineStr", "_x005F_x0041_")


def test_xlsx_truncates_text_to_excel_cell_limit(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(path, COLUMNS, _rows("x" * (XLSX_MAX_TEXT + 10)))
    assert len(_read_sheet(path)["B2"][1] or "") == XLSX_MAX_TEXT


@pytest.mark.parametrize("text", DANGEROUS)
def test_xlsx_neutralises_formula_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(path, [ExportColumn("value", "=HEADER")], [{"value": text}])
    cells = _read_sheet(path)
    assert cells["A1"] == ("inlineStr", "'=HEADER")
    assert cells["A2"] == ("inlineStr", "'" + text)


def test_xlsx_refuses_more_columns_than_excel_holds(tmp_path: Path) -> None:
    columns = [ExportColumn(f"c{i}", "h") for i in range(16_385)]
    with pytest.raises(ValidationError, match="columns"):
        write_xlsx(tmp_path / "out.xlsx", columns, [])


def test_xlsx_failure_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> Iterator[ExportRow]:
        yield {"name": "a"}
        raise RuntimeError("query failed")

    with pytest.raises(RuntimeError):
        write_xlsx(tmp_path / "out.xlsx", COLUMNS, broken())
    assert list(tmp_path.iterdir()) == []


def _many(count: int) -> Iterator[ExportRow]:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(count):
        yield {
            "id": index,
            "email": f"user{index}@example.com",
            "score": index / 7,
            "active": index % 2 == 0,
            "at": moment,
        }


MANY_COLUMNS = [
    ExportColumn(name, name.title()) for name in ("id", "email", "score", "active", "at")
]


@pytest.mark.parametrize("writer", [write_csv, write_xlsx], ids=["csv", "xlsx"])
def test_100k_rows_stream_with_flat_memory(tmp_path: Path, writer: object) -> None:
    assert callable(writer)
    path = tmp_path / "big"
    tracemalloc.start()
    try:
        result = writer(path, MANY_COLUMNS, _many(100_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows == 100_000
    # Millions of bytes of cells went through a writer that never held more than a sliver.
    assert result.size > 2_000_000
    assert peak < 2_000_000, f"peak {peak} bytes"


def test_100k_row_xlsx_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    write_xlsx(path, MANY_COLUMNS, _many(100_000))
    with zipfile.ZipFile(path) as archive, archive.open("xl/worksheets/sheet1.xml") as sheet:
        rows = sum(
            1
            for _, element in ET.iterparse(sheet)  # noqa: S314 our own file
            if element.tag.endswith("}row")
        )
    assert rows == 100_001


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_the_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(path, COLUMNS, _rows("=1+1", 3, True))  # noqa: FBT003
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "csv", "--outdir", str(tmp_path), str(path)],
        check=True,
        timeout=120,
    )
    converted = (tmp_path / "out.csv").read_text(encoding="utf-8", errors="replace")
    assert list(csv.reader(io.StringIO(converted)))[1:] == [
        ["row0", "'=1+1"],
        ["row1", "3"],
        ["row2", "TRUE"],
    ]


# -- File store ---------------------------------------------------------------------------------


def test_store_creates_root_and_places_files_inside(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "exports" / "nested")
    export_id = uuid4()
    assert store.root.is_dir()
    assert store.path_for(export_id, "csv") == store.root / f"{export_id}.csv"
    assert store.path_for(export_id, "xlsx").parent == store.root


def test_store_refuses_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="format"):
        FileStore(tmp_path).path_for(uuid4(), "pdf")  # type: ignore[arg-type]


def test_store_serves_a_file_inside_the_root(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "exports")
    path = store.path_for(uuid4(), "csv")
    write_csv(path, COLUMNS, _rows(1))
    assert store.open_download(path.name) == path


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "a/../../secret.txt",
        "..",
        "/etc/passwd",
        "\\\\host\\share\\x",
        "C:\\Windows\\win.ini",
        "..\\secret.txt",
        "ok.csv\x00.txt",
        "",
        ".",
    ],
)
def test_store_refuses_names_that_leave_the_root(tmp_path: Path, name: str) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    store = FileStore(tmp_path / "exports")
    with pytest.raises(ValidationError):
        store.open_download(name)


def test_store_refuses_symlink_pointing_out(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    store = FileStore(tmp_path / "exports")
    (store.root / "link.csv").symlink_to(secret)
    (store.root / "dir").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ValidationError):
        store.open_download("link.csv")
    with pytest.raises(ValidationError):
        store.open_download("dir/secret.txt")


def test_store_missing_file_is_not_found(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    (store.root / "sub").mkdir()
    with pytest.raises(NotFoundError):
        store.open_download("missing.csv")
    with pytest.raises(NotFoundError):
        store.open_download("sub")


def test_retention_removes_only_old_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "exports")
    now = datetime.now(UTC)
    old = store.path_for(uuid4(), "csv")
    fresh = store.path_for(uuid4(), "xlsx")
    for path in (old, fresh):
        path.write_text("x")
    two_days_ago = (now - timedelta(days=2)).timestamp()
    os.utime(old, (two_days_ago, two_days_ago))
    (store.root / "keep-dir").mkdir()
    outside = tmp_path / "outside.csv"
    outside.write_text("x")
    os.utime(outside, (two_days_ago, two_days_ago))
    (store.root / "old-link.csv").symlink_to(outside)

    removed = store.remove_older_than(timedelta(days=1), now)

    assert removed == [old]
    assert not old.exists()
    assert fresh.exists()
    assert outside.exists()
    assert (store.root / "keep-dir").is_dir()
    assert store.remove_older_than(timedelta(days=1), now) == []


def test_retention_needs_aware_time_and_non_negative_age(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(ValidationError):
        store.remove_older_than(timedelta(days=1), datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValidationError):
        store.remove_older_than(timedelta(days=-1), datetime.now(UTC))


def test_retention_age_zero_removes_files_written_before_now(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    path = store.path_for(uuid4(), "csv")
    path.write_text("x")
    time.sleep(0.01)
    assert store.remove_older_than(timedelta(0), datetime.now(UTC)) == [path]
