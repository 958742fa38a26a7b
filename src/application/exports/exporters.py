"""Exporters registered in code: a named query over a read model or table and its columns."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.shared import DEFAULT_TENANT, ValidationError, require_utc

__all__ = [
    "EXPORTER_NAME_PATTERN",
    "FILTER_TYPES",
    "FORMULA_MARK",
    "FORMULA_PREFIXES",
    "ExportColumn",
    "ExportFilter",
    "ExportQuery",
    "ExportRow",
    "Exporter",
    "ExporterRegistry",
    "default_exporters",
    "filters_to_json",
    "neutralise",
    "remove_formula_mark",
]

EXPORTER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")

#: A row maps column names to cell values; keys that are not columns are ignored, missing ones are
#: empty cells. Values are str, int, float, Decimal, bool, date/datetime, UUID or None.
ExportRow = Mapping[str, object]

#: First characters that make Excel, LibreOffice or Google Sheets read a text cell as a formula
#: (OWASP "CSV Injection"): `=`, `+`, `-`, `@` start formulas, and a leading tab or carriage return
#: is stripped by some importers, which would expose the character behind it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: What `neutralise` puts before such text.
FORMULA_MARK = "'"
_MARKED = frozenset(FORMULA_PREFIXES)


def neutralise(value: str) -> str:
    """Return text that no spreadsheet will evaluate as a formula."""
    # A leading apostrophe is the spreadsheet convention for "this is text": Excel hides it and
    # shows the rest verbatim. Only text passes through here; numbers are written as numbers by
    # the writers, so a negative number never gains an apostrophe.
    if value.startswith(FORMULA_PREFIXES):
        return FORMULA_MARK + value
    return value


def remove_formula_mark(value: str) -> str:
    """Undo `neutralise`: text read from a CSV without the `'` that marks a formula as text.

    Only a `'` followed by one of `FORMULA_PREFIXES` is the mark (`neutralise` never adds one
    elsewhere), so `'Tis` or `''=x` are data and stay as they are. A value that really starts
    with `'=` therefore cannot travel through a CSV; that is the price of a round trip that gives
    back `-Minus Sign` rather than `'-Minus Sign`.
    """
    if value[:1] == FORMULA_MARK and value[1:2] in _MARKED:
        return value[1:]
    return value


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """One column of an export: the row key it reads and the header the operator sees."""

    name: str
    header: str


#: Filter types and how a value of each is written: `str`, `int`, `bool` (true/false/1/0/yes/no),
#: `datetime` (ISO-8601 with a UTC offset) and `uuid`.
FILTER_TYPES = ("str", "int", "bool", "datetime", "uuid")
_FILTER_WORDS = {
    "str": "text",
    "int": "an integer",
    "bool": "true or false",
    "datetime": "an ISO-8601 time with a UTC offset (e.g. 2026-01-05T12:00:00Z)",
    "uuid": "a UUID",
}
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,18}")
_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})
MAX_FILTER_TEXT = 1_000


def _parse_str(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _parse_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _parse_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else ""
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    return None


def _parse_datetime(value: object) -> datetime | None:
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    # A time without an offset is refused, never guessed.
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        return None
    try:
        return require_utc(moment, "filters")
    except ValidationError:
        return None


def _parse_uuid(value: object) -> str | None:
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None


_PARSERS: dict[str, Callable[[object], object | None]] = {
    "str": _parse_str,
    "int": _parse_int,
    "bool": _parse_bool,
    "datetime": _parse_datetime,
    "uuid": _parse_uuid,
}


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """A filter an exporter accepts: its name, value type, help text and allowed values."""

    name: str
    type: str = "str"
    help: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValidationError(
                f"filter name {self.name!r} must be lower-case letters, digits or '_'",
                field="filters",
            )
        if self.type not in FILTER_TYPES:
            raise ValidationError(
                f"filter {self.name!r} has unknown type {self.type!r}; use one of"
                f" {', '.join(FILTER_TYPES)}",
                field="filters",
            )
        object.__setattr__(self, "choices", tuple(self.choices))

    def _bad(self, exporter: str, value: object, expected: str) -> ValidationError:
        shown = repr(value) if len(repr(value)) <= 100 else repr(value)[:100] + "…"
        return ValidationError(
            f"filter {self.name!r} of exporter {exporter!r} must be {expected}, got {shown}",
            field="filters",
        )

    def parse(self, value: object, exporter: str) -> object:
        """The typed value of `value` (as JSON or a command line gives it), or a
        ValidationError naming the filter, what it takes and what it got."""
        if isinstance(value, str) and len(value) > MAX_FILTER_TEXT:
            raise self._bad(exporter, value, f"at most {MAX_FILTER_TEXT} characters")
        parsed = _PARSERS[self.type](value)
        if parsed is None:
            expected = "non-empty text" if self.type == "str" else _FILTER_WORDS[self.type]
            raise self._bad(exporter, value, expected)
        if self.choices and str(parsed) not in self.choices:
            raise self._bad(exporter, value, f"one of {', '.join(self.choices)}")
        return parsed

    def describe(self) -> dict[str, Any]:
        """The filter as the API and the CLI show it."""
        return {
            "name": self.name,
            "type": self.type,
            "help": self.help,
            "required": self.required,
            "choices": list(self.choices) or None,
        }


def filters_to_json(values: Mapping[str, object]) -> dict[str, Any]:
    """Typed filter values as JSON values (times as ISO-8601 text), as an export records them."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in values.items()
    }


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """What to export: whose data and which filters the exporter should apply."""

    tenant: str = DEFAULT_TENANT
    filters: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Exporter:
    """A named export: its columns, the filters it takes and a function streaming the rows of
    a query. `rows` should read in pages (keyset pagination), never a whole table at once."""

    name: str
    description: str
    columns: Sequence[ExportColumn]
    rows: Callable[[ExportQuery], Iterator[ExportRow]]
    filters: Sequence[ExportFilter] = ()

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
        names = [item.name for item in self.filters]
        if len(set(names)) != len(names):
            raise ValidationError(f"exporter {self.name!r} has a filter twice", field="filters")
        # Frozen copies, so registering a list and changing it later cannot change the export.
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "filters", tuple(self.filters))

    def parse_filters(self, raw: Mapping[str, object] | None) -> dict[str, object]:
        """Check filter values against the declared filters; return them typed.

        An unknown name, a missing required filter or a value of the wrong type is a
        ValidationError (field `filters`) that names it. A null value means "no filter".
        """
        declared = {item.name: item for item in self.filters}
        given = {name: value for name, value in (raw or {}).items() if value is not None}
        for name in given:
            if name not in declared:
                matches = difflib.get_close_matches(str(name), declared, n=1, cutoff=0.6)
                hint = f" (did you mean {matches[0]!r}?)" if matches else ""
                known = ", ".join(declared) or "none"
                raise ValidationError(
                    f"unknown filter {name!r} for exporter {self.name!r}{hint};"
                    f" its filters: {known}",
                    field="filters",
                )
        missing = [item.name for item in self.filters if item.required and item.name not in given]
        if missing:
            raise ValidationError(
                f"exporter {self.name!r} needs filter {', '.join(map(repr, missing))}",
                field="filters",
            )
        return {
            name: declared[name].parse(value, self.name) for name, value in sorted(given.items())
        }


