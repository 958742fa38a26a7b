"""Idempotent creation: a request sent again with the same key returns what the first made.

Used by dispatch (one job or many) and batch creation. The key is saved in the same
transaction as what it created, so there is never a key without its jobs or jobs without
their key, and two racing requests with one key cannot both create: the event store
accepts the first and the second reads what it made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents
from application.ports import Clock
from application.saving import CHANGE_ATTEMPTS, saved
from domain.idempotency import IdempotencyKey, idempotency_key_id, validate_key
from domain.shared import ConflictError

#: How long a key answers with its first request's result (CHRONICLE_IDEMPOTENCY_RETENTION_HOURS).
DEFAULT_RETENTION = timedelta(hours=24)


def fingerprint(request: object) -> str:
    """A digest of a request's content (dataclasses, dicts, lists, times, ids)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime | UUID):
            return str(value)
        if hasattr(value, "__dataclass_fields__"):
            return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    text = json.dumps(plain(request), sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    """What an idempotent request gave: the ids, and whether this request created them
    (False: the key had been used for the same request, this is its first result)."""

    ids: list[UUID]
    created: bool


class IdempotentCreation:
    """Runs a creation at most once per (tenant, key) within the retention window."""

    def __init__(
        self, events: ChronicleEvents, clock: Clock, *, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self._events = events
        self._clock = clock
        self._retention = retention

    def create(
        self,
        *,
        tenant: str,
        key: str | None,
        kind: str,
        request: object,
        build: Callable[[], tuple[Sequence[Any], list[UUID]]],
    ) -> Created:
        """`build()` returns the aggregates to save (in one transaction) and the ids to answer
        with. Without a key it always runs; with one, only when the key is new (or expired),
        and its aggregates are saved with the key."""
        if key is None:
            aggregates, ids = build()
            if aggregates:
                self._events.save(*aggregates)
            return Created(ids, created=True)
        validate_key(key)
        digest = fingerprint(request)
        key_id = idempotency_key_id(tenant, key)
        for _ in range(CHANGE_ATTEMPTS):
            now = self._clock.now()
            used = self._load(key_id)
            if used is not None and not used.expired(now, self._retention):
                return Created(used.answer(kind=kind, fingerprint=digest), created=False)
            aggregates, ids = build()
            if used is None:
                used = IdempotencyKey.use(
                    tenant=tenant, key=key, kind=kind, fingerprint=digest, created=ids, at=now
                )
            else:
                used.reuse(kind=kind, fingerprint=digest, created=ids, at=now)
            if saved(self._events.save, used, *aggregates):
                return Created(ids, created=True)
            # Another request with this key won: answer with what it made.
        raise ConflictError(f"idempotency key {key!r} is being used by other requests right now")

    def _load(self, key_id: UUID) -> IdempotencyKey | None:
        try:
            used: IdempotencyKey = self._events.repository.get(key_id)
        except AggregateNotFoundError:
            return None
        return used
