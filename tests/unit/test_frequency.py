"""Frequencies: Laravel helpers, cron validation, descriptions, and ticks across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import islice
from typing import Any

import pytest

from application.frequencies import (
    HELPERS_CATALOGUE,
    Tick,
    next_tick,
    preview,
    ticks,
    validate_timezone,
)
from domain.frequency import HELPERS, Frequency, FrequencyError, TimeWindow
from domain.shared import ValidationError
from infrastructure.cron import CroniterCalculator

CRON = CroniterCalculator()
ROME = "Europe/Rome"
NEW_YORK = "America/New_York"


def chain(*calls: str | tuple[Any, ...]) -> Frequency:
    """`chain("weekdays", ("dailyAt", "13:00"))` reads like Laravel's ->weekdays()->dailyAt()."""
    helpers = [
        {"name": call} if isinstance(call, str) else {"name": call[0], "args": list(call[1:])}
        for call in calls
    ]
    return Frequency.from_helpers(helpers)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


def take(frequency: Frequency, timezone: str, after: datetime, count: int) -> list[Tick]:
    return list(islice(ticks(frequency, timezone, after, CRON), count))


def brief(tick: Tick) -> tuple[str, str, str | None, str | None]:
    return (
        tick.due_at.strftime("%Y-%m-%d %H:%M:%S"),
        tick.local.strftime("%H:%M:%S"),
        tick.skipped,
        tick.dst,
    )


# --------------------------------------------------------------------------- helpers

LARAVEL_OUTPUT = [
    # sub-minute helpers: a 6-field expression, seconds first
    (("everySecond",), "* * * * * *"),
    (("everyTwoSeconds",), "*/2 * * * * *"),
    (("everyFiveSeconds",), "*/5 * * * * *"),
    (("everyTenSeconds",), "*/10 * * * * *"),
    (("everyFifteenSeconds",), "*/15 * * * * *"),
    (("everyTwentySeconds",), "*/20 * * * * *"),
    (("everyThirtySeconds",), "*/30 * * * * *"),
    (("everyMinute",), "* * * * *"),
    (("everyTwoMinutes",), "*/2 * * * *"),
    (("everyThreeMinutes",), "*/3 * * * *"),
    (("everyFourMinutes",), "*/4 * * * *"),
    (("everyFiveMinutes",), "*/5 * * * *"),
    (("everyTenMinutes",), "*/10 * * * *"),
    (("everyFifteenMinutes",), "*/15 * * * *"),
    (("everyThirtyMinutes",), "*/30 * * * *"),
    (("hourly",), "0 * * * *"),
    ((("hourlyAt", 17),), "17 * * * *"),
    ((("hourlyAt", [15, 45]),), "15,45 * * * *"),
    (("everyOddHour",), "0 1-23/2 * * *"),
    ((("everyOddHour", 15),), "15 1-23/2 * * *"),
    (("everyTwoHours",), "0 */2 * * *"),
    ((("everyTwoHours", [0, 30]),), "0,30 */2 * * *"),
    (("everyThreeHours",), "0 */3 * * *"),
    (("everyFourHours",), "0 */4 * * *"),
    ((("everySixHours", 5),), "5 */6 * * *"),
    (("daily",), "0 0 * * *"),
    ((("dailyAt", "13:00"),), "0 13 * * *"),
    ((("dailyAt", "9:05"),), "5 9 * * *"),
    ((("dailyAt", "13"),), "0 13 * * *"),  # Laravel reads a bare hour as HH:00
    ((("dailyAt", "13:00:30"),), "0 13 * * *"),  # Laravel 12 ignores the seconds
    ((("at", "13:00"),), "0 13 * * *"),
    (("twiceDaily",), "0 1,13 * * *"),
    ((("twiceDaily", 8, 20),), "0 8,20 * * *"),
    ((("twiceDailyAt", 1, 13, 15),), "15 1,13 * * *"),
    (("weekly",), "0 0 * * 0"),
    ((("weeklyOn", 1, "8:00"),), "0 8 * * 1"),
    ((("weeklyOn", "friday"),), "0 0 * * 5"),
    ((("weeklyOn", [1, 3], "8:00"),), "0 8 * * 1,3"),
    (("monthly",), "0 0 1 * *"),
    ((("monthlyOn", 4, "15:00"),), "0 15 4 * *"),
    (("monthlyOn",), "0 0 1 * *"),
    (("twiceMonthly",), "0 0 1,16 * *"),
    ((("twiceMonthly", 1, 16, "13:00"),), "0 13 1,16 * *"),
    (("lastDayOfMonth",), "0 0 L * *"),
    ((("lastDayOfMonth", "15:00"),), "0 15 L * *"),
    ((("daysOfMonth", 1, 10, 20),), "0 0 1,10,20 * *"),
    ((("daysOfMonth", [5, 25]),), "0 0 5,25 * *"),
    (("quarterly",), "0 0 1 1-12/3 *"),
    ((("quarterlyOn", 4, "14:00"),), "0 14 4 1-12/3 *"),
    (("yearly",), "0 0 1 1 *"),
    ((("yearlyOn", 6, 1, "17:00"),), "0 17 1 6 *"),
    ((("yearlyOn", "march", 15),), "0 0 15 3 *"),
    (("weekdays",), "* * * * 1-5"),
    (("weekends",), "* * * * 6,0"),
    (("mondays",), "* * * * 1"),
    (("tuesdays",), "* * * * 2"),
    (("wednesdays",), "* * * * 3"),
    (("thursdays",), "* * * * 4"),
    (("fridays",), "* * * * 5"),
    (("saturdays",), "* * * * 6"),
    (("sundays",), "* * * * 0"),
    ((("days", 1, 3, 5),), "* * * * 1,3,5"),
    ((("days", [0, 3]),), "* * * * 0,3"),
    ((("days", ["Mon", "friday"]),), "* * * * 1,5"),
    ((("cron", "*/7 * * * *"),), "*/7 * * * *"),
]


