"""The CronCalculator port on croniter: naive wall-clock arithmetic, parsed expressions cached."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from croniter import CroniterBadDateError, CroniterError, croniter

from domain.frequency import FrequencyError, canonical_expression

# Any fixed start will do: every call passes its own start time.
_EPOCH = datetime(2000, 1, 1)  # noqa: DTZ001 - croniter works on naive wall-clock time here
_SECONDS_FIRST_FIELDS = 6


def _build(expression: str) -> Any:
    # The domain's canonical form is what croniter must see: it rewrites spellings croniter
    # reads differently from cron ("5-5" is the whole hour range to croniter).
    canonical = canonical_expression(expression)
    seconds_first = len(canonical.split()) == _SECONDS_FIRST_FIELDS
    try:
        return croniter(canonical, _EPOCH, ret_type=datetime, second_at_beginning=seconds_first)
    except CroniterError as error:
        raise FrequencyError(
            f"cron expression {expression!r}: {error}", field="expression"
        ) from None


class CroniterCalculator:
    """Computes cron times on naive local wall-clock datetimes with croniter (no DST logic here)."""

    def __init__(self, cache_size: int = 16_384) -> None:
        # The scheduler asks about the same few thousand expressions for 100,000 schedules:
        # parsing (≈25 µs) once per expression, not once per call, halves the cost of a call.
        self._parsed: Callable[[str], Any] = lru_cache(maxsize=cache_size)(_build)

    def validate(self, expression: str) -> None:
        parsed = self._parsed(expression)
        seconds_first = parsed.second_at_beginning
        try:
            croniter.expand(
                canonical_expression(expression),
                second_at_beginning=seconds_first,
                strict=True,
            )
        except CroniterError as error:
            raise FrequencyError(
                f"cron expression {expression!r}: {error}", field="expression"
            ) from None
        # An expression can parse and still never fire (croniter gives up after 50 years).
        self.next_local(expression, _EPOCH)

    def next_local(self, expression: str, after: datetime) -> datetime:
        if after.tzinfo is not None:
            raise ValueError("next_local works on naive wall-clock datetimes")
        # Shallow copy: get_next moves the iterator's own position; the parsed fields it
        # shares are only read, so concurrent callers never see each other's position.
        iterator = copy.copy(self._parsed(expression))
        # Slots are whole seconds, so "after a fraction" is "after its whole second"; dropping
        # the fraction also keeps float timestamps from rounding up onto the next slot.
        start = after.replace(microsecond=0)
        try:
            result: datetime = iterator.get_next(datetime, start_time=start)
        except CroniterBadDateError:
            raise FrequencyError(
                f"cron expression {expression!r} has no time after {after:%Y-%m-%d %H:%M:%S}",
                field="expression",
            ) from None
        return result
