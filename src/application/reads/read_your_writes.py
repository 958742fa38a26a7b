"""Read your writes: a resource from its read model once that has caught up with a write, else
as its own events make it.

Read models follow the log a moment behind. A caller names the write it needs to see by the
aggregate's version: its own write's (`at_least=job.version`), or by default the aggregate's
current version in the event store, so a read right after a write made elsewhere is current
too. The read model's answer is used once it holds that version; until then the resource is
built by running its read model's projection over the aggregate's own events, which gives the
row the projector is about to write, but for log positions (unknown: 0) and what comes from
other streams (a batch's job counts, a schedule's last tick), which the caller takes from the
read model's row when there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from application.event_log import ChronicleEvents, LoggedEvent, topic
from application.projections import Projection
from domain.shared import NotFoundError

T = TypeVar("T")
W = TypeVar("W")


class Versioned(Protocol):
    """A read model's answer about one aggregate, as of the version of it that it reflects."""

    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


@dataclass(frozen=True)
class Current(Generic[T]):
    """A resource as of at least the write asked for; `projected` when the read model said it."""

    value: T
    projected: bool


def replay(projection: Projection[W], events: Sequence[LoggedEvent], writer: W) -> W:
    """Run `projection` over one aggregate's events, as its runner would hand them to it,
    into `writer` (one that keeps that aggregate's rows in memory); return the writer."""
    topics = set(projection.topics)
    projection.process(
        [logged for logged in events if not topics or topic(type(logged.event)) in topics],
        writer,
    )
    return writer


def not_found(resource: str, aggregate_id: UUID) -> NotFoundError:
    """The error of a read that finds no `resource` with this id (for the caller's tenant)."""
    return NotFoundError(f"{resource} {aggregate_id} not found")


class ReadYourWrites:
    """The read-your-writes rule, for every resource: see `read`."""

    def __init__(self, events: ChronicleEvents) -> None:
        self._events = events

    def version(self, aggregate_id: UUID) -> int | None:
        """The aggregate's current version in the event store (None: it has no events)."""
        for event in self._events.events.get(aggregate_id, desc=True, limit=1):
            return event.originator_version
        return None

    def events(self, aggregate_id: UUID) -> list[LoggedEvent]:
        """The aggregate's events, oldest first; their log positions are unknown here (0)."""
        return [LoggedEvent(0, event) for event in self._events.events.get(aggregate_id)]

    def caught_up(self, aggregate_id: UUID, version: int, *, at_least: int | None) -> bool:
        """Whether an answer as of `version` shows the aggregate at version `at_least` (by
        default its current version in the event store)."""
        wanted = self.version(aggregate_id) if at_least is None else at_least
        return wanted is None or version >= wanted

    def read(
        self,
        resource: str,
        aggregate_id: UUID,
        stored: V | None,
        own: Callable[[Sequence[LoggedEvent], V | None], V | None],
        *,
        at_least: int | None = None,
    ) -> Current[V]:
        """`stored`, the read model's answer (None when it has none), if it has caught up
        (see `caught_up`); else what `own` makes of the aggregate's events, given `stored`
        for the parts that come from other streams. `own` answers None when the events do
        not make a visible `resource` (none, another tenant's, deleted): NotFoundError."""
        if stored is not None and self.caught_up(aggregate_id, stored.version, at_least=at_least):
            return Current(stored, projected=True)
        value = own(self.events(aggregate_id), stored)
        if value is None:
            raise not_found(resource, aggregate_id)
        return Current(value, projected=False)