@pytest.mark.parametrize(("calls", "expected"), LARAVEL_OUTPUT)
def test_each_helper_makes_laravels_cron(calls: tuple[Any, ...], expected: str) -> None:
    frequency = chain(*calls)
    assert frequency.expression == expected
    assert frequency.helpers is not None
    assert frequency.helpers[0].name == (calls[0] if isinstance(calls[0], str) else calls[0][0])


def test_every_laravel_13_helper_exists_and_is_tested() -> None:
    laravel_13 = {
        "cron", "between", "unlessBetween", "everySecond", "everyTwoSeconds", "everyFiveSeconds",
        "everyTenSeconds", "everyFifteenSeconds", "everyTwentySeconds", "everyThirtySeconds",
        "everyMinute", "everyTwoMinutes", "everyThreeMinutes", "everyFourMinutes",
        "everyFiveMinutes", "everyTenMinutes", "everyFifteenMinutes", "everyThirtyMinutes",
        "hourly", "hourlyAt", "everyOddHour", "everyTwoHours", "everyThreeHours",
        "everyFourHours", "everySixHours", "daily", "at", "dailyAt", "twiceDaily",
        "twiceDailyAt", "weekdays", "weekends", "mondays", "tuesdays", "wednesdays", "thursdays",
        "fridays", "saturdays", "sundays", "weekly", "weeklyOn", "monthly", "monthlyOn",
        "twiceMonthly", "lastDayOfMonth", "daysOfMonth", "quarterly", "quarterlyOn", "yearly",
        "yearlyOn", "days",
    }  # fmt: skip
    assert set(HELPERS) == laravel_13
    tested = {calls[0] if isinstance(calls[0], str) else calls[0][0] for calls, _ in LARAVEL_OUTPUT}
    assert laravel_13 - tested == {"between", "unlessBetween"}  # windows: tested below


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (("weekdays", ("dailyAt", "13:00")), "0 13 * * 1-5"),
        ((("dailyAt", "13:00"), "weekdays"), "0 13 * * 1-5"),
        ((("hourlyAt", 17), "weekdays"), "17 * * * 1-5"),
        (("everyFifteenMinutes", ("between", "7:00", "22:00")), "*/15 * * * *"),
        (("weekly", "mondays", ("at", "8:30")), "30 8 * * 1"),
        (("daily", "hourly"), "0 0 * * *"),  # hourly only sets the minute
        (("hourly", "everyTenSeconds"), "*/10 * * * * *"),  # sub-minute resets the minute
        (("everyTenSeconds", "hourly"), "*/10 0 * * * *"),  # Laravel keeps repeating seconds
        (("quarterly", ("monthlyOn", 15)), "0 0 15 1-12/3 *"),
        ((("cron", "0 9 * * *"), "weekends"), "0 9 * * 6,0"),
        ((("cron", "*/10 * * * * *"), ("cron", "0 9 * * *")), "0 9 * * *"),
        (("lastDayOfMonth", "fridays"), "0 0 L * 5"),
    ],
)
def test_helpers_chain_like_laravel(calls: tuple[Any, ...], expected: str) -> None:
    assert chain(*calls).expression == expected


