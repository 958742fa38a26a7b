"""Unit tests for importers: column types and rules, mapping, missing columns, contacts."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.imports.csv_reader import ParsedRow, read_rows
from application.imports.importers import (
    COUNTRY_CODES,
    ROW_ERROR,
    ChunkContext,
    Column,
    Importer,
    ImporterRegistry,
    Rejections,
    RowValidator,
    ValidRow,
    builtin_importers,
    contacts_importer,
    describe_errors,
    missing_columns,
    validate_chunk,
    validate_row,
)
from domain.shared import ValidationError


def noop(rows: list[ValidRow], context: ChunkContext) -> None:
    return None


def one_column(column: Column) -> Importer:
    return Importer(name="sample", columns=(column,), handler=noop)


def check(column: Column, text: str) -> tuple[Any, str | None]:
    row, errors = validate_row(one_column(column), [column.name], None, [text])
    return (row or {}).get(column.name), errors.get(column.name)


class FakeContactStore:
    """Contacts in a dict keyed on email, as the SQL store will behave."""

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None) -> None:
        self.contacts = dict(existing or {})

    def upsert(
        self,
        rows: Sequence[ValidRow],
        *,
        update_existing: bool,
        import_id: UUID,
        tenant: str,
    ) -> Rejections:
        rejected: Rejections = {}
        for number, row in rows:
            if row["email"] in self.contacts and not update_existing:
                rejected[number] = {"email": f"{row['email']} already exists"}
                continue
            self.contacts[row["email"]] = row
        return rejected


# -- column types -----------------------------------------------------------------------------


def test_str_is_trimmed_and_bounded():
    column = Column(name="name", max_length=3)
    assert check(column, "  Ada ") == ("Ada", None)
    assert check(column, "Adam") == (None, "must be at most 3 characters, got 4 characters")


def test_int_with_a_range():
    column = Column(name="age", type="int", minimum=0, maximum=150)
    assert check(column, "36") == (36, None)
    assert check(column, "+7") == (7, None)
    for text in ("abc", "1.5", "151", "-1"):
        assert check(column, text) == (
            None,
            f"must be an integer between 0 and 150, got {text!r}",
        )
    _, errors = validate_row(one_column(column), ["age"], None, ["abc"])
    assert describe_errors(errors) == "age: must be an integer between 0 and 150, got 'abc'"


def test_float_with_one_bound():
    column = Column(name="score", type="float", minimum=0.5)
    assert check(column, "2.25") == (2.25, None)
    assert check(column, "0.1") == (None, "must be a number of at least 0.5, got '0.1'")
    assert check(column, "nan") == (None, "must be a number of at least 0.5, got 'nan'")
    capped = Column(name="score", type="float", maximum=10)
    assert check(capped, "11") == (None, "must be a number of at most 10, got '11'")


def test_bool_words():
    column = Column(name="active", type="bool")
    assert [check(column, text)[0] for text in ("true", "YES", "1", "n", "False", "0")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert check(column, "maybe") == (
        None,
        "must be true or false (true/false/yes/no/1/0), got 'maybe'",
    )


def test_email_is_validated_and_lower_cased():
    column = Column(name="email", type="email")
    assert check(column, "Ada@Example.COM") == ("ada@example.com", None)
    for text in ("ada", "ada@example", "a b@example.com", "ada@@example.com"):
        assert check(column, text) == (None, f"must be a valid email address, got {text!r}")


def test_date_is_iso():
    column = Column(name="born", type="date")
    assert check(column, "1815-12-10") == (date(1815, 12, 10), None)
    assert check(column, "10/12/1815") == (None, "must be a date (YYYY-MM-DD), got '10/12/1815'")


def test_choice_is_case_insensitive_and_canonical():
    column = Column(name="plan", type="choice", choices=("Free", "Pro"))
    assert check(column, "pro") == ("Pro", None)
    assert check(column, "gold") == (None, "must be one of Free, Pro, got 'gold'")
    with pytest.raises(ValueError, match="needs choices"):
        Column(name="plan", type="choice")


def test_custom_check_runs_on_the_converted_value():
    column = Column(
        name="even", type="int", check=lambda value: None if value % 2 == 0 else "must be even"
    )
    assert check(column, "4") == (4, None)
    assert check(column, "5") == (None, "must be even")


def test_required_and_optional_empty_values():
    importer = Importer(
        name="sample",
        columns=(Column(name="name", required=True), Column(name="nick")),
        handler=noop,
    )
    assert validate_row(importer, ["name", "nick"], None, ["Ada", "  "]) == (
        {"name": "Ada", "nick": None},
        {},
    )
    assert validate_row(importer, ["name", "nick"], None, [" ", "x"]) == (
        None,
        {"name": "is required"},
    )
    # A column absent from the file is None; a wrong field count is a row error.
    assert validate_row(importer, ["name"], None, ["Ada"]) == ({"name": "Ada", "nick": None}, {})
    assert validate_row(importer, ["name"], None, ["Ada", "x"]) == (
        None,
        {ROW_ERROR: "expected 1 fields, got 2"},
    )


# -- mapping and missing columns --------------------------------------------------------------


def test_headers_match_columns_case_insensitively_by_default():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    row, errors = validate_row(importer, ["Name", "EMAIL"], None, ["Ada", "ada@example.com"])
    assert errors == {}
    assert row == {"name": "Ada", "email": "ada@example.com", "age": None, "country": None}


def test_mapping_renames_csv_headers_to_importer_columns():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    header = ["Full name", "E-mail", "Land"]
    mapping = {"full name": "name", "E-mail": "email", "Land": "country"}
    assert missing_columns(importer, header, mapping) == []
    row, errors = validate_row(importer, header, mapping, ["Ada", "a@b.io", "de"])
    assert errors == {}
    assert row == {"name": "Ada", "email": "a@b.io", "age": None, "country": "DE"}


def test_mapping_to_an_unknown_column_or_from_an_unknown_header_is_named():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    with pytest.raises(ValidationError, match=r"no column 'emial' \(did you mean 'email'\?\)"):
        missing_columns(importer, ["name", "mail"], {"mail": "emial"})
    with pytest.raises(ValidationError, match="CSV column 'mial', which is not in the header"):
        missing_columns(importer, ["name", "mail"], {"mial": "email"})
    with pytest.raises(ValidationError, match="several CSV columns map to one importer column"):
        missing_columns(importer, ["name", "email", "mail"], {"mail": "email"})


def test_missing_required_columns_are_named():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    assert missing_columns(importer, ["age", "country"]) == ["name", "email"]
    assert missing_columns(importer, ["name", "mail"], {"mail": "email"}) == []
    with pytest.raises(ValidationError, match=r"lacks required columns .*: name, email") as caught:
        RowValidator(importer, ["age"])
    assert caught.value.field == "header"


# -- chunks and rules across rows -------------------------------------------------------------


def test_unique_column_reports_the_first_row_across_chunks():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    header = ["name", "email"]
    validator = RowValidator(importer, header)
    valid, failed = validate_chunk(
        importer,
        header,
        None,
        [(2, ["Ada", "ada@example.com"]), (3, ["Bad", "nope"]), (4, ["Bob", "bob@x.io"])],
        validator=validator,
    )
    assert [number for number, _ in valid] == [2, 4]
    assert failed == [(3, ["Bad", "nope"], {"email": "must be a valid email address, got 'nope'"})]
    valid, failed = validate_chunk(
        importer,
        header,
        None,
        [(12, ["Ada again", "ADA@example.com"]), (13, ["Cy", "nope@x.io"])],
        validator=validator,
    )
    assert [number for number, _ in valid] == [13]
    assert failed == [(12, ["Ada again", "ADA@example.com"], {"email": "duplicate of row 2"})]


def test_a_failed_row_does_not_claim_its_unique_key():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    validator = RowValidator(importer, ["name", "email", "age"])
    valid, failed = validator.validate_chunk(
        [(2, ["", "ada@example.com", "1"]), (3, ["Ada", "ada@example.com", "1"])]
    )
    assert [number for number, _ in valid] == [3]
    assert failed == [(2, ["", "ada@example.com", "1"], {"name": "is required"})]


def test_parse_errors_become_failed_rows():
    importer = builtin_importers(FakeContactStore()).get("contacts")
    rows = [ParsedRow(5, None, "a,b,c", "expected 2 fields, got 3")]
    assert validate_chunk(importer, ["name", "email"], None, rows) == (
        [],
        [(5, ["a,b,c"], {ROW_ERROR: "expected 2 fields, got 3"})],
    )


# -- the registry -----------------------------------------------------------------------------


def test_registry_register_decorator_get_and_names():
    registry = ImporterRegistry()

    @registry.importer("tags", [Column(name="tag", required=True)], options={"dry_run": False})
    def import_tags(rows: list[ValidRow], options: dict[str, Any], port: Any) -> int:
        return len(rows)

    registry.register(one_column(Column(name="x")))
    assert registry.names() == ["sample", "tags"]
    assert "tags" in registry
    tags = registry.get("tags")
    assert tags.handler is import_tags
    assert tags.resolve_options({"dry_run": True}) == {"dry_run": True}
    with pytest.raises(ValidationError, match=r"no option 'dryrun' \(did you mean 'dry_run'\?\)"):
        tags.resolve_options({"dryrun": True})
    with pytest.raises(ValidationError, match="option 'dry_run' must be of type bool"):
        tags.resolve_options({"dry_run": "yes"})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(one_column(Column(name="x")))


def test_unknown_importer_is_named_with_a_suggestion():
    with pytest.raises(
        ValidationError, match=r"unknown importer 'contact' \(did you mean 'contacts'"
    ) as caught:
        builtin_importers(FakeContactStore()).get("contact")
    assert caught.value.field == "importer"


# -- the built-in contacts importer -----------------------------------------------------------


def test_country_codes_are_the_249_assigned_codes():
    assert len(COUNTRY_CODES) == 249
    assert {"DE", "US", "GB", "FR", "JP", "AX", "SS", "XK"} - COUNTRY_CODES == {"XK"}


CONTACTS_CSV = (
    "\ufeffName;Email;Age;Country\r\n"
    "Ada Lovelace;ada@example.com;36;GB\r\n"
    ";nobody@example.com;20;DE\r\n"
    "Bob;bob@example;abc;XX\r\n"
    "\r\n"
    '"Smith; Carol";carol@example.com;;us\r\n'
    "Dup;ADA@example.com;40;FR\r\n"
    "Too;many;fields;here;x\r\n"
    "Dan;dan@example.com;151;\r\n"
    "Eve;eve@example.com;;\r\n"
).encode()


def test_contacts_import_reports_exact_rows_and_messages():
    registry = builtin_importers(FakeContactStore())
    importer = registry.get("contacts")
    csv_file = read_rows(io.BytesIO(CONTACTS_CSV))
    assert csv_file.header == ["Name", "Email", "Age", "Country"]
    assert missing_columns(importer, csv_file.header) == []
    validator = RowValidator(importer, csv_file.header)
    valid, failed = validator.validate_chunk(csv_file)

    assert [(number, row["email"]) for number, row in valid] == [
        (2, "ada@example.com"),
        (6, "carol@example.com"),
        (10, "eve@example.com"),
    ]
    assert valid[1][1] == {
        "name": "Smith; Carol",
        "email": "carol@example.com",
        "age": None,
        "country": "US",
    }
    assert [(number, describe_errors(errors)) for number, _, errors in failed] == [
        (3, "name: is required"),
        (
            4,
            (
                "email: must be a valid email address, got 'bob@example'; "
                "age: must be an integer between 0 and 150, got 'abc'; "
                "country: must be an ISO 3166-1 alpha-2 country code such as 'DE' or 'US', got 'XX'"
            ),
        ),
        (7, "email: duplicate of row 2"),
        (8, "expected 4 fields, got 5"),
        (9, "age: must be an integer between 0 and 150, got '151'"),
    ]
    assert failed[0][1] == ["", "nobody@example.com", "20", "DE"]

    store = FakeContactStore({"eve@example.com": {"name": "Eve (old)"}})
    importer = contacts_importer(store)
    options = importer.resolve_options(None)
    assert options == {"update_existing": False}
    context = ChunkContext(uuid4(), "default", 0, options)
    assert importer.handler(valid, context) == {10: {"email": "eve@example.com already exists"}}
    assert set(store.contacts) == {"ada@example.com", "carol@example.com", "eve@example.com"}

    updating = ChunkContext(
        uuid4(), "default", 0, importer.resolve_options({"update_existing": True})
    )
    assert importer.handler(valid, updating) == {}
    assert store.contacts["eve@example.com"]["name"] == "Eve"
