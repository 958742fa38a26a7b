"""Riding out a database outage: which errors mean "not reachable now", and retrying them.

A worker that cannot save `Started` or a job's outcome must neither lose the message nor
drop the outcome: it keeps trying, with back-off, and says so once per outage, not once
per attempt. Conflicts (someone else saved first, see `application.saving`) are never
retried here; they are decisions for the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from eventsourcing.persistence import InterfaceError, OperationalError

from application.ports import StoreUnavailableError

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: First pause after a failure, and the longest one.
FIRST_DELAY = 0.05
MAX_DELAY = 5.0


def is_outage(error: BaseException) -> bool:
    """True for errors that say the database cannot be reached right now (lost connection,
    refused connection, no connection free in the pool), as opposed to a conflict or a bug."""
    return isinstance(error, OperationalError | InterfaceError | StoreUnavailableError)


class OutageGaveUpError(Exception):
    """The database stayed unreachable for longer than the caller was prepared to wait."""


def ride_out(
    operation: Callable[[], T],
    *,
    what: str,
    give_up_after: float | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Run `operation`, retrying it with exponential back-off while `is_outage` says the
    database is unreachable; any other error goes to the caller at once.

    Gives up (`OutageGaveUpError`) after `give_up_after` seconds, or once `stop` is set;
    without either it retries until the database answers.
    """
    started = time.monotonic()
    delay = FIRST_DELAY
    failures = 0
    while True:
        try:
            result = operation()
        except Exception as error:
            if not is_outage(error):
                raise
            failures += 1
            if failures == 1:
                log.warning("database unreachable, retrying", what=what, error=str(error)[:300])
            waited = time.monotonic() - started
            if (give_up_after is not None and waited >= give_up_after) or (
                stop is not None and stop.is_set()
            ):
                raise OutageGaveUpError(
                    f"{what}: the database was unreachable for {waited:.1f} s"
                ) from error
            if stop is not None:
                stop.wait(delay)
            else:
                sleep(delay)
            delay = min(MAX_DELAY, delay * 2)
            continue
        if failures:
            log.info(
                "database reachable again",
                what=what,
                retries=failures,
                seconds=round(time.monotonic() - started, 3),
            )
        return result
