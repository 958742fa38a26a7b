"""The on-disk index of unique keys an import run keeps: typed keys, first claims, no residue."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from application.imports.importers import Column, Importer, RowValidator
from infrastructure.import_keys import SqliteUniqueKeys

pytestmark = pytest.mark.integration


def test_keys_are_found_by_column_and_type_and_the_file_goes_at_close(tmp_path: Path):
    path = tmp_path / "scratch" / "keys.sqlite3"
    keys = SqliteUniqueKeys(path)
    keys.add("email", [("ada@example.com", 2), ("bob@example.com", 3)])
    keys.add("code", [(5, 4), (date(2026, 1, 2), 5)])
    assert keys.find("email", {"ada@example.com", "eve@example.com"}) == {"ada@example.com": 2}
    assert keys.find("code", {5, "5", date(2026, 1, 2)}) == {5: 4, date(2026, 1, 2): 5}
    assert keys.find("email", {f"p{n}@example.com" for n in range(2000)}) == {}
    assert path.exists()
    keys.close()
    assert not path.exists()


def test_a_validator_on_disk_keys_reports_duplicates_across_chunks(tmp_path: Path):
    importer = Importer(
        name="codes",
        columns=(Column(name="code", unique=True), Column(name="n", type="int", unique=True)),
        handler=lambda rows, context: None,
    )
    keys = SqliteUniqueKeys(tmp_path / "keys.sqlite3")
    validator = RowValidator(importer, ["code", "n"], keys=keys)
    valid, failed = validator.validate_chunk([(2, ["A", "1"]), (3, ["a", "2"]), (4, ["B", "x"])])
    assert [number for number, _ in valid] == [2]
    assert [(number, errors) for number, _, errors in failed] == [
        (3, {"code": "duplicate of row 2"}),
        (4, {"n": "must be an integer, got 'x'"}),
    ]
    # Row 4 failed, so its code "B" is still free; row 5 repeats both keys of row 2.
    valid, failed = validator.validate_chunk([(5, ["A", "1"]), (6, ["B", "3"])])
    assert [number for number, _ in valid] == [6]
    assert failed[0][2] == {"code": "duplicate of row 2", "n": "duplicate of row 2"}
    keys.close()
