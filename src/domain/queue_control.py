"""The QueueControl aggregate: which of a tenant's queues are paused, and the maintenance pause.

One aggregate per tenant, with an id derived from the tenant: two operators pausing at once
write the same stream, so the event store lets one win and the other decides again.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.job import validate_queue
from domain.shared import (
    DEFAULT_TENANT,
    InvalidTransitionError,
    ValidationError,
    deterministic_id,
    require_utc,
)

MAX_REASON = 500


def queue_control_id(tenant: str) -> UUID:
    """The id of `tenant`'s queue control: the same in every process."""
    return deterministic_id("queue-control", tenant)


def _describe(queue: str | None) -> str:
    return "the maintenance pause" if queue is None else f"queue {queue!r}"


class QueueControl(Aggregate):
    """Pauses of one tenant: per queue, and a global (maintenance) pause of every queue."""

    class Opened(Aggregate.Created):
        tenant: str
        at: datetime

    class Paused(Aggregate.Event):
        """`queue` is None for the maintenance pause of every queue."""

        queue: str | None
        by: str
        reason: str
        at: datetime

    class Resumed(Aggregate.Event):
        queue: str | None
        by: str
        at: datetime

    @event(Opened)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.opened_at = at
        # queue (None: maintenance) -> (by, reason, at) of the pause in force.
        self.pauses: dict[str | None, tuple[str, str, datetime]] = {}

    @classmethod
    def open(cls, *, tenant: str = DEFAULT_TENANT, at: datetime) -> QueueControl:
        """The queue control of `tenant`, with nothing paused."""
        if not tenant:
            raise ValidationError("tenant must not be empty", field="tenant")
        return cls(id=queue_control_id(tenant), tenant=tenant, at=require_utc(at, "at"))

    def is_paused(self, queue: str | None) -> bool:
        return queue in self.pauses

    def pause(self, *, queue: str | None, by: str, reason: str, at: datetime) -> None:
        """Pause one queue, or with `queue=None` every queue (maintenance)."""
        if queue is not None:
            validate_queue(queue)
        if len(reason) > MAX_REASON:
            raise ValidationError(f"reason must be at most {MAX_REASON} characters", field="reason")
        if queue in self.pauses:
            raise InvalidTransitionError(f"{_describe(queue)} is already paused")
        self._paused(queue=queue, by=by, reason=reason, at=require_utc(at, "at"))

    def resume(self, *, queue: str | None, by: str, at: datetime) -> None:
        """Lift the pause of one queue, or with `queue=None` the maintenance pause."""
        if queue is not None:
            validate_queue(queue)
        if queue not in self.pauses:
            raise InvalidTransitionError(f"{_describe(queue)} is not paused")
        self._resumed(queue=queue, by=by, at=require_utc(at, "at"))

    @event(Paused)
    def _paused(self, queue: str | None, by: str, reason: str, at: datetime) -> None:
        self.pauses[queue] = (by, reason, at)

    @event(Resumed)
    def _resumed(self, queue: str | None, by: str, at: datetime) -> None:
        self.pauses.pop(queue, None)