def test_between_and_unless_between_are_windows_not_cron_fields() -> None:
    frequency = chain(
        "everyFifteenMinutes", ("between", "7:00", "22:00"), ("unlessBetween", "12:00", "13:00")
    )
    assert frequency.expression == "*/15 * * * *"
    assert frequency.windows == (
        TimeWindow(time(7), time(22)),
        TimeWindow(time(12), time(13), exclude=True),
    )
    assert frequency.admits(time(7))
    assert frequency.admits(time(22))
    assert not frequency.admits(time(6, 59))
    assert not frequency.admits(time(22, 0, 1))
    assert not frequency.admits(time(12, 30))


@pytest.mark.parametrize(
    ("helpers", "field", "words"),
    [
        ([{"name": "dailyat", "args": ["13:00"]}], "helpers[0].name", ["'dailyat'", "'dailyAt'"]),
        ([{"name": "weekdays"}, {"name": "evrySecond"}], "helpers[1].name", ["'everySecond'"]),
        ([{"name": "fortnightly"}], "helpers[0].name", ["unknown helper 'fortnightly'"]),
        ([{"args": []}], "helpers[0].name", ["needs a 'name'"]),
        (
            [{"name": "weekdays"}, {"name": "dailyAt", "args": ["25:00"]}],
            "helpers[1].args[0]",
            ["dailyAt", "'time'", "25"],
        ),
        ([{"name": "dailyAt", "args": ["noon"]}], "helpers[0].args[0]", ["dailyAt", "'noon'"]),
        ([{"name": "dailyAt", "args": ["12:60"]}], "helpers[0].args[0]", ["minute 60"]),
        ([{"name": "dailyAt"}], "helpers[0].args[0]", ["dailyAt", "needs argument 'time'"]),
        ([{"name": "daily", "args": [1]}], "helpers[0].args[0]", ["'daily' takes no arguments"]),
        (
            [{"name": "twiceDaily", "args": [1, 13, 0]}],
            "helpers[0].args[2]",
            ["'twiceDaily' takes 2 argument(s)"],
        ),
        ([{"name": "hourlyAt", "args": [60]}], "helpers[0].args[0]", ["hourlyAt", "minute 60"]),
        ([{"name": "hourlyAt", "args": [[0, 75]]}], "helpers[0].args[0][1]", ["minute 75"]),
        ([{"name": "hourlyAt", "args": [True]}], "helpers[0].args[0]", ["not a whole number"]),
        ([{"name": "twiceDaily", "args": [1, 24]}], "helpers[0].args[1]", ["'second'", "24"]),
        ([{"name": "days", "args": [1, 9]}], "helpers[0].args[1]", ["days", "9"]),
        ([{"name": "days", "args": [[1, "funday"]]}], "helpers[0].args[0][1]", ["'funday'"]),
        ([{"name": "days"}], "helpers[0].args[0]", ["needs argument 'days'"]),
        ([{"name": "monthlyOn", "args": [32]}], "helpers[0].args[0]", ["dayOfMonth", "32"]),
        ([{"name": "yearlyOn", "args": [13]}], "helpers[0].args[0]", ["month", "13"]),
        ([{"name": "yearlyOn", "args": [2, 30]}], "helpers[0]", ["day 30 never occurs"]),
        ([{"name": "between", "args": ["7", "9:00"]}], "helpers[0].args[0]", ["'start'"]),
        ([{"name": "cron", "args": ["0 0 31 2 *"]}], "helpers[0].args[0]", ["never occurs"]),
        ([{"name": "daily", "arguments": []}], "helpers[0].arguments", ["unknown key"]),
        ([{"name": "daily", "args": "x"}], "helpers[0].args", ["must be a list"]),
        (["daily"], "helpers[0]", ["is an object"]),
        ([], "helpers", ["at least one"]),
    ],
)
def test_bad_helpers_name_the_helper_and_the_argument(
    helpers: list[Any], field: str, words: list[str]
) -> None:
    with pytest.raises(FrequencyError) as caught:
        Frequency.from_helpers(helpers)
    assert caught.value.field == field
    assert isinstance(caught.value, ValidationError)
    for word in words:
        assert word in str(caught.value)


# --------------------------------------------------------------------------- cron expressions


