"""Helpers take the arguments Laravel 12's scheduler takes and build the expression it builds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from application.event_log import ChronicleEvents
from application.frequencies import HELPERS_CATALOGUE, next_tick
from domain.frequency import Frequency, FrequencyError
from domain.schedule import Schedule
from infrastructure.cron import CroniterCalculator

CRON = CroniterCalculator()


def chain(*calls: str | tuple[Any, ...]) -> Frequency:
    """`chain("mondays", ("yearlyOn", 7, "*", "09:01"))` reads like Laravel's chained calls."""
    return Frequency.from_helpers(
        [
            {"name": call} if isinstance(call, str) else {"name": call[0], "args": list(call[1:])}
            for call in calls
        ]
    )


def case(expected: str, *calls: str | tuple[Any, ...]) -> Any:
    """One row: the chain, and the expression Laravel builds for it (Chronicle's canonical form)."""
    label = "->".join(
        call if isinstance(call, str) else f"{call[0]}{tuple(call[1:])!r}" for call in calls
    )
    return pytest.param(calls, expected, id=label)


# What Laravel's ManagesFrequencies does, read helper by helper: the time-taking helpers all go
# through dailyAt, which splits on ':' and keeps hour and minute only; hourlyAt and the
# every-N-hours helpers splice their offset as given (an array is joined with ','); the day,
# month and weekday arguments are spliced as given, so any cron field string works; days()
# and daysOfMonth() take several arguments or one array.
LARAVEL_12 = [
    # Laravel's FrequencyTest, one row per assertion.
    case("* * * * *", "everyMinute"),
    case("*/2 * * * *", "everyTwoMinutes"),
    case("*/3 * * * *", "everyThreeMinutes"),
    case("*/4 * * * *", "everyFourMinutes"),
    case("*/5 * * * *", "everyFiveMinutes"),
    case("*/10 * * * *", "everyTenMinutes"),
    case("*/15 * * * *", "everyFifteenMinutes"),
    case("*/30 * * * *", "everyThirtyMinutes"),
    case("0 0 * * *", "daily"),
    case("8 13 * * *", ("dailyAt", "13:08")),
    case("8 13 * * *", ("dailyAt", "13:08:10")),
    case("0 3,15 * * *", ("twiceDaily", 3, 15)),
    case("5 3,15 * * *", ("twiceDailyAt", 3, 15, 5)),
    case("0 0 * * 0", "weekly"),
    case("0 8 * * 1", ("weeklyOn", 1, "8:00")),
    case("0 * * * *", "everyFiveMinutes", "hourly"),
    case("37 * * * *", ("hourlyAt", 37)),
    case("*/10 * * * *", ("hourlyAt", "*/10")),
    case("15,30,45 * * * *", ("hourlyAt", [15, 30, 45])),
    case("0 1-23/2 * * *", "everyOddHour"),
    case("0 */2 * * *", "everyTwoHours"),
    case("0 */3 * * *", "everyThreeHours"),
    case("0 */4 * * *", "everyFourHours"),
    case("0 */6 * * *", "everySixHours"),
    case("37 1-23/2 * * *", ("everyOddHour", 37)),
    case("37 */2 * * *", ("everyTwoHours", 37)),
    case("37 */3 * * *", ("everyThreeHours", 37)),
    case("37 */4 * * *", ("everyFourHours", 37)),
    case("37 */6 * * *", ("everySixHours", 37)),
    case("*/10 1-23/2 * * *", ("everyOddHour", "*/10")),
    case("*/10 */2 * * *", ("everyTwoHours", "*/10")),
    case("*/10 */3 * * *", ("everyThreeHours", "*/10")),
    case("*/10 */4 * * *", ("everyFourHours", "*/10")),
    case("*/10 */6 * * *", ("everySixHours", "*/10")),
    case("15,30,45 1-23/2 * * *", ("everyOddHour", [15, 30, 45])),
    case("15,30,45 */2 * * *", ("everyTwoHours", [15, 30, 45])),
    case("15,30,45 */3 * * *", ("everyThreeHours", [15, 30, 45])),
    case("15,30,45 */4 * * *", ("everyFourHours", [15, 30, 45])),
    case("15,30,45 */6 * * *", ("everySixHours", [15, 30, 45])),
    case("0 0 1 * *", "monthly"),
    case("0 15 4 * *", ("monthlyOn", 4, "15:00")),
    case("0 0 1,16 * *", ("twiceMonthly", 1, 16)),
    case("30 1 1,16 * *", ("twiceMonthly", 1, 16, "1:30")),
    case("15 15 4 * *", ("monthlyOn", 4, "15:15")),
    case("0 0 * * 1-5", "weekdays", "daily"),
    case("0 * * * 1-5", "weekdays", "hourly"),
    case("* * * * 1-5", "weekdays"),
    case("* * * * 6,0", "weekends"),
    case("* * * * 0", "sundays"),
    case("* * * * 1", "mondays"),
    case("* * * * 2", "tuesdays"),
    case("* * * * 3", "wednesdays"),
    case("* * * * 4", "thursdays"),
    case("* * * * 5", "fridays"),
    case("* * * * 6", "saturdays"),
    case("0 0 1 1-12/3 *", "quarterly"),
    case("0 15 4 1-12/3 *", ("quarterlyOn", 4, "15:00")),
    case("0 0 1 1 *", "yearly"),
    case("8 15 5 4 *", ("yearlyOn", 4, 5, "15:08")),
    case("1 9 * 7 1", "mondays", ("yearlyOn", 7, "*", "09:01")),
    case("1 9 20 7 2", "tuesdays", ("yearlyOn", 7, 20, "09:01")),
    # Laravel's EventTest: daysOfMonth, variadic or one array.
    case("0 0 1,15 * *", ("daysOfMonth", 1, 15)),
    case("0 0 1,10,20,30 * *", ("daysOfMonth", [1, 10, 20, 30])),
    # Numeric strings are spliced like the numbers they spell.
    case("37 * * * *", ("hourlyAt", "37")),
    case("0 3,15 * * *", ("twiceDaily", "3", "15")),
    case("5 3,15 * * *", ("twiceDailyAt", "3", "15", "5")),
    case("0 8 * * 1", ("weeklyOn", "1", "8:00")),
    case("0 15 4 * *", ("monthlyOn", "4", "15:00")),
    case("8 15 5 4 *", ("yearlyOn", "4", "5", "15:08")),
    case("* * * * 1,3", ("days", "1", "3")),
    case("0 0 1,15 * *", ("daysOfMonth", "1", "15")),
    # Cron field strings, where Laravel splices the argument into a field.
    case("30 7 * * 1-5", ("weeklyOn", "1-5", "7:30")),
    case("0 8 * * 1,3", ("weeklyOn", "1,3", "8:00")),
    case("0 8 * * 1-5", ("weeklyOn", "mon-fri", "8:00")),
    case("* * * * 1-5", ("days", "1-5")),
    case("* * * * 1,3", ("days", "1,3")),
    case("* * * * *", ("days", "*")),
    case("* * * * 1,3-5", ("days", [1, "3-5"])),
    case("* * * * 0", ("days", 7)),  # Laravel splices 7, cron's other Sunday
    case("5,*/20 * * * *", ("hourlyAt", ["5", "*/20"])),
    case("0-9 * * * *", ("hourlyAt", "0-9")),
    case("*/30 1,13 * * *", ("twiceDailyAt", 1, 13, "*/30")),
    case("0,30 1,13 * * *", ("twiceDailyAt", 1, 13, [0, 30])),
    case("0 1-3,13 * * *", ("twiceDaily", "1-3", 13)),
    case("0 9 1-5 * *", ("monthlyOn", "1-5", "9:00")),
    case("0 0 */2 * *", ("monthlyOn", "*/2")),
    case("0 0 1-5,20 * *", ("twiceMonthly", "1-5", 20)),
    case("0 9 L 1-12/3 *", ("quarterlyOn", "L", "9:00")),
    case("0 0 1-7 * *", ("daysOfMonth", "1-7")),
    case("0 0 1,15-20 * *", ("daysOfMonth", [1, "15-20"])),
    case("0 0 15 1-6 *", ("yearlyOn", "1-6", 15)),
    case("0 0 1 * *", ("yearlyOn", "*", 1)),
    case("0 0 1 1,7 *", ("yearlyOn", "jan,jul")),
    # Times: 'H', 'H:i' and 'H:i:s' (seconds ignored), and a bare integer hour.
    case("0 13 * * *", ("dailyAt", "13")),
    case("0 13 * * *", ("dailyAt", 13)),
    case("5 9 * * *", ("dailyAt", "9:5")),
    case("30 7 * * *", ("dailyAt", "07:30")),
    case("8 13 * * *", ("at", "13:08:10")),
    case("0 8 * * 1", ("weeklyOn", 1, "8:00:30")),
    case("0 8 * * 1", ("weeklyOn", 1, 8)),
    case("0 15 4 * *", ("monthlyOn", 4, "15:00:59")),
    case("30 1 1,16 * *", ("twiceMonthly", 1, 16, "1:30:15")),
    case("30 15 L * *", ("lastDayOfMonth", "15:30:45")),
    case("0 14 4 1-12/3 *", ("quarterlyOn", 4, "14:00:01")),
    case("0 17 1 6 *", ("yearlyOn", 6, 1, "17:00:30")),
    # Laravel's repeating seconds survive dailyAt, which touches only minute and hour.
    case("*/10 0 13 * * *", "everyTenSeconds", ("dailyAt", "13:00:30")),
    # Sub-minute helpers keep Chronicle's 6-field form (Laravel keeps the seconds apart).
    case("* * * * * *", "everySecond"),
    case("*/2 * * * * *", "everyTwoSeconds"),
    case("*/5 * * * * *", "everyFiveSeconds"),
    case("*/10 * * * * *", "everyTenSeconds"),
    case("*/15 * * * * *", "everyFifteenSeconds"),
    case("*/20 * * * * *", "everyTwentySeconds"),
    case("*/30 * * * * *", "everyThirtySeconds"),
    case("*/7 * * * *", ("cron", "*/7 * * * *")),
]


