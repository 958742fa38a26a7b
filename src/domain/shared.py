"""Domain errors, identifiers and small value types shared by every aggregate."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

DEFAULT_TENANT = "default"
#: A tenant's name: lower-case letters, digits, `_` and `-`, at most 63 characters.
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

#: Namespace for deterministic ids (uuid5), e.g. the job a schedule starts at a due time.
CHRONICLE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:chronicle")


class DomainError(Exception):
    """A rule of the domain was broken; the message says which."""


class InvalidTransitionError(DomainError):
    """The aggregate is in a state where this command is not allowed."""


class NotFoundError(DomainError):
    """The requested aggregate or read-model row does not exist."""


class GoneError(DomainError):
    """The thing existed but was removed on purpose (e.g. an export's file after retention)."""


class ConflictError(DomainError):
    """Others changed the aggregate too often while we tried; the caller may try again."""


class ValidationError(DomainError):
    """Input does not satisfy the rules; `field` names the offending part when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def require_utc(moment: datetime, name: str) -> datetime:
    """Return `moment` in UTC; naive datetimes are rejected, never guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware", field=name)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 falls before datetime.min in UTC
        raise ValidationError(f"{name} is out of range", field=name) from None


def deterministic_id(*parts: str) -> UUID:
    """A stable id derived from its parts (same parts, same id)."""
    return uuid5(CHRONICLE_NAMESPACE, "/".join(parts))