@pytest.mark.parametrize(
    ("expression", "canonical"),
    [
        ("*/10 * * * * *", "*/10 * * * * *"),
        ("30 0 13 * * *", "30 0 13 * * *"),
        ("0 30 2 * * *", "30 2 * * *"),  # seconds 0: the plain 5-field form
        ("  0   9 * *   MON-FRI ", "0 9 * * 1-5"),
        ("0 0 1 jan,Jul *", "0 0 1 1,7 *"),
        ("0 5-5 * * *", "0 5 * * *"),  # croniter reads 5-5 as every hour
        ("*/1 * * * *", "* * * * *"),
        ("0 0 ? * 1", "0 0 * * 1"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("0 0 L * *", "0 0 L * *"),
        ("0 0 1,l * *", "0 0 1,L * *"),
        ("0 0 * * 5L", "0 0 * * L5"),  # croniter spells Quartz's 5L as L5
        ("0 0 * * fri#3", "0 0 * * 5#3"),
        ("0 0 15w * *", "0 0 15W * *"),
        ("10/15 * * * *", "10/15 * * * *"),
        ("0 0 29 2 *", "0 0 29 2 *"),  # leap years have it
        ("0 0 31 1-3 *", "0 0 31 1-3 *"),  # January and March have it
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_cron_expressions_are_validated_and_canonical(expression: str, canonical: str) -> None:
    assert Frequency.from_expression(expression).expression == canonical
    CRON.validate(expression)
    assert Frequency.from_expression(expression).helpers is None


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 0 31 2 *", "day 31 never occurs in February"),
        ("0 0 30,31 2 *", "never occurs"),
        ("0 0 31 4,6,9,11 *", "never occurs"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* 24 * * *", "hour 24"),
        ("0 0 0 * *", "day-of-month 0"),
        ("0 0 * 13 *", "month 13"),
        ("0 0 * * 8", "day-of-week 8"),
        ("0 0 * * funday", "'funday'"),
        ("60 * * * * *", "second 60"),  # 6 fields: seconds first
        ("* * * * * 8", "day-of-week 8"),  # the 6th field is the weekday, not seconds
        ("*/0 * * * *", "step 0"),
        ("*/61 * * * *", "step 61"),
        ("0 22-2 * * *", "runs backwards"),
        ("* * * *", "4 fields"),
        ("* * * * * * *", "7 fields"),
        ("0 0 1,,2 * *", "empty list item"),
        ("*,5 * * * *", "'*' cannot be part of a list"),
        ("0 0 * * 5#6", "week number"),
        ("0 0 * * 1,5L", "cannot mix"),
        ("0 0 1,15W * *", "only day-of-month item"),
        ("0 ? * * *", "only allowed in the day fields"),
        ("@fortnightly", "unknown nickname"),
        ("0 0 1 * * \u00e9", "ASCII"),
    ],
)
def test_bad_cron_expressions_are_rejected_with_the_reason(expression: str, words: str) -> None:
    with pytest.raises(FrequencyError, match=words) as caught:
        Frequency.from_expression(expression)
    assert caught.value.field == "expression"
    with pytest.raises(FrequencyError):
        CRON.validate(expression)


def test_six_fields_mean_seconds_first() -> None:
    frequency = Frequency.from_expression("*/10 * * * * *")
    assert frequency.has_seconds
    runs = take(frequency, "UTC", utc(2026, 5, 1, 12, 0, 5), 3)
    assert [tick.due_at for tick in runs] == [
        utc(2026, 5, 1, 12, 0, 10),
        utc(2026, 5, 1, 12, 0, 20),
        utc(2026, 5, 1, 12, 0, 30),
    ]
    at_second_30 = Frequency.from_expression("30 0 13 * * *")
    assert next_tick(at_second_30, "UTC", utc(2026, 5, 1), CRON).due_at == utc(
        2026, 5, 1, 13, 0, 30
    )


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2027, 1, 1), utc(2027, 1, 31, 15)),
        (utc(2027, 1, 31, 16), utc(2027, 2, 28, 15)),  # not a leap year
        (utc(2028, 1, 31, 16), utc(2028, 2, 29, 15)),  # leap year
        (utc(2028, 3, 31, 16), utc(2028, 4, 30, 15)),
        (utc(2028, 12, 1), utc(2028, 12, 31, 15)),
    ],
)
def test_last_day_of_month_is_each_months_last_day(after: datetime, expected: datetime) -> None:
    frequency = chain(("lastDayOfMonth", "15:00"))
    assert next_tick(frequency, "UTC", after, CRON).due_at == expected


