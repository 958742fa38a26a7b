"""Exporters registered in code: a named query over a read model or table and its columns."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from domain.shared import DEFAULT_TENANT, ValidationError

__all__ = [
    "EXPORTER_NAME_PATTERN",
    "FORMULA_PREFIXES",
    "ExportColumn",
    "ExportQuery",
    "ExportRow",
    "Exporter",
    "ExporterRegistry",
    "neutralise",
]

EXPORTER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")

#: A row maps column names to cell values; keys that are not columns are ignored, missing ones are
#: empty cells. Values are str, int, float, Decimal, bool, date/datetime, UUID or None.
ExportRow = Mapping[str, object]

#: First characters that make Excel, LibreOffice or Google Sheets read a text cell as a formula
#: (OWASP "CSV Injection"): `=`, `+`, `-`, `@` start formulas, and a leading tab or carriage return
#: is stripped by some importers, which would expose the character behind it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Return text that no spreadsheet will evaluate as a formula."""
    # A leading apostrophe is the spreadsheet convention for "this is text": Excel hides it and
    # shows the rest verbatim. Only text passes through here; numbers are written as numbers by
    # the writers, so a negative number never gains an apostrophe.
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """One column of an export: the row key it reads and the header the operator sees."""

    name: str
    header: str


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """What to export: whose data and which filters the exporter should apply."""

    tenant: str = DEFAULT_TENANT
    filters: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Exporter:
    """A named export: its columns and a function streaming the rows of a query."""

    name: str
    description: str
    columns: Sequence[ExportColumn]
    rows: Callable[[ExportQuery], Iterator[ExportRow]]

    def __post_init__(self) -> None:
        if not EXPORTER_NAME_PATTERN.fullmatch(self.name):
            raise ValidationError(
                f"exporter name {self.name!r} must be lower-case letters, digits, '-' or '_'",
                field="name",
            )
        if not self.columns:
            raise ValidationError(f"exporter {self.name!r} has no columns", field="columns")
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise ValidationError(
                    f"exporter {self.name!r} has column {column.name!r} twice", field="columns"
                )
            seen.add(column.name)
        # A frozen copy, so registering a list and changing it later cannot change the export.
        object.__setattr__(self, "columns", tuple(self.columns))


class ExporterRegistry:
    """The exporters an application offers, by name."""

    def __init__(self) -> None:
        self._exporters: dict[str, Exporter] = {}

    def register(self, exporter: Exporter) -> Exporter:
        """Add an exporter; a second one with the same name is a programming error."""
        if exporter.name in self._exporters:
            raise ValidationError(f"exporter {exporter.name!r} is already registered", field="name")
        self._exporters[exporter.name] = exporter
        return exporter

    def get(self, name: str) -> Exporter:
        """The exporter called `name`, or a ValidationError naming it and a near miss."""
        try:
            return self._exporters[name]
        except KeyError:
            matches = difflib.get_close_matches(name, self._exporters, n=1, cutoff=0.6)
            hint = f" (did you mean {matches[0]!r}?)" if matches else ""
            known = ", ".join(self.names()) or "none"
            raise ValidationError(
                f"unknown exporter {name!r}{hint}; known exporters: {known}", field="exporter"
            ) from None

    def names(self) -> list[str]:
        """Registered exporter names, sorted."""
        return sorted(self._exporters)

    def __contains__(self, name: object) -> bool:
        return name in self._exporters

    def __len__(self) -> int:
        return len(self._exporters)
