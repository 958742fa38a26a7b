"""Frequencies at work: the helper catalogue, previews, and a schedule's ticks under DST rules."""

from __future__ import annotations

import difflib
import functools
import heapq
import itertools
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from application.ports import CronCalculator
from domain.frequency import HELPERS, Frequency, FrequencyError, HelperSpec
from domain.shared import ValidationError, require_utc

SKIPPED_DST_GAP = "dst_gap"
SHIFTED_AFTER_GAP = "shifted_after_gap"
FIRST_OCCURRENCE = "first_occurrence"
SECOND_OCCURRENCE = "second_occurrence"
MAX_PREVIEW = 100

# No admitted run this long after the last one means the windows exclude every run (a run on
# 29 February alone can be 8 years from the previous one).
_NEVER_AFTER = timedelta(days=366 * 10)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Tick:
    """One due time of a schedule: the UTC instant, the local slot it stands for, DST notes."""

    due_at: datetime  # UTC, aware
    local: datetime  # the schedule's local wall-clock slot (naive), even when it does not exist
    skipped: str | None = None  # None, or "dst_gap"
    dst: str | None = None  # None, "shifted_after_gap", "first_occurrence", "second_occurrence"


#: Names in the zone database that are no place: the host's own zone (`localtime`), the
#: template of POSIX rules and tzdata's `Factory` placeholder (abbreviated "-00").
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})
#: No IANA name is longer; longer input gets no suggestion (difflib is quadratic).
_MAX_NAME = 64


@functools.cache
def timezone_names() -> frozenset[str]:
    """The IANA timezone names a schedule may use: the zone database's, less those no place."""
    return frozenset(zoneinfo.available_timezones() - _NOT_PLACES)


def _timezone_hint(name: str) -> str:
    """A suggestion for a near miss ('europe/rome', 'Europe/Rom'), else an example."""
    names = timezone_names()
    match = None
    if len(name) <= _MAX_NAME:
        by_case = {known.casefold(): known for known in names}
        match = by_case.get(name.casefold().replace(" ", "_"))
        if match is None:
            close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.75)
            match = close[0] if close else None
    return f" (did you mean {match!r}?)" if match else "; use an IANA name such as 'Europe/Rome'"


def validate_timezone(name: object) -> str:
    """Return `name` if it is an IANA timezone name, else raise FrequencyError naming it."""
    if not isinstance(name, str) or not name.strip():
        raise FrequencyError(
            "timezone must be an IANA name such as 'Europe/Rome'", field="timezone"
        )
    if name not in timezone_names():
        raise FrequencyError(
            f"unknown timezone {name[:100]!r}{_timezone_hint(name)}",
            field="timezone",
        )
    return name


def _zone(name: str) -> ZoneInfo:
    """The zone of a stored schedule (checked by `validate_timezone` when it was given)."""
    # Not checked again here: schedules saved while a looser check let names such as
    # 'localtime' in keep their ticks.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ValueError: keys such as '../x'
        raise FrequencyError(f"unknown timezone {name[:100]!r}", field="timezone") from None


# --------------------------------------------------------------------------- ticks
#
# The DST rule, for a schedule in a timezone:
# - At most one run a local day (second, minute and hour are single values): it runs once on
#   each matching day. A time inside the spring-forward gap runs at the first instant after the
#   gap ("shifted_after_gap"); a time that occurs twice runs at its first occurrence only.
# - Several runs a day follow real time: a slot inside the gap does not exist and is reported
#   as a skipped tick ("dst_gap", due at the first instant after the gap); slots in the repeated
#   hour run in both occurrences ("first_occurrence", then "second_occurrence").
# - Time windows (between / unlessBetween) filter the local wall time of each slot.


def _start_slot(after: datetime, zone: ZoneInfo) -> datetime:
    """The local wall time from which slots can still be due after `after`.

    A slot's latest due instant is its wall time minus the smallest UTC offset in force around
    it, so slots at or before `after` + that offset are all due by `after`.
    """
    offsets = [
        (after + delta).astimezone(zone).utcoffset() for delta in (-_DAY, timedelta(0), _DAY)
    ]
    least = min(offset for offset in offsets if offset is not None)
    return (after + least).replace(tzinfo=None)


