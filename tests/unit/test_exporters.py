"""Exporter registry and formula neutralisation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from application.exporters import (
    ExportColumn,
    Exporter,
    ExporterRegistry,
    ExportQuery,
    ExportRow,
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
