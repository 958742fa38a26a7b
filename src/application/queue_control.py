"""Queue control use cases (pause, resume) and the paused set a worker acts on.

Queues are shared by every tenant while pauses belong to one tenant. A worker therefore skips a
queue at the broker only when no waiting job in it may run (every tenant with waiting jobs there
paused it), and its executor defers the message of any job whose own tenant paused its queue:
one tenant's pause never stops another tenant's jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents, change
from application.ports import Clock
from application.views.queue_pauses import QueuePause, QueuePausesQueries
from domain.queue_control import QueueControl, queue_control_id

log = structlog.get_logger(__name__)


class QueueControlService:
    """Writes the QueueControl aggregate of a tenant."""

    def __init__(self, events: ChronicleEvents, clock: Clock) -> None:
        self._events = events
        self._clock = clock

    def get(self, tenant: str) -> QueueControl:
        """The tenant's queue control as stored; a fresh, unsaved one if it never paused."""
        try:
            control: QueueControl = self._events.repository.get(queue_control_id(tenant))
        except AggregateNotFoundError:
            return QueueControl.open(tenant=tenant, at=self._clock.now())
        return control

    def pause(self, *, tenant: str, queue: str | None, by: str, reason: str = "") -> QueueControl:
        """Pause `queue`, or every queue of the tenant when `queue` is None."""
        return self._change(
            tenant,
            lambda control: control.pause(queue=queue, by=by, reason=reason, at=self._clock.now()),
        )

    def resume(self, *, tenant: str, queue: str | None, by: str) -> QueueControl:
        """Resume `queue`, or lift the tenant's maintenance pause when `queue` is None."""
        return self._change(
            tenant, lambda control: control.resume(queue=queue, by=by, at=self._clock.now())
        )

    def _change(self, tenant: str, command: Callable[[QueueControl], None]) -> QueueControl:
        # Another operator may save (or first create) the same control between our load and
        # our save: reload and decide again, so "already paused" is judged on current state.
        return change(
            self._events, lambda: self.get(tenant), command, f"the queues of tenant {tenant!r}"
        )


@dataclass(frozen=True)
class PausedQueues:
    """The pauses a worker acts on, as read at one moment."""

    #: tenant -> its paused queues; None in the set is the tenant's maintenance pause.
    by_tenant: Mapping[str, frozenset[str | None]] = field(default_factory=dict)
    #: Queues in which no waiting job may run: the worker does not take messages from them.
    skipped: frozenset[str] = frozenset()

    def is_paused(self, tenant: str, queue: str) -> bool:
        held = self.by_tenant.get(tenant)
        return held is not None and (queue in held or None in held)


def paused_queues(
    pauses: Iterable[QueuePause], waiting: Iterable[tuple[str, str]], queues: Iterable[str]
) -> PausedQueues:
    """Which queues to skip: paused by some tenant, and by every tenant with jobs waiting there."""
    by_tenant: dict[str, set[str | None]] = {}
    for pause in pauses:
        by_tenant.setdefault(pause.tenant, set()).add(pause.queue)
    held = PausedQueues({tenant: frozenset(q) for tenant, q in by_tenant.items()})
    waiting_in: dict[str, set[str]] = {}
    for tenant, queue in waiting:
        waiting_in.setdefault(queue, set()).add(tenant)
    skipped = frozenset(
        queue
        for queue in queues
        if any(held.is_paused(tenant, queue) for tenant in held.by_tenant)
        and all(held.is_paused(tenant, queue) for tenant in waiting_in.get(queue, ()))
    )
    return PausedQueues(held.by_tenant, skipped)


class PauseWatcher:
    """A worker's view of the pauses, re-read from the read model every `interval` seconds."""

    def __init__(
        self, queries: QueuePausesQueries, queues: Iterable[str], *, interval: float = 0.5
    ) -> None:
        self._queries = queries
        self._queues = tuple(queues)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current = PausedQueues()

    def refresh(self) -> PausedQueues:
        """Read the pauses now; on error keep acting on the last ones read."""
        try:
            pauses = self._queries.pauses()
            # Without pauses the waiting jobs do not matter: spare the second query.
            waiting = self._queries.waiting() if pauses else set()
            self.current = paused_queues(pauses, waiting, self._queues)
        except Exception:
            log.warning("could not read the queue pauses, keeping the last ones", exc_info=True)
        return self.current

    def skipped(self) -> frozenset[str]:
        """Queues the worker does not take messages from (for `start_worker(paused=...)`)."""
        return self.current.skipped

    def is_paused(self, tenant: str, queue: str) -> bool:
        """Whether `tenant` paused `queue` (or all its queues), for the job executor."""
        return self.current.is_paused(tenant, queue)

    def start(self) -> PauseWatcher:
        # Read once before the worker starts, so it does not take a paused queue's first jobs.
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="chronicle-pauses", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._interval + 5)