def _gap_end(before_gap: datetime, after_gap: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant (the first instant after the gap), between two UTC bounds."""
    offset = before_gap.astimezone(zone).utcoffset()
    low, high = before_gap, after_gap
    while high - low > _SECOND:
        middle = low + ((high - low) // _SECOND // 2) * _SECOND
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high


def _slot_ticks(slot: datetime, zone: ZoneInfo, *, once_a_day: bool) -> list[Tick]:
    """The tick(s) one local slot makes, earliest first."""
    earlier_offset = slot.replace(tzinfo=zone, fold=0).astimezone(UTC)
    later_offset = slot.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if earlier_offset == later_offset:
        return [Tick(earlier_offset, slot)]
    if earlier_offset.astimezone(zone).replace(tzinfo=None) != slot:
        # In the gap: fold=0 reads it with the offset before the jump, fold=1 with the one after,
        # and the transition lies between the two readings.
        after_gap = _gap_end(later_offset, earlier_offset, zone)
        if once_a_day:
            return [Tick(after_gap, slot, dst=SHIFTED_AFTER_GAP)]
        return [Tick(after_gap, slot, skipped=SKIPPED_DST_GAP)]
    first, second = sorted((earlier_offset, later_offset))
    if once_a_day:
        return [Tick(first, slot, dst=FIRST_OCCURRENCE)]
    return [Tick(first, slot, dst=FIRST_OCCURRENCE), Tick(second, slot, dst=SECOND_OCCURRENCE)]


def _next_change(slot: datetime, changes: list[int]) -> datetime:
    """The next wall time after `slot` at which the time windows can start admitting runs."""
    midnight = slot.replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = slot.hour * 3600 + slot.minute * 60 + slot.second
    for change in changes:
        if change > seconds:
            return midnight + timedelta(seconds=change)
    return midnight + _DAY + timedelta(seconds=changes[0])


def _slots(frequency: Frequency, cursor: datetime, cron: CronCalculator) -> Iterator[datetime]:
    """Local wall-clock slots after `cursor` that the time windows admit, in wall-clock order."""
    expression = frequency.expression
    if not frequency.windows:
        while True:
            cursor = cron.next_local(expression, cursor)
            yield cursor
    changes = sorted({point for window in frequency.windows for point in window.change_points()})
    last_run = cursor
    while True:
        slot = cron.next_local(expression, cursor)
        if frequency.admits(slot.time()):
            last_run = cursor = slot
            yield slot
            continue
        if slot - last_run > _NEVER_AFTER:
            raise FrequencyError(
                f"{frequency.describe()!r} never runs: its time windows exclude every run",
                field="helpers",
            )
        # Admission only changes at a window edge: jump there instead of visiting every
        # excluded slot (an every-second schedule outside its window would be 80,000 a day).
        cursor = _next_change(slot, changes) - _SECOND


def _ticks(
    frequency: Frequency, zone: ZoneInfo, after: datetime, cron: CronCalculator
) -> Iterator[Tick]:
    once_a_day = frequency.at_most_daily
    # Second occurrences (an hour later in UTC) wait here until every earlier tick is out.
    pending: list[tuple[datetime, int, Tick]] = []
    order = itertools.count()
    for slot in _slots(frequency, _start_slot(after, zone), cron):
        made = _slot_ticks(slot, zone, once_a_day=once_a_day)
        # The earliest due time of successive slots never decreases, so anything pending at
        # or before this slot's earliest tick can go out (ties keep the order they were made).
        while pending and pending[0][0] <= made[0].due_at:
            yield heapq.heappop(pending)[2]
        for tick in made:
            if tick.due_at > after:
                heapq.heappush(pending, (tick.due_at, next(order), tick))


def _resume(
    frequency: Frequency, zone: ZoneInfo, previous: Tick, cron: CronCalculator
) -> Iterator[Tick]:
    """The ticks after `previous`, including others due at the same instant that follow it."""
    passed = False
    for tick in _ticks(frequency, zone, previous.due_at - timedelta(microseconds=1), cron):
        if not passed:
            if tick == previous:
                passed = True
                continue
            if tick.due_at <= previous.due_at:
                continue
            passed = True
        yield tick


def ticks(
    frequency: Frequency, timezone: str, after: datetime | Tick, cron: CronCalculator
) -> Iterator[Tick]:
    """Every tick due after `after` (aware), in due order, forever.

    Skipped gap slots share their due instant with the run at the end of the gap; pass the
    previous Tick as `after` to resume without losing ticks due at the same instant.
    """
    zone = _zone(timezone)
    if isinstance(after, Tick):
        return _resume(frequency, zone, after, cron)
    return _ticks(frequency, zone, require_utc(after, "after"), cron)


def next_tick(
    frequency: Frequency, timezone: str, after: datetime | Tick, cron: CronCalculator
) -> Tick:
    """The first tick due after `after` (an aware datetime, or the previous Tick)."""
    return next(ticks(frequency, timezone, after, cron))


# --------------------------------------------------------------------------- preview


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def preview(
    frequency: Frequency, timezone: str, count: int, now: datetime, cron: CronCalculator
) -> dict[str, Any]:
    """The next `count` ticks (skipped ones included) as JSON: local with offset, and UTC."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise ValidationError(f"count must be a whole number 1-{MAX_PREVIEW}", field="count")
    zone = ZoneInfo(validate_timezone(timezone))
    cron.validate(frequency.expression)
    runs = [
        {
            "local": tick.due_at.astimezone(zone).isoformat(),
            "utc": _utc_text(tick.due_at),
            "skipped": tick.skipped,
            "dst": tick.dst,
            # The wall-clock slot it stands for: differs from `local` when shifted or skipped.
            "slot": tick.local.isoformat(),
        }
        for tick in itertools.islice(ticks(frequency, timezone, now, cron), count)
    ]
    return {
        "expression": frequency.expression,
        "description": frequency.describe(),
        "timezone": timezone,
        "next_runs": runs,
    }


# --------------------------------------------------------------------------- catalogue

# Examples worth more than the helper alone: its arguments, or the helper it refines.
_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "hourlyAt": [{"name": "hourlyAt", "args": [17]}],
    "everyOddHour": [{"name": "everyOddHour", "args": [15]}],
    "at": [{"name": "at", "args": ["13:00"]}],
    "dailyAt": [{"name": "dailyAt", "args": ["13:00"]}],
    "twiceDailyAt": [{"name": "twiceDailyAt", "args": [1, 13, 15]}],
    "weeklyOn": [{"name": "weeklyOn", "args": [1, "8:00"]}],
    "monthlyOn": [{"name": "monthlyOn", "args": [4, "15:00"]}],
    "twiceMonthly": [{"name": "twiceMonthly", "args": [1, 16, "13:00"]}],
    "lastDayOfMonth": [{"name": "lastDayOfMonth", "args": ["15:00"]}],
    "daysOfMonth": [{"name": "daysOfMonth", "args": [1, 10, 20]}],
    "quarterlyOn": [{"name": "quarterlyOn", "args": [4, "14:00"]}],
    "yearlyOn": [{"name": "yearlyOn", "args": [6, 1, "17:00"]}],
    "weekdays": [{"name": "weekdays", "args": []}, {"name": "dailyAt", "args": ["13:00"]}],
    "weekends": [{"name": "weekends", "args": []}, {"name": "hourly", "args": []}],
    "days": [{"name": "days", "args": [[0, 3]]}, {"name": "hourly", "args": []}],
    "between": [
        {"name": "everyFifteenMinutes", "args": []},
        {"name": "between", "args": ["7:00", "22:00"]},
    ],
    "unlessBetween": [
        {"name": "hourly", "args": []},
        {"name": "unlessBetween", "args": ["23:00", "4:00"]},
    ],
    "cron": [{"name": "cron", "args": ["0 9 * * 1-5"]}],
}
for _day in ("mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays"):
    _EXAMPLES[_day] = [{"name": _day, "args": []}, {"name": "dailyAt", "args": ["8:00"]}]