def test_nth_and_last_weekday_and_day_fields_or() -> None:
    third_friday = Frequency.from_expression("0 9 * * 5#3")
    assert next_tick(third_friday, "UTC", utc(2026, 5, 1), CRON).due_at == utc(2026, 5, 15, 9)
    last_friday = Frequency.from_expression("0 9 * * 5L")
    assert next_tick(last_friday, "UTC", utc(2026, 5, 1), CRON).due_at == utc(2026, 5, 29, 9)
    # Both day fields restricted: cron runs when either matches.
    first_or_monday = Frequency.from_expression("0 0 1 * 1")
    days = [tick.due_at.day for tick in take(first_or_monday, "UTC", utc(2026, 6, 20), 3)]
    assert days == [22, 29, 1]  # Mondays 22 and 29 June, then Wednesday 1 July


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("frequency", "text"),
    [
        (chain("weekdays", ("dailyAt", "13:00")), "At 13:00, Monday through Friday"),
        (chain("everyFiveMinutes"), "Every 5 minutes"),
        (chain("everySecond"), "Every second"),
        (chain("everyTenSeconds"), "Every 10 seconds"),
        (chain("lastDayOfMonth"), "At 00:00 on the last day of the month"),
        (
            chain("everyFifteenMinutes", ("between", "7:00", "22:00")),
            "Every 15 minutes, between 07:00 and 22:00",
        ),
        (
            chain("hourly", ("unlessBetween", "23:00", "4:00")),
            "At minute 0 of every hour, except between 23:00 and 04:00",
        ),
        (chain("everyMinute"), "Every minute"),
        (chain(("hourlyAt", 17)), "At minute 17 of every hour"),
        (chain("twiceDaily"), "At 01:00 and 13:00"),
        (chain("everyOddHour"), "At minute 0, every 2nd hour from 01:00 through 23:00"),
        (chain("weekly"), "At 00:00, on Sunday"),
        (chain("weekends", ("at", "9:30")), "At 09:30, on Saturday and Sunday"),
        (chain(("twiceMonthly", 1, 16, "13:00")), "At 13:00 on days 1 and 16 of the month"),
        (
            chain("quarterly"),
            "At 00:00 on day 1 of the month, in January, April, July and October",
        ),
        (chain(("yearlyOn", 6, 1, "17:00")), "At 17:00 on day 1 of the month, in June"),
        (Frequency.from_expression("30 0 13 * * *"), "At 13:00:30"),
        (
            Frequency.from_expression("*/15 9-17 * * 1-5"),
            "Every 15 minutes, from 09:00 through 17:59, Monday through Friday",
        ),
        (Frequency.from_expression("0 9 * * 5#3"), "At 09:00, on the third Friday of the month"),
        (Frequency.from_expression("0 0 1 * 1"), "At 00:00 on day 1 of the month or on Monday"),
        (Frequency.from_expression("30 * * * * *"), "At second 30, every minute"),
    ],
)
def test_describe(frequency: Frequency, text: str) -> None:
    assert frequency.describe() == text


def test_at_most_daily_needs_single_second_minute_and_hour() -> None:
    assert chain(("dailyAt", "2:30")).at_most_daily
    assert chain("weekly").at_most_daily
    assert Frequency.from_expression("30 0 13 * * *").at_most_daily
    assert not chain("hourly").at_most_daily
    assert not chain("twiceDaily").at_most_daily
    assert not chain("everyTenSeconds", ("dailyAt", "13:00")).at_most_daily


def test_round_trips_through_a_dict() -> None:
    frequency = chain("everyFifteenMinutes", ("between", "22:00", "6:30"), ("days", [1, 2]))
    stored = frequency.to_dict()
    assert stored == {
        "expression": "*/15 * * * 1,2",
        "helpers": [
            {"name": "everyFifteenMinutes", "args": []},
            {"name": "between", "args": ["22:00", "6:30"]},
            {"name": "days", "args": [[1, 2]]},
        ],
        "windows": [{"kind": "between", "start": "22:00", "end": "06:30"}],
    }
    assert Frequency.from_dict(stored) == frequency
    assert hash(Frequency.from_dict(stored)) == hash(frequency)
    plain = Frequency.from_expression("0 9 * * *")
    assert plain.to_dict() == {"expression": "0 9 * * *", "helpers": None, "windows": []}
    assert Frequency.from_dict(plain.to_dict()) == plain
    with pytest.raises(FrequencyError):
        Frequency.from_dict({"helpers": None})


# --------------------------------------------------------------------------- DST


def test_rome_daily_inside_the_spring_gap_runs_when_the_gap_ends() -> None:
    runs = take(chain(("dailyAt", "2:30")), ROME, utc(2026, 3, 27), 4)
    assert [brief(tick) for tick in runs] == [
        ("2026-03-27 01:30:00", "02:30:00", None, None),
        ("2026-03-28 01:30:00", "02:30:00", None, None),
        ("2026-03-29 01:00:00", "02:30:00", None, "shifted_after_gap"),  # 03:00 CEST
        ("2026-03-30 00:30:00", "02:30:00", None, None),
    ]


