"""A schedule's frequency: a cron expression (seconds optional) or Laravel-style helpers."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from functools import cached_property
from typing import Any

from domain.shared import ValidationError


class FrequencyError(ValidationError):
    """A cron expression, helper, helper argument or timezone is not usable; `field` says where."""


MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

_MONTH_ALIASES = {name[:3].lower(): number for number, name in enumerate(MONTH_NAMES, start=1)}
_WEEKDAY_ALIASES = {name[:3].lower(): number for number, name in enumerate(WEEKDAY_NAMES)}
# Days in each month of a leap year: a day that fits no month even then can never occur.
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# Field positions, seconds first (the order of a 6-field expression).
SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK = range(6)

# croniter and Vixie cron accept these shorthands; they are stored as their 5-field form.
_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


# --------------------------------------------------------------------------- cron parsing


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    aliases: Mapping[str, int]
    # Highest literal accepted: 7 also means Sunday in the day-of-week field.
    top: int


_SPECS = (
    _FieldSpec("second", 0, 59, {}, 59),
    _FieldSpec("minute", 0, 59, {}, 59),
    _FieldSpec("hour", 0, 23, {}, 23),
    _FieldSpec("day-of-month", 1, 31, {}, 31),
    _FieldSpec("month", 1, 12, _MONTH_ALIASES, 12),
    _FieldSpec("day-of-week", 0, 6, _WEEKDAY_ALIASES, 7),
)

_ANY, _VALUE, _RANGE, _STEP = "any", "value", "range", "step"
_LAST, _NEAREST_WEEKDAY = "last", "nearest_weekday"
_LAST_WEEKDAY, _NTH_WEEKDAY = "last_weekday", "nth_weekday"
_PLAIN = frozenset({_VALUE, _RANGE, _STEP})

_LAST_MARK, _NO_SPECIFIC_VALUE = "l", "?"
_STEP_RE = re.compile(r"(?P<base>[^/]+)(?:/(?P<step>\d+))?")
_NEAREST_RE = re.compile(r"(\d+)w|w(\d+)")
_NTH_RE = re.compile(r"(\w+)#(\d+)")
_ORDINAL_WORDS = ("first", "second", "third", "fourth", "fifth")


@dataclass(frozen=True)
class _Part:
    """One comma-separated item of a cron field."""

    kind: str
    start: int = 0
    end: int = 0
    step: int = 1
    # "a/n" (from a to the field's top) is kept apart from "a-b/n": croniter reads an
    # equal "a-a/n" range as the whole cycle, so the two spellings must not be conflated.
    open_end: bool = False

    @property
    def text(self) -> str:  # noqa: PLR0911 - one spelling per kind
        if self.kind == _ANY:
            return "*"
        if self.kind == _VALUE:
            return str(self.start)
        if self.kind == _RANGE:
            return f"{self.start}-{self.end}"
        if self.kind == _STEP:
            if self.open_end:
                return f"{self.start}/{self.step}"
            if self.start == -1:
                return f"*/{self.step}"
            return f"{self.start}-{self.end}/{self.step}"
        if self.kind == _LAST:
            return "L"
        if self.kind == _NEAREST_WEEKDAY:
            return f"{self.start}W"
        if self.kind == _LAST_WEEKDAY:
            return f"L{self.start}"  # croniter's spelling of Quartz's "5L"
        return f"{self.start}#{self.step}"

    def values(self, spec: _FieldSpec) -> set[int]:
        """The plain values this part covers (none for L, W and # forms)."""
        if self.kind == _ANY:
            found = set(range(spec.low, spec.high + 1))
        elif self.kind == _VALUE:
            found = {self.start}
        elif self.kind == _RANGE:
            found = set(range(self.start, self.end + 1))
        elif self.kind == _STEP:
            start = spec.low if self.start == -1 else self.start
            end = spec.high if self.start == -1 or self.open_end else self.end
            found = set(range(start, end + 1, self.step))
        else:
            return set()
        if spec.top > spec.high:  # 7 is Sunday
            found = {0 if value == spec.top else value for value in found}
        return found


@dataclass(frozen=True)
class _Field:
    index: int
    parts: tuple[_Part, ...]

    @property
    def spec(self) -> _FieldSpec:
        return _SPECS[self.index]

    @property
    def text(self) -> str:
        return ",".join(part.text for part in self.parts)

    @property
    def is_any(self) -> bool:
        return self.parts[0].kind == _ANY

    @property
    def only_values(self) -> bool:
        return all(part.kind == _VALUE for part in self.parts)

    @cached_property
    def values(self) -> frozenset[int]:
        found: set[int] = set()
        for part in self.parts:
            found |= part.values(self.spec)
        return frozenset(found)

    @property
    def single(self) -> int | None:
        """The one value this field allows, if it allows exactly one plain value."""
        if all(part.kind in _PLAIN for part in self.parts) and len(self.values) == 1:
            return next(iter(self.values))
        return None


class _CronError(FrequencyError):
    """A cron expression's fault; `problem` says what is wrong without quoting the expression."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f"cron expression {expression!r}: {problem}", field="expression")
        self.problem = problem


def _fail(expression: str, problem: str) -> FrequencyError:
    return _CronError(expression, problem)


def _literal(token: str, spec: _FieldSpec, expression: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token in spec.aliases:
        value = spec.aliases[token]
    else:
        raise _fail(expression, f"{token!r} is not a valid {spec.name} value")
    if not spec.low <= value <= spec.top:
        raise _fail(expression, f"{spec.name} {value} is outside {spec.low}-{spec.top}")
    return value


def _parse_special(token: str, spec: _FieldSpec, expression: str) -> _Part | None:
    if spec.name == "day-of-month":
        if token == _LAST_MARK:
            return _Part(_LAST)
        nearest = _NEAREST_RE.fullmatch(token)
        if nearest:
            day = _literal(nearest.group(1) or nearest.group(2), spec, expression)
            return _Part(_NEAREST_WEEKDAY, start=day)
    if spec.name == "day-of-week":
        nth = _NTH_RE.fullmatch(token)
        if nth:
            weekday = _literal(nth.group(1), spec, expression) % 7
            number = int(nth.group(2))
            if not 1 <= number <= len(_ORDINAL_WORDS):
                raise _fail(expression, f"in {token!r} the week number must be 1-5")
            return _Part(_NTH_WEEKDAY, start=weekday, step=number)
        if len(token) > 1 and (token.startswith("l") or token.endswith("l")):
            weekday_text = token[1:] if token.startswith("l") else token[:-1]
            return _Part(_LAST_WEEKDAY, start=_literal(weekday_text, spec, expression) % 7)
    return None


def _parse_part(  # noqa: C901, PLR0911, PLR0912 - one branch per cron item form
    token: str, spec: _FieldSpec, expression: str
) -> _Part:
    special = _parse_special(token, spec, expression)
    if special is not None:
        return special
    if token == _NO_SPECIFIC_VALUE:
        if spec.name not in {"day-of-month", "day-of-week"}:
            raise _fail(expression, f"'?' is only allowed in the day fields, not in {spec.name}")
        return _Part(_ANY)
    match = _STEP_RE.fullmatch(token)
    if not match:
        raise _fail(expression, f"{token!r} is not a valid {spec.name} item")
    base, step_text = match.group("base"), match.group("step")
    step = None if step_text is None else int(step_text)
    if step is not None:
        span = spec.high - spec.low + 1
        if step == 0:
            raise _fail(expression, f"step 0 in {token!r} would never advance")
        if step > span:
            raise _fail(expression, f"step {step} in {token!r} exceeds the {span} {spec.name}s")
    if base == "*":
        return _Part(_ANY) if step in {None, 1} else _Part(_STEP, start=-1, step=step or 1)
    if "-" in base:
        first_text, _, last_text = base.partition("-")
        first = _literal(first_text, spec, expression)
        last = _literal(last_text, spec, expression)
        if first > last:
            raise _fail(
                expression,
                f"range {token!r} runs backwards; write it as two ranges, e.g. "
                f"{first}-{spec.top},{spec.low}-{last}",
            )
        if first == last:
            return _Part(_VALUE, start=first)
        if step is None or step == 1:
            return _Part(_RANGE, start=first, end=last)
        return _Part(_STEP, start=first, end=last, step=step)
    value = _literal(base, spec, expression)
    if step is None:
        return _Part(_VALUE, start=0 if value == 7 and spec.top == 7 else value)
    if value > spec.high:  # only Sunday as 7, which croniter reads as 0 and widens
        raise _fail(expression, f"write {token!r} with 0 for Sunday")
    if value == spec.high:
        return _Part(_VALUE, start=value)
    if step == 1:
        return _Part(_RANGE, start=value, end=spec.high)
    return _Part(_STEP, start=value, end=spec.high, step=step, open_end=True)


def _parse_field(text: str, index: int, expression: str) -> _Field:
    spec = _SPECS[index]
    tokens = text.split(",")
    if any(not token for token in tokens):
        raise _fail(expression, f"the {spec.name} field {text!r} has an empty list item")
    parts = tuple(_parse_part(token, spec, expression) for token in tokens)
    kinds = {part.kind for part in parts}
    if len(parts) > 1 and _ANY in kinds:
        raise _fail(expression, f"'*' cannot be part of a list in the {spec.name} field")
    if _NEAREST_WEEKDAY in kinds and len(parts) > 1:
        raise _fail(expression, "'W' (nearest weekday) must be the only day-of-month item")
    if kinds & {_LAST_WEEKDAY, _NTH_WEEKDAY} and kinds & (_PLAIN | {_ANY}):
        raise _fail(
            expression,
            "the day-of-week field cannot mix '#'/'L' items with plain days (croniter refuses)",
        )
    return _Field(index, parts)


@dataclass(frozen=True)
class _Cron:
    """A parsed cron expression, always with a seconds field (0 when it was not given)."""

    fields: tuple[_Field, ...]

    @property
    def canonical(self) -> str:
        texts = [cron_field.text for cron_field in self.fields]
        if texts[SECOND] == "0":
            return " ".join(texts[MINUTE:])
        return " ".join(texts)

    @property
    def at_most_daily(self) -> bool:
        return all(self.fields[index].single is not None for index in (SECOND, MINUTE, HOUR))


def _check_possible(cron: _Cron, expression: str) -> None:
    days, months = cron.fields[DAY_OF_MONTH], cron.fields[MONTH]
    if days.is_any or months.is_any:
        return
    if any(part.kind in {_LAST, _NEAREST_WEEKDAY} for part in days.parts):
        return  # L and W always land on an existing day
    longest = max(_LONGEST_MONTH[month - 1] for month in months.values)
    if min(days.values) > longest:
        day_list = _join([str(day) for day in sorted(days.values)])
        month_list = _join([MONTH_NAMES[month - 1] for month in sorted(months.values)])
        raise _fail(expression, f"day {day_list} never occurs in {month_list}")


def _parse(expression: object) -> _Cron:
    if not isinstance(expression, str):
        raise FrequencyError("a cron expression must be a string", field="expression")
    text = expression.strip().lower()
    if not text.isascii():
        raise _fail(expression, "only ASCII characters are allowed")
    text = _NICKNAMES.get(text, text)
    if text.startswith("@"):
        raise _fail(expression, f"unknown nickname; use one of {', '.join(_NICKNAMES)}")
    texts = text.split()
    if len(texts) == len(_SPECS) - 1:
        texts = ["0", *texts]
    elif len(texts) != len(_SPECS):
        raise _fail(
            expression,
            f"has {len(texts)} fields; expected 5 (minute hour day-of-month month "
            "day-of-week) or 6 (second first)",
        )
    cron = _Cron(tuple(_parse_field(item, index, expression) for index, item in enumerate(texts)))
    _check_possible(cron, expression)
    return cron


def canonical_expression(expression: str) -> str:
    """Validate a cron expression and return its canonical form (5 fields, or 6 seconds first)."""
    return _parse(expression).canonical


# --------------------------------------------------------------------------- time windows


_CLOCK_RE = re.compile(r"(\d{1,2})(?::(\d{1,2}))?(?::(\d{1,2}))?")


def _clock(moment: time) -> str:
    if moment.second:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%H:%M")


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


@dataclass(frozen=True)
class TimeWindow:
    """A time-of-day filter (Laravel's between / unlessBetween); an end before the start wraps."""

    start: time
    end: time
    exclude: bool = False

    def contains(self, moment: time) -> bool:
        """Whether `moment` (local wall time) falls inside the window, both ends included."""
        if self.start <= self.end:
            return self.start <= moment <= self.end
        return moment >= self.start or moment <= self.end

    def admits(self, moment: time) -> bool:
        return self.contains(moment) != self.exclude

    def change_points(self) -> tuple[int, int]:
        """Seconds of the day at which admission can change: the start, and just after the end."""
        return _seconds(self.start), (_seconds(self.end) + 1) % 86_400

    def describe(self) -> str:
        text = f"between {_clock(self.start)} and {_clock(self.end)}"
        return f"except {text}" if self.exclude else text

    def to_dict(self) -> dict[str, str]:
        kind = "unlessBetween" if self.exclude else "between"
        return {"kind": kind, "start": _clock(self.start), "end": _clock(self.end)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimeWindow:
        kind = data.get("kind")
        if kind not in {"between", "unlessBetween"}:
            raise FrequencyError(f"unknown time window kind {kind!r}", field="windows")
        try:
            start = _parse_clock(data.get("start"))
            end = _parse_clock(data.get("end"))
        except _ArgumentError as problem:
            raise FrequencyError(f"time window: {problem}", field="windows") from None
        return cls(start, end, exclude=kind == "unlessBetween")


# --------------------------------------------------------------------------- helpers


class _ArgumentError(Exception):
    """An argument a helper cannot take; `item` is the position inside a list argument."""

    def __init__(self, message: str, item: int | None = None) -> None:
        super().__init__(message)
        self.item = item


def _checked_field(text: str, index: int) -> str:
    """`text` as cron field `index`, in its canonical spelling; _CronError if it is not one."""
    if not text.isascii():
        raise _fail(text, "only ASCII characters are allowed")
    return _parse_field(text.strip().lower(), index, text).text


def _field_text(text: str, index: int, shown: object) -> str:
    """`text` checked as cron field `index` for an argument given as `shown`."""
    try:
        return _checked_field(text, index)
    except _CronError as error:
        problem = error.problem
    if repr(shown) in problem:
        raise _ArgumentError(problem)
    raise _ArgumentError(f"{_SPECS[index].name} field {shown!r}: {problem}")


def _cron_field(value: object, index: int) -> str:
    """A whole number, or a string holding a cron field ('37', '*/10', '1-5', '1,3', '*').

    Laravel splices such arguments into the expression as they are; here the field is checked
    first, so a malformed one is refused with the reason instead of making a broken expression.
    """
    spec = _SPECS[index]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _ArgumentError(
            f"{value!r} is not a whole number ({spec.name} {spec.low}-{spec.top}) "
            f"or a string with a cron {spec.name} field such as '1-5'"
        )
    if isinstance(value, int) and not spec.low <= value <= spec.top:
        raise _ArgumentError(f"{spec.name} {value} is outside {spec.low}-{spec.top}")
    return _field_text(str(value), index, value)


def _cron_fields(value: object, convert: Callable[[object], str], index: int) -> str:
    """One item or a list of items (Laravel joins an array with ','), as one cron field."""
    listed = isinstance(value, list | tuple)
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise _ArgumentError("the list is empty")
    texts = []
    for position, item in enumerate(items):
        try:
            texts.append(convert(item))
        except _ArgumentError as problem:
            raise _ArgumentError(str(problem), position if listed else None) from None
    joined = ",".join(texts)
    # Each item is a fine field alone, but not every mix is ('*' in a list, 'W' with others).
    return _field_text(joined, index, joined) if listed else joined


def _month(value: object) -> str:
    if isinstance(value, str):
        name = value.strip().lower()
        for number, full in enumerate(MONTH_NAMES, start=1):
            if name == full.lower():
                return str(number)
    return _cron_field(value, MONTH)


def _weekday(value: object) -> str:
    if isinstance(value, str):
        name = value.strip().lower()
        for number, full in enumerate(WEEKDAY_NAMES):
            if name == full.lower():
                return str(number)
    return _cron_field(value, DAY_OF_WEEK)


def _time_of_day(value: object, *, need_minutes: bool) -> tuple[int, int, int | None]:
    if not isinstance(value, str):
        raise _ArgumentError(f"{value!r} is not a time of day; write it as 'HH:MM'")
    match = _CLOCK_RE.fullmatch(value.strip())
    if not match or (need_minutes and match.group(2) is None):
        raise _ArgumentError(f"{value!r} is not a time of day; write it as 'HH:MM' or 'HH:MM:SS'")
    hour, minute, second = match.groups()
    if int(hour) > 23:
        raise _ArgumentError(f"{value!r}: hour {int(hour)} is outside 0-23")
    if minute is not None and int(minute) > 59:
        raise _ArgumentError(f"{value!r}: minute {int(minute)} is outside 0-59")
    if second is not None and int(second) > 59:
        raise _ArgumentError(f"{value!r}: second {int(second)} is outside 0-59")
    return int(hour), int(minute or 0), None if second is None else int(second)


def _laravel_time(value: object) -> tuple[int, int]:
    """dailyAt's time: 'H', 'H:MM' or 'H:MM:SS', or a whole hour; Laravel 12 drops the seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    hour, minute, _second = _time_of_day(value, need_minutes=False)
    return hour, minute


def _parse_clock(value: object) -> time:
    hour, minute, second = _time_of_day(value, need_minutes=True)
    return time(hour, minute, second or 0)


class _Draft:
    """The fields a chain of helpers is building, seconds first, as Laravel splices them."""

    def __init__(self) -> None:
        self.fields = ["0", "*", "*", "*", "*", "*"]
        self.windows: list[TimeWindow] = []
        self.last_setter = [-1] * len(self.fields)
        self.current = -1

    def set(self, index: int, value: object) -> None:
        self.fields[index] = str(value)
        self.last_setter[index] = self.current

    def set_time(self, moment: tuple[int, int]) -> None:
        # Minute and hour only: the seconds a sub-minute helper set keep repeating, as in Laravel.
        hour, minute = moment
        self.set(MINUTE, minute)
        self.set(HOUR, hour)


_REQUIRED: Any = object()


def _field_kind(index: int, example: str) -> tuple[str, Callable[[object], str]]:
    name = _SPECS[index].name
    return f"integer | string ({name} cron field, e.g. {example!r})", (
        lambda value: _cron_field(value, index)
    )


def _list_kind(
    index: int, convert: Callable[[object], str], single: str
) -> tuple[str, Callable[[object], str]]:
    return f"{single} | (integer | string)[]", lambda value: _cron_fields(value, convert, index)


# How each kind of argument is checked and converted, and its JSON type in the catalogue.
# Where Laravel splices an argument into a cron field, a string with a cron field is accepted.
_KINDS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "minutes": _list_kind(
        MINUTE,
        lambda value: _cron_field(value, MINUTE),
        "integer | string (minute cron field, e.g. '*/10')",
    ),
    "hour": _field_kind(HOUR, "1-3"),
    "time": ("string | integer", _laravel_time),
    "clock": ("string", _parse_clock),
    "day_of_month": _field_kind(DAY_OF_MONTH, "1-5"),
    "month": ("integer | string (month name or month cron field, e.g. '1-6')", _month),
    "weekdays": _list_kind(
        DAY_OF_WEEK, _weekday, "integer | string (day name or day-of-week cron field, e.g. '1-5')"
    ),
    "days_of_month": _list_kind(
        DAY_OF_MONTH,
        lambda value: _cron_field(value, DAY_OF_MONTH),
        "integer | string (day-of-month cron field, e.g. '1-7')",
    ),
    "expression": ("string", _parse),
}


@dataclass(frozen=True)
class HelperParameter:
    """One argument a helper takes: its name, JSON type, default and meaning."""

    name: str
    kind: str
    description: str
    default: Any = _REQUIRED
    # Laravel's variadic `days(1, 3)` / `daysOfMonth(1, 15)`: several arguments or one list.
    variadic: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def type(self) -> str:
        return _KINDS[self.kind][0]


@dataclass(frozen=True)
class HelperSpec:
    """A Laravel scheduler helper: its parameters and what it does to the cron fields."""

    name: str
    summary: str
    parameters: tuple[HelperParameter, ...]
    apply: Callable[[_Draft, list[Any]], None]


def _splice(fields: Mapping[int, str]) -> Callable[[_Draft, list[Any]], None]:
    def apply(draft: _Draft, _args: list[Any]) -> None:
        for index, value in fields.items():
            draft.set(index, value)

    return apply


def _hour_based(hours: str) -> Callable[[_Draft, list[Any]], None]:
    def apply(draft: _Draft, args: list[Any]) -> None:
        draft.set(MINUTE, args[0])
        draft.set(HOUR, hours)

    return apply


def _at_time(draft: _Draft, args: list[Any]) -> None:
    draft.set_time(args[0])


def _pair(first: str, second: str, index: int, names: tuple[str, str]) -> str:
    """Two arguments Laravel joins into one field ("$first,$second"); the join must be valid."""
    joined = f"{first},{second}"
    try:
        return _checked_field(joined, index)
    except _CronError as error:
        raise _ArgumentError(
            f"arguments {names[0]!r} and {names[1]!r} make the {_SPECS[index].name} field "
            f"{joined!r}: {error.problem}"
        ) from None


def _twice_daily_at(draft: _Draft, args: list[Any]) -> None:
    draft.set(MINUTE, args[2])
    draft.set(HOUR, _pair(args[0], args[1], HOUR, ("first", "second")))


def _weekly_on(draft: _Draft, args: list[Any]) -> None:
    draft.set_time(args[1])
    draft.set(DAY_OF_WEEK, args[0])


def _on_days_of_month(
    day_of_month: Callable[[list[Any]], str], month: str | None = None
) -> Callable[[_Draft, list[Any]], None]:
    def apply(draft: _Draft, args: list[Any]) -> None:
        draft.set_time(args[-1])
        draft.set(DAY_OF_MONTH, day_of_month(args))
        if month is not None:
            draft.set(MONTH, month)

    return apply


def _days_of_month(draft: _Draft, args: list[Any]) -> None:
    draft.set_time((0, 0))
    draft.set(DAY_OF_MONTH, args[0])


def _yearly_on(draft: _Draft, args: list[Any]) -> None:
    draft.set_time(args[2])
    draft.set(DAY_OF_MONTH, args[1])
    draft.set(MONTH, args[0])


def _days(draft: _Draft, args: list[Any]) -> None:
    draft.set(DAY_OF_WEEK, args[0])


def _window(*, exclude: bool) -> Callable[[_Draft, list[Any]], None]:
    def apply(draft: _Draft, args: list[Any]) -> None:
        draft.windows.append(TimeWindow(args[0], args[1], exclude=exclude))

    return apply


def _whole_expression(draft: _Draft, args: list[Any]) -> None:
    cron: _Cron = args[0]
    for index, cron_field in enumerate(cron.fields):
        draft.set(index, cron_field.text)


# Laravel 12's dailyAt reads 'H', 'H:i' or 'H:i:s' and keeps hour and minute only.
_TIME_TEXT = "Time of day, 'HH:MM' ('H' or 'HH:MM:SS' too; seconds are ignored, as in Laravel)."
_TIME = HelperParameter("time", "time", _TIME_TEXT, "0:0")
_OFFSET = HelperParameter("minute", "minutes", "Minute(s) past the hour, 0-59.", 0)


def _every(seconds: str, name: str, summary: str) -> HelperSpec:
    return HelperSpec(name, summary, (), _splice({SECOND: seconds, MINUTE: "*"}))


def _build_helpers() -> dict[str, HelperSpec]:
    specs = [
        _every("*", "everySecond", "Run every second."),
        _every("*/2", "everyTwoSeconds", "Run every two seconds."),
        _every("*/5", "everyFiveSeconds", "Run every five seconds."),
        _every("*/10", "everyTenSeconds", "Run every ten seconds."),
        _every("*/15", "everyFifteenSeconds", "Run every fifteen seconds."),
        _every("*/20", "everyTwentySeconds", "Run every twenty seconds."),
        _every("*/30", "everyThirtySeconds", "Run every thirty seconds."),
    ]
    for name, value, words in (
        ("everyMinute", "*", "minute"),
        ("everyTwoMinutes", "*/2", "two minutes"),
        ("everyThreeMinutes", "*/3", "three minutes"),
        ("everyFourMinutes", "*/4", "four minutes"),
        ("everyFiveMinutes", "*/5", "five minutes"),
        ("everyTenMinutes", "*/10", "ten minutes"),
        ("everyFifteenMinutes", "*/15", "fifteen minutes"),
        ("everyThirtyMinutes", "*/30", "thirty minutes"),
    ):
        specs.append(HelperSpec(name, f"Run every {words}.", (), _splice({MINUTE: value})))
    specs += [
        HelperSpec("hourly", "Run every hour, at minute 0.", (), _splice({MINUTE: "0"})),
        HelperSpec(
            "hourlyAt",
            "Run every hour at the given minute(s).",
            (HelperParameter("minute", "minutes", "Minute(s) past the hour, 0-59."),),
            _hour_based("*"),
        ),
    ]
    for name, hours, words in (
        ("everyOddHour", "1-23/2", "odd hour (01:00, 03:00, ...)"),
        ("everyTwoHours", "*/2", "two hours"),
        ("everyThreeHours", "*/3", "three hours"),
        ("everyFourHours", "*/4", "four hours"),
        ("everySixHours", "*/6", "six hours"),
    ):
        specs.append(HelperSpec(name, f"Run every {words}.", (_OFFSET,), _hour_based(hours)))
    first_hour = HelperParameter("first", "hour", "First hour, 0-23.", 1)
    second_hour = HelperParameter("second", "hour", "Second hour, 0-23.", 13)
    at_time = HelperParameter("time", "time", _TIME_TEXT)
    specs += [
        HelperSpec("daily", "Run every day at midnight.", (), _splice({MINUTE: "0", HOUR: "0"})),
        HelperSpec(
            "at", "Run every day at the given time (same as dailyAt).", (at_time,), _at_time
        ),
        HelperSpec("dailyAt", "Run every day at the given time.", (at_time,), _at_time),
        HelperSpec(
            "twiceDaily",
            "Run every day at minute 0 of two hours.",
            (first_hour, second_hour),
            lambda draft, args: _twice_daily_at(draft, [*args, "0"]),
        ),
        HelperSpec(
            "twiceDailyAt",
            "Run every day at two hours, at the given minute.",
            (first_hour, second_hour, _OFFSET),
            _twice_daily_at,
        ),
        HelperSpec(
            "weekly",
            "Run every Sunday at midnight.",
            (),
            _splice({MINUTE: "0", HOUR: "0", DAY_OF_WEEK: "0"}),
        ),
        HelperSpec(
            "weeklyOn",
            "Run every week on the given day(s) at the given time.",
            (
                HelperParameter(
                    "dayOfWeek", "weekdays", "Day(s) of the week: 0-6 (0 = Sunday) or names."
                ),
                _TIME,
            ),
            _weekly_on,
        ),
        HelperSpec(
            "monthly",
            "Run on the first day of every month at midnight.",
            (),
            _splice({MINUTE: "0", HOUR: "0", DAY_OF_MONTH: "1"}),
        ),
        HelperSpec(
            "monthlyOn",
            "Run every month on the given day at the given time.",
            (HelperParameter("dayOfMonth", "day_of_month", "Day of the month, 1-31.", 1), _TIME),
            _on_days_of_month(lambda args: str(args[0])),
        ),
        HelperSpec(
            "twiceMonthly",
            "Run every month on two days at the given time.",
            (
                HelperParameter("first", "day_of_month", "First day of the month, 1-31.", 1),
                HelperParameter("second", "day_of_month", "Second day of the month, 1-31.", 16),
                _TIME,
            ),
            _on_days_of_month(
                lambda args: _pair(args[0], args[1], DAY_OF_MONTH, ("first", "second"))
            ),
        ),
        HelperSpec(
            "lastDayOfMonth",
            "Run on the last day of every month (28th-31st, per month) at the given time.",
            (_TIME,),
            _on_days_of_month(lambda _args: "L"),
        ),
        HelperSpec(
            "daysOfMonth",
            "Run at midnight on the given days of every month.",
            (HelperParameter("days", "days_of_month", "Days of the month, 1-31.", variadic=True),),
            _days_of_month,
        ),
        HelperSpec(
            "quarterly",
            "Run at midnight on the first day of every quarter.",
            (),
            _splice({MINUTE: "0", HOUR: "0", DAY_OF_MONTH: "1", MONTH: "1-12/3"}),
        ),
        HelperSpec(
            "quarterlyOn",
            "Run every quarter on the given day of its months at the given time.",
            (
                HelperParameter("dayOfQuarter", "day_of_month", "Day of the month, 1-31.", 1),
                _TIME,
            ),
            _on_days_of_month(lambda args: str(args[0]), month="1-12/3"),
        ),
        HelperSpec(
            "yearly",
            "Run at midnight on January 1st.",
            (),
            _splice({MINUTE: "0", HOUR: "0", DAY_OF_MONTH: "1", MONTH: "1"}),
        ),
        HelperSpec(
            "yearlyOn",
            "Run every year on the given month and day at the given time.",
            (
                HelperParameter("month", "month", "Month, 1-12 or a name.", 1),
                HelperParameter("dayOfMonth", "day_of_month", "Day of the month, 1-31.", 1),
                _TIME,
            ),
            _yearly_on,
        ),
        HelperSpec("weekdays", "Only Monday to Friday.", (), _splice({DAY_OF_WEEK: "1-5"})),
        HelperSpec("weekends", "Only Saturday and Sunday.", (), _splice({DAY_OF_WEEK: "6,0"})),
    ]
    for number, day in enumerate(WEEKDAY_NAMES):
        specs.append(
            HelperSpec(
                f"{day.lower()}s", f"Only on {day}s.", (), _splice({DAY_OF_WEEK: str(number)})
            )
        )
    window_start = HelperParameter("start", "clock", "Start of the window, 'HH:MM', inclusive.")
    window_end = HelperParameter(
        "end", "clock", "End of the window, 'HH:MM', inclusive; before the start wraps midnight."
    )
    specs += [
        HelperSpec(
            "days",
            "Only on the given days of the week.",
            (
                HelperParameter(
                    "days",
                    "weekdays",
                    "Days of the week: 0-6 (0 = Sunday) or names.",
                    variadic=True,
                ),
            ),
            _days,
        ),
        HelperSpec(
            "between",
            "Only when the local time of day is within the window.",
            (window_start, window_end),
            _window(exclude=False),
        ),
        HelperSpec(
            "unlessBetween",
            "Not when the local time of day is within the window.",
            (window_start, window_end),
            _window(exclude=True),
        ),
        HelperSpec(
            "cron",
            "Replace the whole expression (5 fields, or 6 with seconds first).",
            (HelperParameter("expression", "expression", "A cron expression."),),
            _whole_expression,
        ),
    ]
    return {spec.name: spec for spec in specs}


HELPERS: Mapping[str, HelperSpec] = _build_helpers()
MAX_HELPERS = 50


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class HelperCall:
    """One helper of a chain as the user wrote it: a name and JSON arguments."""

    name: str
    args: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "args": _thaw(self.args)}


def _unknown_helper(name: object, where: str) -> FrequencyError:
    if not isinstance(name, str) or not name:
        return FrequencyError(f"{where}: a helper needs a 'name' string", field=f"{where}.name")
    by_lower = {known.lower(): known for known in HELPERS}
    guess = by_lower.get(name.lower()) or next(
        iter(difflib.get_close_matches(name, list(HELPERS), n=1, cutoff=0.6)), None
    )
    hint = f"; did you mean {guess!r}?" if guess else "; GET /api/frequencies lists them"
    return FrequencyError(f"{where}: unknown helper {name!r}{hint}", field=f"{where}.name")


def _call_arguments(spec: HelperSpec, raw: Sequence[Any], where: str) -> list[Any]:
    """Check a helper's raw arguments against its parameters; return them converted."""
    params = spec.parameters
    variadic = bool(params) and params[-1].variadic
    if not variadic and len(raw) > len(params):
        takes = (
            f"{len(params)} argument(s) ({', '.join(param.name for param in params)})"
            if params
            else "no arguments"
        )
        raise FrequencyError(
            f"{where}: helper {spec.name!r} takes {takes}, got {len(raw)}",
            field=f"{where}.args[{len(params)}]",
        )
    converted = []
    for position, param in enumerate(params):
        if param.variadic:
            value: Any = raw[position] if len(raw) == position + 1 else list(raw[position:])
            spread = len(raw) != position + 1
        else:
            value = raw[position] if position < len(raw) else param.default
            spread = False
        if value is _REQUIRED or (param.variadic and value == []):
            raise FrequencyError(
                f"{where}: helper {spec.name!r} needs argument {param.name!r} "
                f"({param.description})",
                field=f"{where}.args[{position}]",
            )
        try:
            converted.append(_KINDS[param.kind][1](value))
        except _ArgumentError as problem:
            path = f"{where}.args[{position}]"
            if problem.item is not None:
                path = (
                    f"{where}.args[{position + problem.item}]"
                    if spread
                    else f"{path}[{problem.item}]"
                )
            raise FrequencyError(
                f"{where}: helper {spec.name!r}, argument {param.name!r}: {problem}", field=path
            ) from None
        except FrequencyError as error:  # a cron expression given to `cron`
            raise FrequencyError(
                f"{where}: helper {spec.name!r}, argument {param.name!r}: {error}",
                field=f"{where}.args[{position}]",
            ) from None
    return converted


def _read_call(item: object, where: str) -> tuple[HelperSpec, HelperCall, list[Any]]:
    if not isinstance(item, Mapping):
        raise FrequencyError(
            f"{where}: a helper is an object like {{'name': 'dailyAt', 'args': ['13:00']}}",
            field=where,
        )
    unknown = sorted(str(key) for key in item if key not in {"name", "args"})
    if unknown:
        raise FrequencyError(
            f"{where}: unknown key(s) {', '.join(unknown)}; a helper has 'name' and 'args'",
            field=f"{where}.{unknown[0]}",
        )
    name = item.get("name")
    if not isinstance(name, str) or name not in HELPERS:
        raise _unknown_helper(name, where)
    raw = item.get("args", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list | tuple):
        raise FrequencyError(f"{where}: 'args' of {name!r} must be a list", field=f"{where}.args")
    spec = HELPERS[name]
    return spec, HelperCall(name, _freeze(raw)), _call_arguments(spec, raw, where)


# --------------------------------------------------------------------------- description


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _units(cron_field: _Field, unit: str) -> str:  # noqa: PLR0911 - one phrase per form
    """Seconds or minutes in words: 'every 10 seconds', 'at minute 17', 'minutes 0 through 9'."""
    if cron_field.is_any:
        return f"every {unit}"
    if cron_field.only_values:
        values = sorted(cron_field.values)
        plural = "s" if len(values) > 1 else ""
        return f"at {unit}{plural} {_join([str(value) for value in values])}"
    if len(cron_field.parts) == 1:
        part = cron_field.parts[0]
        if part.kind == _STEP and part.start == -1:
            return f"every {part.step} {unit}s"
        if part.kind == _STEP and part.open_end:
            return f"every {part.step} {unit}s from {unit} {part.start}"
        if part.kind == _STEP:
            return f"every {part.step} {unit}s from {unit} {part.start} through {part.end}"
        return f"every {unit} from {unit} {part.start} through {part.end}"
    return f"at {unit}s {_join([str(value) for value in sorted(cron_field.values)])}"


def _hours(cron_field: _Field) -> str:
    if cron_field.only_values and len(cron_field.values) <= 2:
        return _join(
            [f"from {hour:02}:00 through {hour:02}:59" for hour in sorted(cron_field.values)]
        )
    if len(cron_field.parts) == 1:
        part = cron_field.parts[0]
        if part.kind == _RANGE:
            return f"from {part.start:02}:00 through {part.end:02}:59"
        if part.start == -1:
            return f"every {_ordinal(part.step)} hour"
        if part.open_end:
            return f"every {_ordinal(part.step)} hour from {part.start:02}:00"
        return f"every {_ordinal(part.step)} hour from {part.start:02}:00 through {part.end:02}:00"
    hours = [f"{hour:02}" for hour in sorted(cron_field.values)]
    return f"in hours {_join(hours)}"


def _time_of_day_text(second: _Field, minute: _Field, hour: _Field) -> str:
    fixed = second.only_values and minute.only_values and hour.only_values
    count = len(second.values) * len(minute.values) * len(hour.values)
    if fixed and count <= 6:  # a short list of clock times reads best
        times = sorted(
            time(h, m, s) for h in hour.values for m in minute.values for s in second.values
        )
        return f"at {_join([_clock(moment) for moment in times])}"
    texts = []
    seconds_shown = second.single != 0
    if seconds_shown:
        texts.append(_units(second, "second"))
    if not minute.is_any:
        minute_text = _units(minute, "minute")
        texts.append(
            f"{minute_text} of every hour" if minute.only_values and hour.is_any else minute_text
        )
    elif not seconds_shown or second.only_values:
        texts.append("every minute")
    if not hour.is_any:
        texts.append(_hours(hour))
    return ", ".join(texts)


def _days_of_month_text(days: _Field) -> str:
    if days.is_any:
        return ""
    texts = []
    numbers = [part for part in days.parts if part.kind in {_VALUE, _RANGE}]
    if numbers:
        label = "day" if len(numbers) == 1 and numbers[0].kind == _VALUE else "days"
        items = [
            str(part.start) if part.kind == _VALUE else f"{part.start} through {part.end}"
            for part in numbers
        ]
        texts.append(f"{label} {_join(items)}")
    for part in days.parts:
        if part.kind == _STEP:
            start = 1 if part.start == -1 else part.start
            end = 31 if part.start == -1 or part.open_end else part.end
            span = "" if (start, end) == (1, 31) else f" from day {start} through {end}"
            texts.append(f"every {_ordinal(part.step)} day{span}")
        elif part.kind == _LAST:
            texts.append("the last day")
        elif part.kind == _NEAREST_WEEKDAY:
            texts.append(f"the weekday nearest day {part.start}")
    return f"on {_join(texts)} of the month"


def _months_text(months: _Field) -> str:
    if months.is_any:
        return ""
    if len(months.parts) == 1 and months.parts[0].kind == _RANGE:
        part = months.parts[0]
        return f"from {MONTH_NAMES[part.start - 1]} through {MONTH_NAMES[part.end - 1]}"
    return f"in {_join([MONTH_NAMES[month - 1] for month in sorted(months.values)])}"


def _weekdays_text(weekdays: _Field) -> str:
    if weekdays.is_any:
        return ""
    parts = weekdays.parts
    if parts[0].kind in {_NTH_WEEKDAY, _LAST_WEEKDAY}:
        items = [
            f"the last {WEEKDAY_NAMES[part.start]}"
            if part.kind == _LAST_WEEKDAY
            else f"the {_ORDINAL_WORDS[part.step - 1]} {WEEKDAY_NAMES[part.start]}"
            for part in parts
        ]
        return f"on {_join(items)} of the month"
    if len(parts) == 1 and parts[0].kind == _RANGE:
        return f"{WEEKDAY_NAMES[parts[0].start]} through {WEEKDAY_NAMES[parts[0].end % 7]}"
    names: list[str] = []
    for part in parts:
        if part.kind == _RANGE:
            names.append(f"{WEEKDAY_NAMES[part.start]} through {WEEKDAY_NAMES[part.end % 7]}")
        else:
            names += [WEEKDAY_NAMES[day] for day in sorted(part.values(weekdays.spec))]
    return f"on {_join(list(dict.fromkeys(names)))}"


def _describe(cron: _Cron, windows: Sequence[TimeWindow]) -> str:
    second, minute, hour, days, months, weekdays = cron.fields
    text = _time_of_day_text(second, minute, hour)
    days_text, weekdays_text = _days_of_month_text(days), _weekdays_text(weekdays)
    if days_text and weekdays_text:  # cron runs when either day field matches
        on_weekdays = weekdays_text if weekdays_text.startswith("on ") else f"on {weekdays_text}"
        text += f" {days_text} or {on_weekdays}"
    elif days_text:
        text += f" {days_text}"
    if months_text := _months_text(months):
        text += f", {months_text}"
    if weekdays_text and not days_text:
        text += f", {weekdays_text}"
    for window in windows:
        text += f", {window.describe()}"
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------- the value object


@dataclass(frozen=True)
class Frequency:
    """When a schedule runs: a canonical cron expression, the helpers it came from, time windows."""

    expression: str
    helpers: tuple[HelperCall, ...] | None = None
    windows: tuple[TimeWindow, ...] = ()
    _cron: _Cron = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cron = _parse(self.expression)
        # Frozen: canonicalise in place so equal schedules compare and store equal.
        object.__setattr__(self, "_cron", cron)
        object.__setattr__(self, "expression", cron.canonical)

    @classmethod
    def from_expression(cls, expression: str) -> Frequency:
        return cls(expression)

    @classmethod
    def from_helpers(cls, helpers: Sequence[Mapping[str, Any]]) -> Frequency:
        """Apply helpers in order, each overwriting only its own fields, from `* * * * *`."""
        if isinstance(helpers, str | bytes) or not isinstance(helpers, Sequence):
            raise FrequencyError("helpers must be a list of {name, args} objects", field="helpers")
        if not helpers:
            raise FrequencyError("helpers must name at least one helper", field="helpers")
        if len(helpers) > MAX_HELPERS:
            raise FrequencyError(f"at most {MAX_HELPERS} helpers", field="helpers")
        draft = _Draft()
        calls = []
        for position, item in enumerate(helpers):
            where = f"helpers[{position}]"
            spec, call, arguments = _read_call(item, where)
            draft.current = position
            try:
                spec.apply(draft, arguments)
            except _ArgumentError as problem:  # arguments fine alone, not joined into one field
                raise FrequencyError(
                    f"{where}: helper {spec.name!r}, {problem}", field=f"{where}.args"
                ) from None
            calls.append(call)
        texts = draft.fields[1:] if draft.fields[SECOND] == "0" else draft.fields
        expression = " ".join(texts)
        try:
            cron = _parse(expression)
        except FrequencyError as error:
            # The chain's values were each fine but do not fit together (e.g. yearlyOn(2, 30)).
            culprit = max(draft.last_setter[DAY_OF_MONTH], draft.last_setter[MONTH], 0)
            raise FrequencyError(
                f"helpers[{culprit}]: the helpers build an impossible schedule: {error}",
                field=f"helpers[{culprit}]",
            ) from None
        return cls(cron.canonical, tuple(calls), tuple(draft.windows))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Frequency:
        """Rebuild a stored frequency; the stored expression is kept, helpers are not re-run."""
        try:
            helpers = data.get("helpers")
            calls = None
            if helpers is not None:
                calls = tuple(
                    HelperCall(str(item["name"]), _freeze(item.get("args") or []))
                    for item in helpers
                )
            windows = tuple(TimeWindow.from_dict(item) for item in data.get("windows") or [])
            expression = data["expression"]
        except (KeyError, TypeError, AttributeError) as error:
            raise FrequencyError(f"not a stored frequency: {error!r}", field="frequency") from None
        return cls(expression, calls, windows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "helpers": None if self.helpers is None else [call.to_dict() for call in self.helpers],
            "windows": [window.to_dict() for window in self.windows],
        }

    def describe(self) -> str:
        """The schedule in English, e.g. 'At 13:00, Monday through Friday'."""
        return _describe(self._cron, self.windows)

    @property
    def at_most_daily(self) -> bool:
        """True when second, minute and hour are single values: at most one run per local day."""
        return self._cron.at_most_daily

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) == len(_SPECS)

    def admits(self, moment: time) -> bool:
        """Whether the time windows let a run at local wall time `moment` happen."""
        return all(window.admits(moment) for window in self.windows)