def _catalogue_entry(spec: HelperSpec) -> dict[str, Any]:
    helpers = _EXAMPLES.get(spec.name, [{"name": spec.name, "args": []}])
    example = Frequency.from_helpers(helpers)
    return {
        "name": spec.name,
        "parameters": [
            {
                "name": param.name,
                "type": param.type,
                "default": None if param.required else param.default,
                "required": param.required,
                "description": param.description,
            }
            for param in spec.parameters
        ],
        "description": spec.summary,
        "example": {
            "helpers": helpers,
            "expression": example.expression,
            "description": example.describe(),
        },
    }


#: For `GET /api/frequencies`: every helper, its parameters and a worked example.
HELPERS_CATALOGUE: list[dict[str, Any]] = [_catalogue_entry(spec) for spec in HELPERS.values()]


def next_due(
    frequency: Mapping[str, Any],
    timezone: str,
    *,
    active: bool,
    last_due_at: datetime | None,
    now: datetime,
    cron: CronCalculator,
) -> Tick | None:
    """A schedule's next tick that runs (DST-gap slots passed over); None while paused."""
    if not active:
        return None
    stored = Frequency.from_dict(frequency)
    tick = next_tick(stored, timezone, max(now, last_due_at or now), cron)
    for _ in range(1000):
        if tick.skipped is None:
            return tick
        tick = next_tick(stored, timezone, tick, cron)
    return None  # pragma: no cover - a thousand skipped slots in a row cannot happen
