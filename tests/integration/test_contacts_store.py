"""The contacts table on real storage: inserts, updates keyed on email, or rejections."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.imports.importers import builtin_importers, validate_chunk
from infrastructure.contacts import ALREADY_EXISTS, SqlContactStore
from interfaces.bootstrap import Chronicle

pytestmark = pytest.mark.integration


def test_contacts_are_inserted_then_updated_or_rejected(chronicle: Chronicle):
    store = SqlContactStore(chronicle.db)
    store.create()
    importer = builtin_importers(store).get("contacts")
    header = ["name", "email", "age", "country"]
    rows = [
        (2, ["Ada", "ADA@example.com", "36", "gb"]),
        (3, ["Bob", "bob@example.com", "", ""]),
        (4, ["Eve", "not-an-email", "200", "XX"]),
    ]
    valid, failed = validate_chunk(importer, header, None, rows)
    assert [number for number, _ in valid] == [2, 3]
    assert [row[0] for row in failed] == [4]
    first, second = uuid4(), uuid4()
    assert store.upsert(valid, update_existing=False, import_id=first) == {}
    assert store.count() == 2
    # The same rows of the same import again (a chunk re-run after a crash): already written.
    assert store.upsert(valid, update_existing=False, import_id=first) == {}
    again = [(5, {**valid[0][1], "name": "Ada L."}), (6, valid[1][1])]
    assert store.upsert(again, update_existing=False, import_id=second) == {
        5: {"email": ALREADY_EXISTS},
        6: {"email": ALREADY_EXISTS},
    }
    # Another row of the same import with a known email is a duplicate, not a re-run.
    assert store.upsert([(9, valid[0][1])], update_existing=False, import_id=first) == {
        9: {"email": ALREADY_EXISTS}
    }
    assert store.upsert(again, update_existing=True, import_id=second) == {}
    assert store.count() == 2
    assert store.upsert(valid, update_existing=False, import_id=first, tenant="acme") == {}
    assert store.count("acme") == 2


def test_text_with_tabs_backslashes_and_line_breaks_survives_the_bulk_insert(
    chronicle: Chronicle,
):
    store = SqlContactStore(chronicle.db)
    names = ["Tab\there", "back\\slash", "two\nlines", "\\N", "carriage\rreturn", "ünï cödé"]
    rows = [
        (number, {"name": name, "email": f"p{number}@example.com", "age": None, "country": None})
        for number, name in enumerate(names, start=2)
    ]
    assert store.upsert(rows, update_existing=False, import_id=uuid4()) == {}
    with chronicle.db.read() as s:
        stored = s.fetchall("SELECT name, age FROM contacts ORDER BY import_row")
    assert [row["name"] for row in stored] == names
    assert {row["age"] for row in stored} == {None}
