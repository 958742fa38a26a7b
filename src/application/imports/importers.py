"""Importers registered in code: columns, row validation in chunks, and the built-in `contacts`."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

from application.imports.csv_reader import ParsedRow
from domain.shared import ValidationError

__all__ = [
    "COUNTRY_CODES",
    "ROW_ERROR",
    "ChunkContext",
    "Column",
    "ColumnType",
    "ContactStore",
    "Importer",
    "ImporterRegistry",
    "InMemoryKeys",
    "Rejections",
    "RowValidator",
    "UniqueKeys",
    "ValidRow",
    "builtin_importers",
    "contacts_importer",
    "default_importers",
    "describe_errors",
    "missing_columns",
    "validate_chunk",
    "validate_row",
]

ColumnType = Literal["str", "int", "float", "bool", "email", "date", "choice"]
#: Key in a row's errors for problems of the whole row (parsing, field count).
ROW_ERROR = "row"
#: A valid row: its line number in the file and its converted values by importer column.
ValidRow = tuple[int, dict[str, Any]]
#: A failed row: its line number, its raw values and an error per column (or `ROW_ERROR`).
FailedRow = tuple[int, list[str], dict[str, str]]

#: Rows a handler refused (e.g. a key already in the database): row number → error per column.
Rejections = dict[int, dict[str, str]]


@dataclass(frozen=True)
class ChunkContext:
    """What a handler knows about the chunk it writes: the import, its tenant and options.

    A chunk may be handed over again after a crash (its rows written, its outcome not yet
    recorded): a handler must be idempotent for (import_id, row number).
    """

    import_id: UUID
    tenant: str
    chunk: int
    options: Mapping[str, Any]


Handler = Callable[[list[ValidRow], ChunkContext], Rejections | None]
H = TypeVar("H", bound=Handler)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_INT = re.compile(r"^[+-]?[0-9]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})
_TYPE_WORDS: dict[str, str] = {
    "str": "text",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false (true/false/yes/no/1/0)",
    "email": "a valid email address",
    "date": "a date (YYYY-MM-DD)",
}
_MANY_CHOICES = 12


class _CellError(Exception):
    """A value does not fit its column; the message says why, without the column name."""


def _suggestion(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True, kw_only=True)
class Column:
    """One importer column: its type and the rules a value must satisfy."""

    name: str
    type: ColumnType = "str"
    required: bool = False
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    #: Values must be unique within one import (compared after conversion, case-folded).
    unique: bool = False
    check: Callable[[Any], str | None] | None = None
    help: str = ""
    _choices_by_key: dict[str, str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"invalid column name {self.name!r}: use lowercase words with '_'")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"column {self.name!r} of type 'choice' needs choices")
        if self.type not in {*_TYPE_WORDS, "choice"}:
            raise ValueError(f"column {self.name!r} has unknown type {self.type!r}")
        # Looked up once per cell: a dict, not a scan of (maybe hundreds of) choices.
        by_key = {choice.casefold(): choice for choice in reversed(self.choices or ())}
        object.__setattr__(self, "_choices_by_key", by_key)

    def convert(self, text: str) -> Any:
        """Convert trimmed, non-empty `text` to this column's value, or raise `_CellError`."""
        value = self._typed(text)
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            raise _CellError(
                f"must be at most {self.max_length} characters, got {len(value)} characters"
            )
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise _CellError(problem)
        return value

    def _expected(self) -> str:
        words = _TYPE_WORDS.get(self.type, "")
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{words} between {_number(low)} and {_number(high)}"
        if low is not None:
            return f"{words} of at least {_number(low)}"
        if high is not None:
            return f"{words} of at most {_number(high)}"
        return words

    def _typed(self, text: str) -> Any:
        if self.type == "str":
            return text
        if self.type == "email":
            if not _EMAIL.fullmatch(text):
                raise _CellError(f"must be {self._expected()}, got {text!r}")
            return text.lower()
        if self.type == "bool":
            word = text.lower()
            if word not in _TRUE | _FALSE:
                raise _CellError(f"must be {self._expected()}, got {text!r}")
            return word in _TRUE
        if self.type == "date":
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise _CellError(f"must be {self._expected()}, got {text!r}") from None
        if self.type == "choice":
            return self._choice(text)
        return self._numeric(text)

    def _numeric(self, text: str) -> int | float:
        number: int | float | None
        if self.type == "int":
            number = int(text) if _INT.fullmatch(text) else None
        else:
            try:
                number = float(text)
            except ValueError:
                number = None
            if number is not None and not math.isfinite(number):
                number = None
        if number is None:
            raise _CellError(f"must be {self._expected()}, got {text!r}")
        too_low = self.minimum is not None and number < self.minimum
        too_high = self.maximum is not None and number > self.maximum
        if too_low or too_high:
            raise _CellError(f"must be {self._expected()}, got {text!r}")
        return number

    def _choice(self, text: str) -> str:
        choices = self.choices or ()
        found = self._choices_by_key.get(text.casefold())
        if found is not None:
            return found
        if len(choices) > _MANY_CHOICES:
            allowed = self.help or f"one of {len(choices)} allowed values"
        else:
            allowed = "one of " + ", ".join(choices)
        raise _CellError(f"must be {allowed}, got {text!r}")


