"""Which scheduler processes ran when: what tells a late tick from a missed one.

Each scheduler run records its presence — a run id, when its process started, and when it
was last seen, refreshed every second — so a tick can be judged by its due time alone: it
was *missed* only if no scheduler was running then. A scheduler that was running but slow
(loading, starved of CPU, paused by GC, waiting on a commit or a database outage) fires it
late instead, and so does another scheduler that starts meanwhile.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID


class SchedulerPresence(Protocol):
    """Where scheduler runs record when they were running."""

    def beat(self, run_id: UUID, name: str, started_at: datetime, seen_at: datetime) -> None:
        """Record the run (first call) or move its last-seen time to `seen_at`."""
        ...

    def spans(self, since: datetime) -> list[tuple[datetime, datetime]]:
        """(process started, last seen) of every run last seen at or after `since`."""
        ...

    def prune(self, before: datetime) -> None:
        """Forget runs last seen before `before`."""
        ...


class Coverage:
    """The instants at which some scheduler was running, from presence spans, each widened
    by `grace` on both sides (clock skew between hosts; a last-seen time refreshed late)."""

    def __init__(self, spans: Iterable[tuple[datetime, datetime]], *, grace: timedelta) -> None:
        merged: list[list[datetime]] = []
        for start, end in sorted((start - grace, end + grace) for start, end in spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [start for start, _ in merged]
        self._ends = [end for _, end in merged]

    def covers(self, at: datetime) -> bool:
        i = bisect_right(self._starts, at) - 1
        return i >= 0 and at <= self._ends[i]