def test_rome_daily_at_the_repeated_time_runs_once_at_its_first_occurrence() -> None:
    runs = take(chain(("dailyAt", "2:30")), ROME, utc(2026, 10, 24), 3)
    assert [brief(tick) for tick in runs] == [
        ("2026-10-24 00:30:00", "02:30:00", None, None),
        ("2026-10-25 00:30:00", "02:30:00", None, "first_occurrence"),  # 02:30 CEST
        ("2026-10-26 01:30:00", "02:30:00", None, None),
    ]
    # Between the two occurrences there is nothing left to run that day.
    after_first = next_tick(chain(("dailyAt", "2:30")), ROME, utc(2026, 10, 25, 0, 45), CRON)
    assert after_first.due_at == utc(2026, 10, 26, 1, 30)


def test_new_york_daily_through_both_changes() -> None:
    spring = take(chain(("dailyAt", "2:15")), NEW_YORK, utc(2026, 3, 7, 12), 2)
    assert [brief(tick) for tick in spring] == [
        ("2026-03-08 07:00:00", "02:15:00", None, "shifted_after_gap"),  # 03:00 EDT
        ("2026-03-09 06:15:00", "02:15:00", None, None),
    ]
    autumn = take(chain(("dailyAt", "1:30")), NEW_YORK, utc(2026, 10, 31, 12), 2)
    assert [brief(tick) for tick in autumn] == [
        ("2026-11-01 05:30:00", "01:30:00", None, "first_occurrence"),  # 01:30 EDT
        ("2026-11-02 06:30:00", "01:30:00", None, None),
    ]


def test_every_30_minutes_through_the_rome_spring_gap_skips_the_missing_slots() -> None:
    runs = take(chain("everyThirtyMinutes"), ROME, utc(2026, 3, 28, 23, 40), 6)
    assert [brief(tick) for tick in runs] == [
        ("2026-03-29 00:00:00", "01:00:00", None, None),
        ("2026-03-29 00:30:00", "01:30:00", None, None),
        ("2026-03-29 01:00:00", "02:00:00", "dst_gap", None),
        ("2026-03-29 01:00:00", "02:30:00", "dst_gap", None),
        ("2026-03-29 01:00:00", "03:00:00", None, None),
        ("2026-03-29 01:30:00", "03:30:00", None, None),
    ]


def test_every_30_minutes_through_the_rome_repeated_hour_runs_both_occurrences() -> None:
    runs = take(chain("everyThirtyMinutes"), ROME, utc(2026, 10, 24, 23, 20), 7)
    assert [brief(tick) for tick in runs] == [
        ("2026-10-24 23:30:00", "01:30:00", None, None),
        ("2026-10-25 00:00:00", "02:00:00", None, "first_occurrence"),
        ("2026-10-25 00:30:00", "02:30:00", None, "first_occurrence"),
        ("2026-10-25 01:00:00", "02:00:00", None, "second_occurrence"),
        ("2026-10-25 01:30:00", "02:30:00", None, "second_occurrence"),
        ("2026-10-25 02:00:00", "03:00:00", None, None),
        ("2026-10-25 02:30:00", "03:30:00", None, None),
    ]
    due = [tick.due_at for tick in runs]
    assert due == sorted(due)
    assert len(set(due)) == len(due)


def test_starting_inside_the_repeated_hour_still_runs_the_second_occurrences() -> None:
    runs = take(chain("everyThirtyMinutes"), ROME, utc(2026, 10, 25, 0, 45), 3)
    assert [brief(tick) for tick in runs] == [
        ("2026-10-25 01:00:00", "02:00:00", None, "second_occurrence"),
        ("2026-10-25 01:30:00", "02:30:00", None, "second_occurrence"),
        ("2026-10-25 02:00:00", "03:00:00", None, None),
    ]


def test_hourly_in_new_york_through_both_changes() -> None:
    spring = take(chain("hourly"), NEW_YORK, utc(2026, 3, 8, 5, 30), 4)
    assert [brief(tick) for tick in spring] == [
        ("2026-03-08 06:00:00", "01:00:00", None, None),
        ("2026-03-08 07:00:00", "02:00:00", "dst_gap", None),
        ("2026-03-08 07:00:00", "03:00:00", None, None),
        ("2026-03-08 08:00:00", "04:00:00", None, None),
    ]
    autumn = take(chain("hourly"), NEW_YORK, utc(2026, 11, 1, 4, 30), 4)
    assert [brief(tick) for tick in autumn] == [
        ("2026-11-01 05:00:00", "01:00:00", None, "first_occurrence"),
        ("2026-11-01 06:00:00", "01:00:00", None, "second_occurrence"),
        ("2026-11-01 07:00:00", "02:00:00", None, None),
        ("2026-11-01 08:00:00", "03:00:00", None, None),
    ]


