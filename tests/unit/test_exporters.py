"""Exporter registry and formula neutralisation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from application.exports.exporters import (
    ExportColumn,
    Exporter,
    ExporterRegistry,
    ExportFilter,
    ExportQuery,
    ExportRow,
    default_exporters,
    filters_to_json,
    neutralise,
)
from domain.shared import ValidationError


def _rows(query: ExportQuery) -> Iterator[ExportRow]:
    yield {"email": f"{query.tenant}@example.com", "limit": query.filters.get("limit")}


def _exporter(name: str = "contacts") -> Exporter:
    return Exporter(
        name=name,
        description="Contacts with their email",
        columns=[ExportColumn("email", "Email"), ExportColumn("limit", "Limit")],
        rows=_rows,
    )


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_neutralise_prefixes_dangerous_text_with_an_apostrophe(prefix: str) -> None:
    assert neutralise(f'{prefix}HYPERLINK("x")') == f'\'{prefix}HYPERLINK("x")'


@pytest.mark.parametrize("text", ["", "plain", "1+1", "a=b", " =1", "'quoted", "x-y"])
def test_neutralise_leaves_safe_text_alone(text: str) -> None:
    assert neutralise(text) == text


def test_registry_returns_registered_exporter_and_runs_its_query() -> None:
    registry = ExporterRegistry()
    exporter = registry.register(_exporter())
    assert registry.get("contacts") is exporter
    assert registry.names() == ["contacts"]
    assert "contacts" in registry
    assert len(registry) == 1
    rows = list(exporter.rows(ExportQuery(tenant="acme", filters={"limit": 3})))
    assert rows == [{"email": "acme@example.com", "limit": 3}]


def test_names_are_sorted() -> None:
    registry = ExporterRegistry()
    for name in ["jobs", "contacts", "failed-jobs"]:
        registry.register(_exporter(name))
    assert registry.names() == ["contacts", "failed-jobs", "jobs"]


def test_unknown_exporter_is_named_with_a_suggestion() -> None:
    registry = ExporterRegistry()
    registry.register(_exporter())
    with pytest.raises(ValidationError, match=r"'contact'.*did you mean 'contacts'"):
        registry.get("contact")


def test_unknown_exporter_without_near_miss_lists_known_ones() -> None:
    registry = ExporterRegistry()
    registry.register(_exporter())
    with pytest.raises(ValidationError) as raised:
        registry.get("zzz")
    assert "did you mean" not in str(raised.value)
    assert "known exporters: contacts" in str(raised.value)
    assert raised.value.field == "exporter"


def test_registering_a_name_twice_is_refused() -> None:
    registry = ExporterRegistry()
    registry.register(_exporter())
    with pytest.raises(ValidationError, match="already registered"):
        registry.register(_exporter())


@pytest.mark.parametrize("name", ["", "Contacts", "1jobs", "a b", "jobs/x"])
def test_exporter_names_are_checked(name: str) -> None:
    with pytest.raises(ValidationError):
        _exporter(name)


def test_exporter_needs_distinct_columns() -> None:
    with pytest.raises(ValidationError, match="no columns"):
        Exporter(name="x", description="", columns=[], rows=_rows)
    with pytest.raises(ValidationError, match="twice"):
        Exporter(
            name="x",
            description="",
            columns=[ExportColumn("a", "A"), ExportColumn("a", "B")],
            rows=_rows,
        )


def test_exporter_columns_are_frozen_at_registration() -> None:
    columns = [ExportColumn("email", "Email")]
    exporter = Exporter(name="x", description="", columns=columns, rows=_rows)
    columns.append(ExportColumn("other", "Other"))
    assert [column.name for column in exporter.columns] == ["email"]


# -- filters ------------------------------------------------------------------------------------


def _filtered() -> Exporter:
    return Exporter(
        name="jobs",
        description="",
        columns=[ExportColumn("id", "Id")],
        rows=_rows,
        filters=[
            ExportFilter("status", help="job status", choices=("failed", "succeeded")),
            ExportFilter("limit", "int"),
            ExportFilter("forgotten", "bool"),
            ExportFilter("since", "datetime"),
            ExportFilter("batch_id", "uuid"),
        ],
    )


def test_filters_are_parsed_to_their_types() -> None:
    batch_id = uuid4()
    values = _filtered().parse_filters(
        {
            "status": " failed ",
            "limit": "12",
            "forgotten": "no",
            "since": "2026-01-05T13:00:00+01:00",
            "batch_id": str(batch_id).upper(),
        }
    )
    assert values == {
        "batch_id": str(batch_id),
        "forgotten": False,
        "limit": 12,
        "since": datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        "status": "failed",
    }
    assert filters_to_json(values)["since"] == "2026-01-05T12:00:00+00:00"
    # JSON values as the API gives them, and what an export recorded, parse the same way.
    assert _filtered().parse_filters({"limit": 12, "forgotten": True}) == {
        "limit": 12,
        "forgotten": True,
    }
    assert _filtered().parse_filters(filters_to_json(values)) == values


def test_null_filters_mean_no_filter() -> None:
    assert _filtered().parse_filters({"status": None}) == {}
    assert _filtered().parse_filters(None) == {}


def test_unknown_filter_is_named_with_a_suggestion_and_the_known_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        _filtered().parse_filters({"stauts": "failed"})
    assert str(raised.value) == (
        "unknown filter 'stauts' for exporter 'jobs' (did you mean 'status'?);"
        " its filters: status, limit, forgotten, since, batch_id"
    )
    assert raised.value.field == "filters"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("status", "running", "must be one of failed, succeeded, got 'running'"),
        ("status", "  ", "must be non-empty text"),
        ("status", 3, "must be non-empty text, got 3"),
        ("limit", "ten", "must be an integer, got 'ten'"),
        ("limit", True, "must be an integer, got True"),
        ("limit", 1.5, "must be an integer"),
        ("forgotten", "maybe", "must be true or false"),
        ("since", "2026-01-05T12:00:00", "ISO-8601 time with a UTC offset"),
        ("since", "yesterday", "ISO-8601 time with a UTC offset"),
        ("batch_id", "not-a-uuid", "must be a UUID"),
        ("status", "x" * 2000, "at most 1000 characters"),
    ],
)
def test_bad_filter_values_name_the_filter_and_what_it_takes(
    name: str, value: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=f"filter '{name}' of exporter 'jobs'") as raised:
        _filtered().parse_filters({name: value})
    assert message in str(raised.value)
    assert raised.value.field == "filters"


def test_required_filters_must_be_given() -> None:
    exporter = Exporter(
        name="rows",
        description="",
        columns=[ExportColumn("id", "Id")],
        rows=_rows,
        filters=[ExportFilter("import_id", "uuid", required=True)],
    )
    with pytest.raises(ValidationError, match="exporter 'rows' needs filter 'import_id'"):
        exporter.parse_filters({})


def test_filter_declarations_are_checked() -> None:
    with pytest.raises(ValidationError, match="unknown type 'date'"):
        ExportFilter("since", "date")
    with pytest.raises(ValidationError, match="filter name"):
        ExportFilter("Since")
    with pytest.raises(ValidationError, match="a filter twice"):
        Exporter(
            name="x",
            description="",
            columns=[ExportColumn("a", "A")],
            rows=_rows,
            filters=[ExportFilter("a"), ExportFilter("a")],
        )


def test_a_child_registry_sees_its_parent_and_adds_its_own() -> None:
    parent = ExporterRegistry()
    child = ExporterRegistry(parent=parent)
    child.register(_exporter("jobs"))
    parent.register(_exporter("surveys"))  # registered on the parent later: still seen
    assert child.names() == ["jobs", "surveys"]
    assert child.get("surveys") is parent.get("surveys")
    assert "jobs" not in parent
    assert len(child) == 2
    assert [exporter.name for exporter in child.exporters()] == ["jobs", "surveys"]
    with pytest.raises(ValidationError, match="already registered"):
        child.register(_exporter("surveys"))
    with pytest.raises(ValidationError, match="did you mean 'surveys'"):
        child.get("survey")


def test_the_application_registry_exists_for_own_exporters() -> None:
    assert isinstance(default_exporters, ExporterRegistry)