@dataclass(frozen=True, kw_only=True)
class Importer:
    """A named importer: its columns, option defaults and the handler of valid rows."""

    name: str
    columns: tuple[Column, ...]
    handler: Handler
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"importer {self.name!r} has duplicate columns")

    def column(self, name: str) -> Column:
        """The column called `name`; unknown names raise `ValidationError` with a suggestion."""
        for column in self.columns:
            if column.name == name:
                return column
        known = [column.name for column in self.columns]
        raise ValidationError(
            f"importer {self.name!r} has no column {name!r}{_suggestion(name, known)}; "
            f"its columns are {', '.join(known)}",
            field="mapping",
        )

    def resolve_options(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The defaults overridden by `given`; unknown options or wrong types are rejected."""
        resolved = dict(self.options)
        for key, value in (given or {}).items():
            if key not in self.options:
                raise ValidationError(
                    f"importer {self.name!r} has no option {key!r}{_suggestion(key, self.options)}",
                    field="options",
                )
            default = self.options[key]
            if default is not None and not isinstance(value, type(default)):
                raise ValidationError(
                    f"option {key!r} must be of type {type(default).__name__}, got {value!r}",
                    field="options",
                )
            resolved[key] = value
        return resolved


class ImporterRegistry:
    """The importers operators may run, by name."""

    def __init__(self) -> None:
        self._importers: dict[str, Importer] = {}

    def register(self, importer: Importer) -> Importer:
        """Add `importer`; names are unique."""
        if not _NAME.fullmatch(importer.name):
            raise ValueError(f"invalid importer name {importer.name!r}")
        if importer.name in self._importers:
            raise ValueError(f"importer {importer.name!r} is already registered")
        self._importers[importer.name] = importer
        return importer

    def importer(
        self,
        name: str,
        columns: Sequence[Column],
        *,
        description: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> Callable[[H], H]:
        """Decorator form of `register`: the decorated function is the handler."""

        def decorate(handler: H) -> H:
            self.register(
                Importer(
                    name=name,
                    columns=tuple(columns),
                    handler=handler,
                    description=description,
                    options=dict(options or {}),
                )
            )
            return handler

        return decorate

    def get(self, name: str) -> Importer:
        """The importer called `name`; unknown names raise `ValidationError` with a suggestion."""
        try:
            return self._importers[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ValidationError(
                f"unknown importer {name!r}{_suggestion(name, self._importers)}; known: {known}",
                field="importer",
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._importers

    def names(self) -> list[str]:
        """Registered importer names, sorted."""
        return sorted(self._importers)


def _resolve(
    importer: Importer, header: Sequence[str], mapping: Mapping[str, str] | None
) -> dict[int, Column]:
    """Header position → importer column; a mapping names CSV headers and importer columns."""
    by_folded = {name.strip().casefold(): index for index, name in enumerate(header)}
    explicit: dict[int, Column] = {}
    for source, target in (mapping or {}).items():
        index = by_folded.get(source.strip().casefold())
        if index is None:
            raise ValidationError(
                f"mapping names CSV column {source!r}, which is not in the header"
                f"{_suggestion(source, header)}",
                field="mapping",
            )
        explicit[index] = importer.column(target)
    resolved: dict[int, Column] = {}
    for index, name in enumerate(header):
        if index in explicit:
            resolved[index] = explicit[index]
            continue
        for column in importer.columns:
            if column.name == name.strip().casefold():
                resolved[index] = column
    targets: dict[str, list[str]] = {}
    for index, column in resolved.items():
        targets.setdefault(column.name, []).append(header[index])
    clashes = [
        f"{name} ← {', '.join(sources)}" for name, sources in targets.items() if len(sources) > 1
    ]
    if clashes:
        raise ValidationError(
            f"several CSV columns map to one importer column: {'; '.join(clashes)}",
            field="mapping",
        )
    return resolved


def missing_columns(
    importer: Importer, header: Sequence[str], mapping: Mapping[str, str] | None = None
) -> list[str]:
    """Required importer columns that no CSV column provides (after the mapping)."""
    provided = {column.name for column in _resolve(importer, header, mapping).values()}
    return [
        column.name
        for column in importer.columns
        if column.required and column.name not in provided
    ]


def describe_errors(errors: Mapping[str, str]) -> str:
    """One line for a row's errors, e.g. "age: must be an integer …; email: is required"."""
    return "; ".join(
        message if column == ROW_ERROR else f"{column}: {message}"
        for column, message in errors.items()
    )


class UniqueKeys(Protocol):
    """The keys of an import's unique columns seen so far, with the row that claimed each.

    An import of millions of rows has millions of keys: the store behind this may keep them
    on disk, so memory stays flat however large the file.
    """

    def find(self, column: str, keys: Collection[Any]) -> dict[Any, int]:
        """Which of `keys` are already claimed, and by which row."""
        ...

    def add(self, column: str, claimed: Sequence[tuple[Any, int]]) -> None:
        """Record keys (none claimed yet) with the row claiming each."""
        ...

    def close(self) -> None:
        """Forget every key (the import's run is over)."""
        ...


class InMemoryKeys:
    """UniqueKeys in a dict: for small inputs (a retry, one row, tests)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[Any, int]] = {}

    def find(self, column: str, keys: Collection[Any]) -> dict[Any, int]:
        seen = self._seen.get(column, {})
        return {key: seen[key] for key in keys if key in seen}

    def add(self, column: str, claimed: Sequence[tuple[Any, int]]) -> None:
        self._seen.setdefault(column, {}).update(claimed)

    def close(self) -> None:
        self._seen.clear()


def _unique_key(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


class RowValidator:
    """Validates the rows of one import, keeping the state of rules that span rows."""

    def __init__(
        self,
        importer: Importer,
        header: Sequence[str],
        mapping: Mapping[str, str] | None = None,
        *,
        keys: UniqueKeys | None = None,
    ) -> None:
        missing = missing_columns(importer, header, mapping)
        if missing:
            raise ValidationError(
                f"the file lacks required columns for importer {importer.name!r}: "
                f"{', '.join(missing)}",
                field="header",
            )
        self.importer = importer
        self.width = len(header)
        self._positions = _resolve(importer, header, mapping)
        self._absent = [
            column for column in importer.columns if column not in self._positions.values()
        ]
        self._unique = [column.name for column in importer.columns if column.unique]
        self._keys: UniqueKeys = keys if keys is not None else InMemoryKeys()

    def validate(
        self, number: int, values: Sequence[str]
    ) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """Converted values of a valid row, or `None` and an error per column."""
        valid, failed = self.validate_chunk([(number, values)])
        if valid:
            return valid[0][1], {}
        return None, failed[0][2]

    def _convert(self, values: Sequence[str]) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """A row's values converted by column (rules within the row only)."""
        if len(values) != self.width:
            return None, {ROW_ERROR: f"expected {self.width} fields, got {len(values)}"}
        row: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for index, column in self._positions.items():
            text = values[index].strip()
            if not text:
                if column.required:
                    errors[column.name] = "is required"
                else:
                    row[column.name] = None
                continue
            try:
                row[column.name] = column.convert(text)
            except _CellError as exc:
                errors[column.name] = str(exc)
        for column in self._absent:
            row[column.name] = None
        return (None, errors) if errors else (row, errors)

    def _duplicates(
        self, candidates: list[tuple[int, list[str], dict[str, Any]]]
    ) -> tuple[list[ValidRow], list[FailedRow]]:
        """Rows whose unique keys an earlier row has are duplicates; the others claim theirs.

        Only rows that pass claim keys, so a row fixed by a retry is not blocked by itself.
        """
        earlier = {
            name: self._keys.find(
                name, {_unique_key(row[name]) for _, _, row in candidates if row[name] is not None}
            )
            for name in self._unique
        }
        claimed: dict[str, dict[Any, int]] = {name: {} for name in self._unique}
        valid: list[ValidRow] = []
        failed: list[FailedRow] = []
        for number, values, row in candidates:
            keys: dict[str, Any] = {}
            errors: dict[str, str] = {}
            for name in self._unique:
                if row[name] is None:
                    continue
                key = keys[name] = _unique_key(row[name])
                first = earlier[name].get(key) or claimed[name].get(key)
                if first is not None:
                    errors[name] = f"duplicate of row {first}"
            if errors:
                failed.append((number, values, errors))
                continue
            for name, key in keys.items():
                claimed[name][key] = number
            valid.append((number, row))
        for name, items in claimed.items():
            if items:
                self._keys.add(name, list(items.items()))
        return valid, failed

    def validate_chunk(
        self, rows: Iterable[ParsedRow | tuple[int, Sequence[str]]]
    ) -> tuple[list[ValidRow], list[FailedRow]]:
        """Split `rows` into valid (number, values) and failed (number, raw values, errors)."""
        candidates: list[tuple[int, list[str], dict[str, Any]]] = []
        failed: list[FailedRow] = []
        for item in rows:
            if isinstance(item, ParsedRow):
                if item.values is None:
                    failed.append(
                        (item.number, [item.raw], {ROW_ERROR: item.error or "unreadable"})
                    )
                    continue
                number, values = item.number, list(item.values)
            else:
                number, values = item[0], list(item[1])
            row, errors = self._convert(values)
            if row is None:
                failed.append((number, values, errors))
            else:
                candidates.append((number, values, row))
        if not self._unique:
            return [(number, row) for number, _, row in candidates], failed
        valid, duplicates = self._duplicates(candidates)
        if duplicates:
            failed = sorted([*failed, *duplicates], key=lambda item: item[0])
        return valid, failed


def validate_row(
    importer: Importer,
    header: Sequence[str],
    mapping: Mapping[str, str] | None,
    values: Sequence[str],
    *,
    number: int = 0,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Validate one row on its own (rules spanning rows need a `RowValidator`)."""
    return RowValidator(importer, header, mapping).validate(number, values)


def validate_chunk(
    importer: Importer,
    header: Sequence[str],
    mapping: Mapping[str, str] | None,
    rows: Iterable[ParsedRow | tuple[int, Sequence[str]]],
    *,
    validator: RowValidator | None = None,
) -> tuple[list[ValidRow], list[FailedRow]]:
    """Validate a chunk; pass the import's `validator` to keep cross-row rules across chunks."""
    validator = validator or RowValidator(importer, header, mapping)
    return validator.validate_chunk(rows)


# -- the built-in `contacts` importer ----------------------------------------------------------

#: ISO 3166-1 alpha-2 country codes (officially assigned).
_COUNTRY_CODE_LIST = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
"""
COUNTRY_CODES: frozenset[str] = frozenset(_COUNTRY_CODE_LIST.split())


class ContactStore(Protocol):
    """Where contacts are written, keyed on their lower-cased email."""

    def upsert(
        self, rows: Sequence[ValidRow], *, update_existing: bool, import_id: UUID, tenant: str
    ) -> Rejections:
        """Insert new contacts, update (or reject) existing ones; the rows refused and why.

        A row already written by the same import and row number (a chunk run again after a
        crash) counts as written.
        """
        ...


def contacts_importer(store: ContactStore) -> Importer:
    """The built-in `contacts` importer, writing to `store`."""

    def import_contacts(rows: list[ValidRow], context: ChunkContext) -> Rejections:
        return store.upsert(
            rows,
            update_existing=bool(context.options.get("update_existing")),
            import_id=context.import_id,
            tenant=context.tenant,
        )

    return Importer(
        name="contacts",
        description="Contacts keyed on email: name, email, age, country.",
        columns=(
            Column(name="name", required=True, max_length=200, help="full name"),
            Column(name="email", type="email", required=True, unique=True, max_length=320),
            Column(name="age", type="int", minimum=0, maximum=150, help="years"),
            Column(
                name="country",
                type="choice",
                choices=tuple(sorted(COUNTRY_CODES)),
                help="an ISO 3166-1 alpha-2 country code such as 'DE' or 'US'",
            ),
        ),
        handler=import_contacts,
        options={"update_existing": False},
    )


#: Importers the application registers (`@default_importers.importer(...)` in a command module).
default_importers = ImporterRegistry()


def builtin_importers(
    contacts: ContactStore, extra: ImporterRegistry | None = None
) -> ImporterRegistry:
    """A registry holding the application's importers (`extra`) and the built-in ones.

    An application importer with a built-in's name replaces the built-in.
    """
    registry = ImporterRegistry()
    for name in extra.names() if extra is not None else []:
        registry.register(extra.get(name))  # type: ignore[union-attr]
    if "contacts" not in registry:
        registry.register(contacts_importer(contacts))
    return registry