@pytest.mark.parametrize(("calls", "expected"), LARAVEL_12)
def test_helpers_build_the_expression_laravel_builds(calls: tuple[Any, ...], expected: str) -> None:
    frequency = chain(*calls)
    assert frequency.expression == expected
    CRON.validate(frequency.expression)


def test_last_day_of_month_is_each_months_last_day_not_the_current_ones() -> None:
    # Laravel splices the last day of the month it runs in (31 in October) and rebuilds the
    # expression every minute; a stored schedule is built once, so L keeps that meaning.
    assert chain("lastDayOfMonth").expression == "0 0 L * *"


def bad(call: tuple[Any, ...], field: str, *words: str) -> Any:
    return pytest.param(call, field, words, id=f"{call!r}")


ARG = "helpers[0].args[0]"
MALFORMED = [
    bad(("hourlyAt", "*/70"), ARG, "'hourlyAt'", "'minute'", "'*/70'", "step 70"),
    bad(("hourlyAt", "half"), ARG, "'hourlyAt'", "'minute'", "'half'"),
    bad(("hourlyAt", "60"), ARG, "'hourlyAt'", "minute 60"),
    bad(("hourlyAt", 1.5), ARG, "'hourlyAt'", "not a whole number"),
    bad(("hourlyAt", None), ARG, "'hourlyAt'", "not a whole number"),
    bad(("hourlyAt", [15, "*/0"]), f"{ARG}[1]", "'hourlyAt'", "step 0"),
    bad(("hourlyAt", ["*", 5]), ARG, "'hourlyAt'", "'*' cannot be part of a list"),
    bad(("everyTwoHours", "60"), ARG, "'everyTwoHours'", "'minute'", "'60'"),
    bad(("weeklyOn", "1-9"), ARG, "'weeklyOn'", "'dayOfWeek'", "day-of-week 9"),
    bad(("days", "mon-funday"), ARG, "'days'", "'mon-funday'"),
    bad(("days", 1, 8), "helpers[0].args[1]", "'days'", "day-of-week 8"),
    bad(("dailyAt", "*/2"), ARG, "'dailyAt'", "'time'", "'*/2'"),
    bad(("dailyAt", 24), ARG, "'dailyAt'", "'time'", "hour 24"),
    bad(("dailyAt", "13:08:61"), ARG, "'dailyAt'", "'time'", "second 61"),
    bad(("dailyAt", "13:08:10:00"), ARG, "'dailyAt'", "'time'"),
    bad(("weeklyOn", 1, "8h"), "helpers[0].args[1]", "'weeklyOn'", "'time'", "'8h'"),
    bad(("monthlyOn", "0"), ARG, "'monthlyOn'", "'dayOfMonth'", "day-of-month 0"),
    bad(("yearlyOn", "13-14"), ARG, "'yearlyOn'", "'month'", "'13-14'", "month 13"),
    bad(("twiceDaily", "24"), ARG, "'twiceDaily'", "'first'", "hour 24"),
    bad(("twiceDaily", "*", 13), "helpers[0].args", "'twiceDaily'", "'first'", "'second'", "'*'"),
    bad(("twiceMonthly", "15W", 1), "helpers[0].args", "'twiceMonthly'", "'first'", "'second'"),
    bad(("daysOfMonth", "1-32"), ARG, "'daysOfMonth'", "'days'", "'1-32'", "day-of-month 32"),
]


