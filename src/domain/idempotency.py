"""The IdempotencyKey aggregate: a client's key for one request and what that request created.

A client that retries a dispatch after a timeout or a crash sends the same key again and
gets the first dispatch back instead of a second one. The key's id derives from (tenant,
key): two requests racing with one key write the same stream, the event store lets one win,
and the other learns what the winner created. After the retention window a key may be used
again for a new request.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import ValidationError, deterministic_id, require_utc

MAX_KEY_LENGTH = 255


def validate_key(key: str) -> str:
    """A key is 1 to 255 printable ASCII characters (the `Idempotency-Key` header's rule)."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise ValidationError(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            field="idempotency_key",
        )
    return key


def idempotency_key_id(tenant: str, key: str) -> UUID:
    """The id of `tenant`'s key: the same in every process."""
    return deterministic_id("idempotency-key", json.dumps([tenant, key]))


class IdempotencyKey(Aggregate):
    """What one use of a key created: `kind` (`jobs`, `batch`) and the ids, and the request's
    fingerprint, so the same key sent with another request is refused, not answered."""

    class Used(Aggregate.Created):
        tenant: str
        key: str
        kind: str
        fingerprint: str
        created: list[UUID]
        at: datetime

    class Reused(Aggregate.Event):
        """The key came back after its retention window, for a new request."""

        kind: str
        fingerprint: str
        created: list[UUID]
        at: datetime

    @event(Used)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        tenant: str,
        key: str,
        kind: str,
        fingerprint: str,
        created: list[UUID],
        at: datetime,
    ) -> None:
        self.tenant = tenant
        self.key = key
        self.kind = kind
        self.fingerprint = fingerprint
        self.created = list(created)
        self.used_at = at

    @classmethod
    def use(
        cls,
        *,
        tenant: str,
        key: str,
        kind: str,
        fingerprint: str,
        created: list[UUID],
        at: datetime,
    ) -> IdempotencyKey:
        return cls(
            id=idempotency_key_id(tenant, validate_key(key)),
            tenant=tenant,
            key=key,
            kind=kind,
            fingerprint=fingerprint,
            created=created,
            at=require_utc(at, "at"),
        )

    def expired(self, now: datetime, retention: timedelta) -> bool:
        return now - self.used_at >= retention

    def answer(self, *, kind: str, fingerprint: str) -> list[UUID]:
        """What the first request created, if this one is the same request."""
        if kind != self.kind or fingerprint != self.fingerprint:
            raise ValidationError(
                f"idempotency key {self.key!r} was used at {self.used_at.isoformat()} for a"
                " different request: send a new key for a new request",
                field="idempotency_key",
            )
        return list(self.created)

    def reuse(self, *, kind: str, fingerprint: str, created: list[UUID], at: datetime) -> None:
        self._reused(kind=kind, fingerprint=fingerprint, created=created, at=require_utc(at, "at"))

    @event(Reused)
    def _reused(self, kind: str, fingerprint: str, created: list[UUID], at: datetime) -> None:
        self.kind = kind
        self.fingerprint = fingerprint
        self.created = list(created)
        self.used_at = at
