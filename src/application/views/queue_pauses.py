"""The queue pauses read model: the pauses in force per tenant, from QueueControl events."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.queue_control import QueueControl


@dataclass(frozen=True)
class QueuePause:
    """A pause in force; `queue` is None for the tenant's maintenance pause of every queue."""

    tenant: str
    queue: str | None
    by: str
    reason: str
    at: datetime


class QueuePausesWriter(Protocol):
    """What the queue pauses projection needs from its store, inside one transaction."""

    def tenants(self, control_ids: Collection[UUID]) -> dict[UUID, str]: ...
    def insert_control(self, control_id: UUID, tenant: str) -> None: ...
    def set_pause(self, pause: QueuePause) -> None: ...
    def clear_pause(self, tenant: str, queue: str | None) -> None: ...


class QueuePausesProjection:
    """Keeps one row per pause in force; a resume deletes it."""

    name = "queue_pauses"
    topics = tuple(
        topic(cls) for cls in (QueueControl.Opened, QueueControl.Paused, QueueControl.Resumed)
    )

    def process(self, events: Sequence[LoggedEvent], writer: QueuePausesWriter) -> None:
        opened = {
            logged.event.originator_id: logged.event.tenant
            for logged in events
            if isinstance(logged.event, QueueControl.Opened)
        }
        # Pause events do not repeat the tenant: it is read once per batch from the Opened row.
        tenants = {
            **writer.tenants({e.event.originator_id for e in events} - set(opened)),
            **opened,
        }
        for logged in events:
            event = logged.event
            if isinstance(event, QueueControl.Opened):
                writer.insert_control(event.originator_id, event.tenant)
                continue
            tenant = tenants.get(event.originator_id)
            if tenant is None:
                continue  # a control this read model never saw opened
            if isinstance(event, QueueControl.Paused):
                writer.set_pause(QueuePause(tenant, event.queue, event.by, event.reason, event.at))
            elif isinstance(event, QueueControl.Resumed):
                writer.clear_pause(tenant, event.queue)


class QueuePausesQueries(Protocol):
    """Read side of the queue pauses read model."""

    def pauses(self, tenant: str | None = None) -> list[QueuePause]:
        """The pauses in force for `tenant`, or for every tenant when None."""
        ...

    def waiting(self) -> set[tuple[str, str]]:
        """(tenant, queue) pairs that have waiting jobs, from the jobs read model's counts."""
        ...

    def position(self) -> int:
        """The log position the pauses read model has reached."""
        ...
