"""Group commit: aggregates saved by many threads at once share one event-store transaction.

Every write to the event store serialises on one table lock, so a worker whose threads each
save their own job commits one job per transaction. Here concurrent callers queue their
events; one of them (the leader) saves everything queued in a single transaction and wakes
the others. A conflict in a shared batch (two threads racing on one job) is resolved by
saving each caller's events alone, so only the loser sees a conflict (`ConflictError`,
which `application.saving.saved` tells from a failure like the event store's own).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from application.event_log import ChronicleEvents
from application.saving import save_groups
from domain.shared import ConflictError


class _Pending:
    __slots__ = ("error", "events", "finished", "wake")

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.error: BaseException | None = None
        self.finished = False
        self.wake = threading.Event()


class GroupCommitter:
    """`save(*events)` that blocks until committed, batching concurrent callers."""

    def __init__(self, events: ChronicleEvents, *, max_batch: int = 200) -> None:
        self._events = events
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._leading = False

    def save(self, *events: Any) -> None:
        """Save events collected from aggregates (`aggregate.collect_events()`): the caller
        keeps them, so a save that failed can be tried again with the same events."""
        pending = _Pending(list(events))
        with self._lock:
            self._queue.append(pending)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            pending.wake.wait()
        if not pending.finished:
            self._lead()
        if pending.error is not None:
            raise pending.error

    def _lead(self) -> None:
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
        try:
            self._commit(batch)
        finally:
            for item in batch:
                item.finished = True
                item.wake.set()
            with self._lock:
                if self._queue:
                    # Hand over: the oldest waiter leads the next batch; the old leader returns.
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Pending]) -> None:
        unsettled = deque(batch)

        def settled(saved: bool) -> None:
            item = unsettled.popleft()
            if not saved:
                item.error = ConflictError("another writer saved the same aggregate first")

        try:
            save_groups(self._events.save, [item.events for item in batch], settled=settled)
        except Exception as exc:
            # The database failed (not a conflict): every caller not yet settled hears it.
            for item in unsettled:
                item.error = exc
