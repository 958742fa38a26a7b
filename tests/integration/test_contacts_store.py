"""The contacts table on real storage: inserts, updates keyed on email, or rejections."""

from __future__ import annotations

import pytest

from application.importers import builtin_importers, validate_chunk
from infrastructure.contacts import SqlContactStore
from interfaces.bootstrap import Chronicle

pytestmark = pytest.mark.integration


def test_contacts_are_inserted_then_updated_or_rejected(chronicle: Chronicle):
    store = SqlContactStore(chronicle.db)
    store.create()
    importer = builtin_importers().get("contacts")
    header = ["name", "email", "age", "country"]
    rows = [
        (2, ["Ada", "ADA@example.com", "36", "gb"]),
        (3, ["Bob", "bob@example.com", "", ""]),
        (4, ["Eve", "not-an-email", "200", "XX"]),
    ]
    valid, failed = validate_chunk(importer, header, None, rows)
    assert [number for number, _ in valid] == [2, 3]
    assert [row[0] for row in failed] == [4]
    assert store.upsert(valid, update_existing=False) == (2, 0, [])
    assert store.count() == 2
    again = [(5, {**valid[0][1], "name": "Ada L."}), (6, valid[1][1])]
    assert store.upsert(again, update_existing=False) == (
        0,
        0,
        [
            (5, "email: a contact with this email already exists"),
            (6, "email: a contact with this email already exists"),
        ],
    )
    assert store.upsert(again, update_existing=True) == (0, 2, [])
    assert store.count() == 2
    other_tenant = SqlContactStore(chronicle.db, tenant="acme")
    assert other_tenant.upsert(valid, update_existing=False) == (2, 0, [])