def test_hourly_in_rome_through_both_changes() -> None:
    spring = take(chain("hourly"), ROME, utc(2026, 3, 28, 23, 30), 3)
    assert [brief(tick) for tick in spring] == [
        ("2026-03-29 00:00:00", "01:00:00", None, None),
        ("2026-03-29 01:00:00", "02:00:00", "dst_gap", None),
        ("2026-03-29 01:00:00", "03:00:00", None, None),
    ]
    autumn = take(chain("hourly"), ROME, utc(2026, 10, 24, 23, 30), 3)
    assert [brief(tick) for tick in autumn] == [
        ("2026-10-25 00:00:00", "02:00:00", None, "first_occurrence"),
        ("2026-10-25 01:00:00", "02:00:00", None, "second_occurrence"),
        ("2026-10-25 02:00:00", "03:00:00", None, None),
    ]


def test_weekly_on_the_transition_sundays() -> None:
    sunday_2_30 = chain(("weeklyOn", "sunday", "2:30"))
    assert [brief(tick) for tick in take(sunday_2_30, ROME, utc(2026, 3, 22, 12), 2)] == [
        ("2026-03-29 01:00:00", "02:30:00", None, "shifted_after_gap"),
        ("2026-04-05 00:30:00", "02:30:00", None, None),
    ]
    assert [brief(tick) for tick in take(sunday_2_30, ROME, utc(2026, 10, 18, 12), 2)] == [
        ("2026-10-25 00:30:00", "02:30:00", None, "first_occurrence"),
        ("2026-11-01 01:30:00", "02:30:00", None, None),
    ]
    sunday_1_30 = chain(("weeklyOn", 0, "1:30"))
    assert [brief(tick) for tick in take(sunday_1_30, NEW_YORK, utc(2026, 10, 26), 2)] == [
        ("2026-11-01 05:30:00", "01:30:00", None, "first_occurrence"),
        ("2026-11-08 06:30:00", "01:30:00", None, None),
    ]


def test_resuming_from_a_tick_keeps_ticks_due_at_the_same_instant() -> None:
    frequency = chain("everyThirtyMinutes")
    first_skip = take(frequency, ROME, utc(2026, 3, 29, 0, 45), 1)[0]
    assert first_skip.skipped == "dst_gap"
    following = list(islice(ticks(frequency, ROME, first_skip, CRON), 2))
    assert [brief(tick) for tick in following] == [
        ("2026-03-29 01:00:00", "02:30:00", "dst_gap", None),
        ("2026-03-29 01:00:00", "03:00:00", None, None),
    ]
    assert next_tick(frequency, ROME, following[1], CRON).due_at == utc(2026, 3, 29, 1, 30)


# --------------------------------------------------------------------------- windows


def test_window_across_midnight_keeps_evening_and_early_morning_runs() -> None:
    frequency = chain("hourly", ("between", "22:00", "1:00"))
    runs = take(frequency, "UTC", utc(2026, 1, 1, 0, 30), 6)
    assert [tick.due_at for tick in runs] == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 22),
        utc(2026, 1, 1, 23),
        utc(2026, 1, 2, 0),
        utc(2026, 1, 2, 1),
        utc(2026, 1, 2, 22),
    ]


def test_unless_between_across_midnight_in_local_time() -> None:
    frequency = chain("hourly", ("unlessBetween", "23:00", "5:59"))
    runs = take(frequency, ROME, utc(2026, 1, 1, 20, 30), 4)  # 21:30 in Rome
    assert [tick.local.hour for tick in runs] == [22, 6, 7, 8]


def test_windows_filter_the_local_wall_time_of_sub_minute_schedules() -> None:
    frequency = chain("everySecond", ("between", "7:00", "7:00:02"))
    runs = take(frequency, NEW_YORK, utc(2026, 6, 1), 4)
    assert [tick.local for tick in runs] == [
        datetime(2026, 6, 1, 7, 0, 0),  # noqa: DTZ001 - local wall time
        datetime(2026, 6, 1, 7, 0, 1),  # noqa: DTZ001
        datetime(2026, 6, 1, 7, 0, 2),  # noqa: DTZ001
        datetime(2026, 6, 2, 7, 0, 0),  # noqa: DTZ001
    ]
    assert runs[0].due_at == utc(2026, 6, 1, 11)


def test_windows_that_exclude_every_run_are_reported() -> None:
    never = chain("hourly", ("between", "7:10", "7:20"))
    with pytest.raises(FrequencyError, match="never runs"):
        next_tick(never, "UTC", utc(2026, 1, 1), CRON)


