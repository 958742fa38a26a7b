"""Queue control use cases (pause, resume) and the paused set a worker acts on.

Queues are shared by every tenant while pauses belong to one tenant. A worker therefore skips a
queue at the broker only when no waiting job in it may run (every tenant with waiting jobs there
paused it), and its executor defers the message of any job whose own tenant paused its queue:
one tenant's pause never stops another tenant's jobs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents, EventLog, topic
from application.ports import Clock, WorkerHeartbeats
from application.saving import change
from application.views.queue_pauses import QueuePause, QueuePausesQueries
from domain.queue_control import QueueControl, queue_control_id

log = structlog.get_logger(__name__)


class QueueControlService:
    """Writes the QueueControl aggregate of a tenant."""

    def __init__(
        self,
        events: ChronicleEvents,
        clock: Clock,
        *,
        heartbeats: WorkerHeartbeats | None = None,
        worker_lost_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self._events = events
        self._clock = clock
        self._heartbeats = heartbeats
        self._worker_lost_after = worker_lost_after

    def wait_until_held(self, position: int, *, timeout: float = 10.0) -> list[str]:
        """Wait until every live worker acts on the pauses recorded up to log `position`;
        return the workers that did not say so within `timeout` seconds (none: it holds)."""
        if self._heartbeats is None:
            return []
        deadline = time.monotonic() + timeout
        while True:
            since = self._clock.now() - self._worker_lost_after
            pending = [
                beat.worker_id
                for beat in self._heartbeats.live(since)
                if beat.pauses_seen < position
            ]
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(0.02)

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
    pauses: Iterable[QueuePause] | Mapping[str, Iterable[str | None]],
    waiting: Iterable[tuple[str, str]],
    queues: Iterable[str],
) -> PausedQueues:
    """Which queues to skip: paused by some tenant, and by every tenant with jobs waiting there.

    `pauses` are the pauses in force, or the paused queues by tenant."""
    by_tenant: dict[str, set[str | None]] = {}
    if isinstance(pauses, Mapping):
        for tenant, paused in pauses.items():
            by_tenant.setdefault(tenant, set()).update(paused)
    else:
        for pause in pauses:
            by_tenant.setdefault(pause.tenant, set()).add(pause.queue)
    held = PausedQueues({tenant: frozenset(q) for tenant, q in by_tenant.items() if q})
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


class StartGate:
    """A readers-writer lock between starting jobs (readers, many at once) and changing the
    pauses a worker acts on (the writer, which waits for starts in progress and holds new ones
    back). Writers go first, so a stream of starts cannot keep a pause out."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def starting(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def changing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


QUEUE_CONTROL_TOPICS = tuple(
    topic(cls) for cls in (QueueControl.Opened, QueueControl.Paused, QueueControl.Resumed)
)


class PauseWatcher:
    """A worker's view of the pauses, kept current every `interval` seconds.

    Loaded from the read model, then followed in the event log itself (the tenants' queue
    controls are reloaded when they change), so it is never behind the projector. `position`
    is the log position it acts on; a change is applied under the `StartGate`, so once a
    worker says it acts on a position, no job it starts after that ignores a pause recorded
    before it (`QueueControlService.wait_until_held`).
    """

    def __init__(
        self,
        queries: QueuePausesQueries,
        queues: Iterable[str],
        *,
        events: ChronicleEvents | None = None,
        log: EventLog | None = None,
        interval: float = 0.5,
    ) -> None:
        self._queries = queries
        self._queues = tuple(queues)
        self._events = events
        self._log = log if events is not None else None
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gate = StartGate()
        self._by_tenant: dict[str, frozenset[str | None]] | None = None
        self._failing = False
        self.position = 0
        self.current = PausedQueues()
        #: Called (under the gate) when the pauses acted on change, e.g. to report them.
        self.on_change: Callable[[], None] | None = None

    def refresh(self) -> PausedQueues:
        """Read the pauses now; on error keep acting on the last ones read."""
        try:
            position, by_tenant = self._read()
            # Without pauses the waiting jobs do not matter: spare the query.
            waiting = self._queries.waiting() if by_tenant else set()
            current = paused_queues(by_tenant, waiting, self._queues)
            with self._gate.changing():
                changed = current.by_tenant != self.current.by_tenant
                self._by_tenant, self.current, self.position = by_tenant, current, position
                if changed and self.on_change is not None:
                    self.on_change()
        except Exception:
            if not self._failing:
                log.warning("could not read the queue pauses, keeping the last ones", exc_info=True)
            self._failing = True
        else:
            self._failing = False
        return self.current

    def _read(self) -> tuple[int, dict[str, frozenset[str | None]]]:
        if self._log is None or self._events is None or self._by_tenant is None:
            # The read model: its position first, so the pauses read are at least as new.
            position = self._queries.position()
            by_tenant: dict[str, set[str | None]] = {}
            for pause in self._queries.pauses():
                by_tenant.setdefault(pause.tenant, set()).add(pause.queue)
            return position, {tenant: frozenset(q) for tenant, q in by_tenant.items()}
        head = self._log.head()
        state = dict(self._by_tenant)
        position = self.position
        while position < head:
            batch = self._log.read(position, limit=500, upto=head, topics=QUEUE_CONTROL_TOPICS)
            for control_id in {logged.event.originator_id for logged in batch}:
                control: QueueControl = self._events.repository.get(control_id)
                state[control.tenant] = frozenset(control.pauses)
            position = batch[-1].position if len(batch) == 500 else head
        return head, {tenant: queues for tenant, queues in state.items() if queues}

    def starting(self) -> AbstractContextManager[None]:
        """Held by the executor from its pause check to its `Started` save."""
        return self._gate.starting()

    def skipped(self) -> frozenset[str]:
        """Queues the worker does not take messages from (for `start_worker(paused=...)`)."""
        return self.current.skipped

    def is_paused(self, tenant: str, queue: str) -> bool:
        """Whether `tenant` paused `queue` (or all its queues), for the job executor."""
        return self.current.is_paused(tenant, queue)

    def start(self) -> PauseWatcher:
        # Read once before the worker starts, so it does not take a paused queue's first jobs.
        self.refresh()
        if self._log is not None:
            self.refresh()  # and from the log, past the read model's position
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