class ExporterRegistry:
    """The exporters an application offers, by name.

    A registry made with a `parent` sees the parent's exporters (also those registered on it
    later) and adds its own: each Chronicle adds the built-in exporters to a child of the
    application's `default_exporters`.
    """

    def __init__(self, parent: ExporterRegistry | None = None) -> None:
        self._exporters: dict[str, Exporter] = {}
        self._parent = parent

    def register(self, exporter: Exporter) -> Exporter:
        """Add an exporter; a second one with the same name is a programming error."""
        if exporter.name in self:
            raise ValidationError(f"exporter {exporter.name!r} is already registered", field="name")
        self._exporters[exporter.name] = exporter
        return exporter

    def _find(self, name: str) -> Exporter | None:
        found = self._exporters.get(name)
        if found is None and self._parent is not None:
            return self._parent._find(name)  # noqa: SLF001 - same class
        return found

    def get(self, name: str) -> Exporter:
        """The exporter called `name`, or a ValidationError naming it and a near miss."""
        found = self._find(name) if isinstance(name, str) else None
        if found is None:
            matches = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.6)
            hint = f" (did you mean {matches[0]!r}?)" if matches else ""
            known = ", ".join(self.names()) or "none"
            raise ValidationError(
                f"unknown exporter {name!r}{hint}; known exporters: {known}", field="exporter"
            )
        return found

    def names(self) -> list[str]:
        """Registered exporter names, sorted."""
        inherited = self._parent.names() if self._parent is not None else []
        return sorted({*inherited, *self._exporters})

    def exporters(self) -> list[Exporter]:
        """Every exporter, by name."""
        return [self.get(name) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __len__(self) -> int:
        return len(self.names())


#: The application's exporters: register yours here (in a module listed in
#: CHRONICLE_COMMAND_MODULES); every Chronicle offers them next to the built-in ones.
default_exporters = ExporterRegistry()
