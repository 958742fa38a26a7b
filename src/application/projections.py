"""Projections follow the application log into read models, exactly once, and can be rebuilt.

A projection's rows and its tracking position are written in one transaction, so a crash
between them is impossible: either both are committed or neither is, and the next run
resumes from the committed position.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Generic, Protocol, TypeVar

import structlog

from application.event_log import EventLog, LoggedEvent

W = TypeVar("W")
W_co = TypeVar("W_co", covariant=True)
W_contra = TypeVar("W_contra", contravariant=True)

log = structlog.get_logger(__name__)


class Tracked(Protocol[W_co]):
    """An open read-model transaction: the committed position and the projection's writer."""

    @property
    def position(self) -> int: ...

    @property
    def writer(self) -> W_co: ...

    def advance(self, position: int) -> None:
        """Record the new position, committed together with the rows."""
        ...


class ProjectionStore(Protocol[W]):
    """Where a projection writes: its tables (live or a shadow copy) and its tracking row."""

    @property
    def name(self) -> str: ...

    def transaction(self) -> AbstractContextManager[Tracked[W]]:
        """Open a transaction that locks the tracking row (one writer at a time)."""
        ...

    def position(self) -> int: ...

    def shadow(self) -> ProjectionStore[W]:
        """A fresh, empty copy of this store's tables, to rebuild into while live serves."""
        ...

    def replace_with(
        self, shadow: ProjectionStore[W], finish: Callable[[Tracked[W]], None]
    ) -> None:
        """In one transaction: lock the live tracking row, let `finish` bring the shadow to
        the head, then put the shadow's tables and position in place of the live ones."""
        ...


class Projection(Protocol[W_contra]):
    """Turns events into writes on its read model."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> Sequence[str]:
        """Event topics it reads; empty means every event."""
        ...

    def process(self, events: Sequence[LoggedEvent], writer: W_contra) -> None: ...


class ProjectionPositions(Protocol):
    """Where each read model stands in the log."""

    def tracking(self) -> dict[str, int]:
        """The committed log position of every projection, by name."""
        ...


class ProjectionRunner(Generic[W]):
    """Runs one projection: catch up in batches, then follow the log as it grows."""

    def __init__(
        self,
        projection: Projection[W],
        store: ProjectionStore[W],
        log: EventLog,
        *,
        batch_size: int = 500,
        gather_seconds: float = 0.02,
    ) -> None:
        self.projection = projection
        self.store = store
        self.log = log
        self.batch_size = batch_size
        # After waking up, wait this long so one transaction takes what arrived meanwhile:
        # under load a runner would otherwise commit a transaction per event.
        self.gather_seconds = gather_seconds
        self._position = 0

    @property
    def name(self) -> str:
        return self.projection.name

    def _apply_batch(self, tracked: Tracked[W], head: int) -> int:
        """Process the next batch up to `head` in an open transaction; return the new position."""
        start = tracked.position
        if head <= start:
            return start
        events = self.log.read(
            start, limit=self.batch_size, upto=head, topics=self.projection.topics
        )
        # With a topic filter a short page means nothing else matches up to `head`.
        new_position = events[-1].position if len(events) == self.batch_size else head
        if events:
            self.projection.process(events, tracked.writer)
        tracked.advance(new_position)
        return new_position

    def step(self, store: ProjectionStore[W] | None = None) -> int:
        """Process one batch; return how many log positions it advanced."""
        target = store or self.store
        head = self.log.head()
        with target.transaction() as tracked:
            before = tracked.position
            after = self._apply_batch(tracked, head)
        if target is self.store:
            self._position = after
        return after - before

    def catch_up(self) -> int:
        """Process until the head seen at the start; return the position reached."""
        while self.step():
            pass
        return self._position

    def run(self, stop: threading.Event, *, idle_timeout: float = 1.0) -> None:
        """Follow the log until `stop` is set; errors are logged and retried with back-off."""
        failures = 0
        while not stop.is_set():
            try:
                if self.step() == 0:
                    self.log.wait(self._position, idle_timeout)
                    if self.gather_seconds:
                        stop.wait(self.gather_seconds)
                failures = 0
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.exception("projection failed, retrying", projection=self.name, delay=delay)
                stop.wait(delay)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Replay the whole log into a shadow copy, then swap it in; live keeps serving."""
        shadow = self.store.shadow()
        started = time.monotonic()
        while True:
            advanced = self.step(shadow)
            if progress:
                progress(shadow.position(), self.log.head())
            if advanced == 0:
                break

        def finish(tracked: Tracked[W]) -> None:
            head = self.log.head()
            while self._apply_batch(tracked, head) < head:
                pass

        self.store.replace_with(shadow, finish)
        position = self.store.position()
        self._position = position
        log.info(
            "projection rebuilt",
            projection=self.name,
            position=position,
            seconds=round(time.monotonic() - started, 3),
        )
        return position