# --------------------------------------------------------------------------- timezones, preview


def test_timezones_are_checked() -> None:
    assert validate_timezone(ROME) == ROME
    for bad in ("Mars/Olympus", "", "../etc/passwd", "Europe"):
        with pytest.raises(FrequencyError) as caught:
            validate_timezone(bad)
        assert caught.value.field == "timezone"
    with pytest.raises(FrequencyError, match="Mars/Olympus"):
        next_tick(chain("daily"), "Mars/Olympus", utc(2026, 1, 1), CRON)
    with pytest.raises(ValidationError):
        next_tick(chain("daily"), ROME, datetime(2026, 1, 1), CRON)  # noqa: DTZ001 - naive


def test_preview_lists_local_and_utc_times_with_dst_notes() -> None:
    result = preview(chain("hourly"), ROME, 3, utc(2026, 3, 28, 23, 30), CRON)
    assert result == {
        "expression": "0 * * * *",
        "description": "At minute 0 of every hour",
        "timezone": ROME,
        "next_runs": [
            {
                "local": "2026-03-29T01:00:00+01:00",
                "utc": "2026-03-29T00:00:00Z",
                "skipped": None,
                "dst": None,
                "slot": "2026-03-29T01:00:00",
            },
            {
                "local": "2026-03-29T03:00:00+02:00",
                "utc": "2026-03-29T01:00:00Z",
                "skipped": "dst_gap",
                "dst": None,
                "slot": "2026-03-29T02:00:00",
            },
            {
                "local": "2026-03-29T03:00:00+02:00",
                "utc": "2026-03-29T01:00:00Z",
                "skipped": None,
                "dst": None,
                "slot": "2026-03-29T03:00:00",
            },
        ],
    }
    for count in (0, 101, True):
        with pytest.raises(ValidationError) as caught:
            preview(chain("hourly"), ROME, count, utc(2026, 1, 1), CRON)
        assert caught.value.field == "count"


def test_catalogue_lists_every_helper_with_a_worked_example() -> None:
    by_name = {entry["name"]: entry for entry in HELPERS_CATALOGUE}
    assert set(by_name) == set(HELPERS)
    assert by_name["weekdays"]["example"] == {
        "helpers": [{"name": "weekdays", "args": []}, {"name": "dailyAt", "args": ["13:00"]}],
        "expression": "0 13 * * 1-5",
        "description": "At 13:00, Monday through Friday",
    }
    assert by_name["twiceMonthly"]["parameters"] == [
        {
            "name": "first",
            "type": "integer | string (day-of-month cron field, e.g. '1-5')",
            "default": 1,
            "required": False,
            "description": "First day of the month, 1-31.",
        },
        {
            "name": "second",
            "type": "integer | string (day-of-month cron field, e.g. '1-5')",
            "default": 16,
            "required": False,
            "description": "Second day of the month, 1-31.",
        },
        {
            "name": "time",
            "type": "string | integer",
            "default": "0:0",
            "required": False,
            "description": (
                "Time of day, 'HH:MM' ('H' or 'HH:MM:SS' too; seconds are ignored, as in Laravel)."
            ),
        },
    ]
    assert by_name["dailyAt"]["parameters"][0]["required"] is True
    for entry in HELPERS_CATALOGUE:
        assert entry["description"]
        assert (
            Frequency.from_helpers(entry["example"]["helpers"]).expression
            == (entry["example"]["expression"])
        )


# --------------------------------------------------------------------------- the calculator


def test_calculator_works_on_naive_wall_clock_time_strictly_after() -> None:
    calculator = CroniterCalculator(cache_size=4)
    at = datetime(2026, 3, 29, 2, 30)  # noqa: DTZ001 - wall clock, DST does not exist here
    assert calculator.next_local("30 2 * * *", at) == datetime(2026, 3, 30, 2, 30)  # noqa: DTZ001
    before = at - timedelta(microseconds=1)
    assert calculator.next_local("30 2 * * *", before) == at
    assert calculator.next_local("*/10 * * * * *", at) == at + timedelta(seconds=10)
    assert calculator.next_local("0 5-5 * * *", at) == datetime(2026, 3, 29, 5)  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        calculator.next_local("* * * * *", utc(2026, 1, 1))


def test_calculator_is_safe_to_share_between_interleaved_calls() -> None:
    calculator = CroniterCalculator()
    first = datetime(2026, 1, 1)  # noqa: DTZ001
    later = datetime(2026, 6, 1)  # noqa: DTZ001
    assert calculator.next_local("0 * * * *", later) == later + timedelta(hours=1)
    assert calculator.next_local("0 * * * *", first) == first + timedelta(hours=1)