@pytest.mark.parametrize(("call", "field", "words"), MALFORMED)
def test_malformed_arguments_name_the_helper_and_the_argument(
    call: tuple[Any, ...], field: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(FrequencyError) as caught:
        chain(call)
    assert caught.value.field == field
    for word in words:
        assert word in str(caught.value)


def test_a_schedule_stored_before_seconds_were_ignored_keeps_its_expression() -> None:
    # Chronicle used to keep dailyAt's seconds: a schedule created then was stored as
    # "10 8 13 * * *". Its stored expression wins; only new chains get Laravel's reading.
    stored: dict[str, Any] = {
        "expression": "10 8 13 * * *",
        "helpers": [{"name": "dailyAt", "args": ["13:08:10"]}],
        "windows": [],
    }
    events = ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    schedule = Schedule.create(
        schedule_id=uuid4(),
        name="old report",
        command="demo:echo",
        command_line="demo:echo hi",
        arguments={"message": "hi"},
        options={},
        frequency=stored,
        timezone="UTC",
        by="ops",
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    events.save(schedule)
    loaded: Schedule = events.repository.get(schedule.id)
    frequency = Frequency.from_dict(loaded.frequency)
    assert frequency.expression == "10 8 13 * * *"
    assert frequency.to_dict() == stored
    after = datetime(2026, 5, 1, tzinfo=UTC)
    assert next_tick(frequency, "UTC", after, CRON).due_at == datetime(
        2026, 5, 1, 13, 8, 10, tzinfo=UTC
    )
    assert Frequency.from_helpers(stored["helpers"]).expression == "8 13 * * *"


def test_the_catalogue_says_which_parameters_take_cron_fields() -> None:
    types = {
        (entry["name"], param["name"]): param["type"]
        for entry in HELPERS_CATALOGUE
        for param in entry["parameters"]
    }
    for cron_field in [
        ("hourlyAt", "minute"),
        ("everyTwoHours", "minute"),
        ("twiceDaily", "first"),
        ("twiceDailyAt", "minute"),
        ("weeklyOn", "dayOfWeek"),
        ("days", "days"),
        ("monthlyOn", "dayOfMonth"),
        ("twiceMonthly", "second"),
        ("quarterlyOn", "dayOfQuarter"),
        ("daysOfMonth", "days"),
        ("yearlyOn", "month"),
        ("yearlyOn", "dayOfMonth"),
    ]:
        assert "cron field" in types[cron_field], cron_field
    for plain in [("dailyAt", "time"), ("weeklyOn", "time"), ("between", "start")]:
        assert "cron field" not in types[plain], plain
