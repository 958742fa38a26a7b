"""Who may act: roles and what each may do, accounts (people) and API tokens (programs).

An account's id derives from its name, so two creations of one name write the same stream
and the event store accepts one. A token's id is random (it is the public part of the token
string); its name is claimed by a `TokenName` whose id derives from the name, saved in the
same transaction as the token, so two tokens of one name cannot both be saved.

Events carry hashes, never a password or a token secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import (
    TENANT_PATTERN,
    InvalidTransitionError,
    ValidationError,
    deterministic_id,
    require_utc,
)

MAX_NAME = 64
_NAME = re.compile(r"[a-z0-9._-]{1,64}")


class Role(StrEnum):
    """A principal's role; each role may do what the roles below it may, and more."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def includes(self, other: Role) -> bool:
        """Whether this role may do everything `other` may."""
        return self.rank >= other.rank

    def allows(self, action: Action) -> bool:
        return self.includes(required_role(action))


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValidationError(
            f"unknown role {value!r}: one of {', '.join(r.value for r in Role)}", field="role"
        ) from None


class Action(StrEnum):
    """What a request or command does, as far as permissions go."""

    READ = "read"
    DISPATCH = "dispatch"
    RETRY = "retry"
    CANCEL = "cancel"
    FORGET = "forget"
    COMMENT = "comment"
    MANAGE_SCHEDULES = "manage_schedules"  # create, edit, pause, resume, run, delete
    IMPORT = "import"
    EXPORT = "export"
    MANAGE_BATCHES = "manage_batches"
    MANAGE_PRINCIPALS = "manage_principals"  # accounts and API tokens
    REBUILD_PROJECTIONS = "rebuild_projections"
    CONTROL_QUEUES = "control_queues"  # pause and resume queues, maintenance mode


_REQUIRED: dict[Action, Role] = {
    Action.READ: Role.VIEWER,
    **dict.fromkeys(
        (
            Action.DISPATCH,
            Action.RETRY,
            Action.CANCEL,
            Action.FORGET,
            Action.COMMENT,
            Action.MANAGE_SCHEDULES,
            Action.IMPORT,
            Action.EXPORT,
            Action.MANAGE_BATCHES,
        ),
        Role.OPERATOR,
    ),
    Action.MANAGE_PRINCIPALS: Role.ADMIN,
    Action.REBUILD_PROJECTIONS: Role.ADMIN,
    Action.CONTROL_QUEUES: Role.ADMIN,
}

#: Actions on what every tenant shares (the queues): only a principal bound to no tenant.
SHARED_ACTIONS = frozenset({Action.CONTROL_QUEUES})


def required_role(action: Action) -> Role:
    """The least role that may do `action`."""
    return _REQUIRED[action]


def validate_name(name: str, what: str = "name") -> str:
    """A principal's name, normalised: 1 to 64 of `a-z 0-9 . _ -` (upper case is lowered)."""
    normalised = name.strip().lower()
    if not _NAME.fullmatch(normalised):
        raise ValidationError(
            f"{what} {name!r} must be 1 to {MAX_NAME} characters of a-z, 0-9, '.', '_', '-'",
            field="name",
        )
    return normalised


def validate_tenant(tenant: str | None) -> str | None:
    """A tenant binding: None (any tenant) or a tenant name (`TENANT_PATTERN`)."""
    if tenant is not None and not TENANT_PATTERN.fullmatch(tenant):
        raise ValidationError(
            f"tenant {tenant[:100]!r} must be 1 to 63 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit",
            field="tenant",
        )
    return tenant


class PrincipalKind(StrEnum):
    USER = "user"  # an account
    TOKEN = "token"  # noqa: S105 - an API token, not a secret
    CLI = "cli"  # someone running the `chronicle` command with the database URL
    SYSTEM = "system"  # Chronicle itself: the scheduler, reactions


@dataclass(frozen=True)
class Principal:
    """Who is acting: its kind, name, role and tenant binding (None: any tenant)."""

    kind: PrincipalKind
    name: str
    role: Role
    tenant: str | None = None

    @property
    def actor(self) -> str:
        """As recorded on events: `user:ada`, `token:ci-deploy`, `cli:root`, `scheduler`."""
        if self.kind is PrincipalKind.SYSTEM:
            return self.name
        return f"{self.kind.value}:{self.name}"

    def may(self, action: Action) -> bool:
        """Whether the role allows `action` and, for shared things, no tenant binds it."""
        if action in SHARED_ACTIONS and self.tenant is not None:
            return False
        return self.role.allows(action)

    def may_use_tenant(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant


def account_id(name: str) -> UUID:
    """The id of the account named `name` (normalised): the same in every process."""
    return deterministic_id("account", validate_name(name, "account name"))


def token_name_id(name: str) -> UUID:
    """The id of the claim on the token name `name` (normalised)."""
    return deterministic_id("api-token-name", validate_name(name, "token name"))


class Account(Aggregate):
    """A person who signs in: name, argon2id password hash, role, tenant binding, enabled."""

    class Created(Aggregate.Created):
        name: str
        password_hash: str
        role: str
        tenant: str | None
        by: str
        at: datetime

    class RoleChanged(Aggregate.Event):
        role: str
        by: str
        at: datetime

    class Disabled(Aggregate.Event):
        by: str
        at: datetime

    class Enabled(Aggregate.Event):
        by: str
        at: datetime

    class PasswordChanged(Aggregate.Event):
        password_hash: str
        by: str
        at: datetime

    @event(Created)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        name: str,
        password_hash: str,
        role: str,
        tenant: str | None,
        by: str,
        at: datetime,
    ) -> None:
        self.name = name
        self.password_hash = password_hash
        self.role = Role(role)
        self.tenant = tenant
        self.enabled = True
        self.created_by = by
        self.created_at = at
        self.changed_at = at

    @classmethod
    def register(
        cls,
        *,
        name: str,
        password_hash: str,
        role: Role,
        tenant: str | None,
        by: str,
        at: datetime,
    ) -> Account:
        normalised = validate_name(name, "account name")
        if not password_hash:
            raise ValidationError("an account needs a password hash", field="password")
        return cls(
            id=account_id(normalised),
            name=normalised,
            password_hash=password_hash,
            role=Role(role).value,
            tenant=validate_tenant(tenant),
            by=by,
            at=require_utc(at, "at"),
        )

    def change_role(self, role: Role, *, by: str, at: datetime) -> None:
        if Role(role) is self.role:
            raise InvalidTransitionError(f"account {self.name!r} already has role {role}")
        self._role_changed(role=Role(role).value, by=by, at=require_utc(at, "at"))

    def disable(self, *, by: str, at: datetime) -> None:
        if not self.enabled:
            raise InvalidTransitionError(f"account {self.name!r} is already disabled")
        self._disabled(by=by, at=require_utc(at, "at"))

    def enable(self, *, by: str, at: datetime) -> None:
        if self.enabled:
            raise InvalidTransitionError(f"account {self.name!r} is already enabled")
        self._enabled(by=by, at=require_utc(at, "at"))

    def change_password(self, password_hash: str, *, by: str, at: datetime) -> None:
        if not password_hash:
            raise ValidationError("an account needs a password hash", field="password")
        self._password_changed(password_hash=password_hash, by=by, at=require_utc(at, "at"))

    @event(RoleChanged)
    def _role_changed(self, role: str, by: str, at: datetime) -> None:
        self.role = Role(role)
        self.changed_at = at

    @event(Disabled)
    def _disabled(self, by: str, at: datetime) -> None:
        self.enabled = False
        self.changed_at = at

    @event(Enabled)
    def _enabled(self, by: str, at: datetime) -> None:
        self.enabled = True
        self.changed_at = at

    @event(PasswordChanged)
    def _password_changed(self, password_hash: str, by: str, at: datetime) -> None:
        self.password_hash = password_hash
        self.changed_at = at


class ApiToken(Aggregate):
    """A program's credential: name, role, tenant binding, expiry and the secret's SHA-256."""

    class Created(Aggregate.Created):
        name: str
        role: str
        tenant: str | None
        expires_at: datetime | None
        secret_hash: str
        by: str
        at: datetime

    class Revoked(Aggregate.Event):
        by: str
        at: datetime

    @event(Created)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        name: str,
        role: str,
        tenant: str | None,
        expires_at: datetime | None,
        secret_hash: str,
        by: str,
        at: datetime,
    ) -> None:
        self.name = name
        self.role = Role(role)
        self.tenant = tenant
        self.expires_at = expires_at
        self.secret_hash = secret_hash
        self.created_by = by
        self.created_at = at
        self.revoked_at: datetime | None = None
        self.revoked_by: str | None = None

    @classmethod
    def issue(
        cls,
        *,
        id: UUID,  # noqa: A002 - the token's public id, generated by the caller
        name: str,
        role: Role,
        tenant: str | None,
        expires_at: datetime | None,
        secret_hash: str,
        by: str,
        at: datetime,
    ) -> tuple[ApiToken, TokenName]:
        """The token and the claim on its name, to be saved together."""
        normalised = validate_name(name, "token name")
        if not re.fullmatch(r"[0-9a-f]{64}", secret_hash):
            raise ValidationError("a token's secret hash is a SHA-256 hex digest")
        at = require_utc(at, "at")
        if expires_at is not None and require_utc(expires_at, "expires_at") <= at:
            raise ValidationError("a token must expire after it is created", field="expires_at")
        token = cls(
            id=id,
            name=normalised,
            role=Role(role).value,
            tenant=validate_tenant(tenant),
            expires_at=require_utc(expires_at, "expires_at") if expires_at else None,
            secret_hash=secret_hash,
            by=by,
            at=at,
        )
        return token, TokenName.claim(name=normalised, token_id=id, at=at)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self, *, by: str, at: datetime) -> None:
        if self.revoked:
            raise InvalidTransitionError(f"token {self.name!r} is already revoked")
        self._revoked(by=by, at=require_utc(at, "at"))

    @event(Revoked)
    def _revoked(self, by: str, at: datetime) -> None:
        self.revoked_at = at
        self.revoked_by = by


class TokenName(Aggregate):
    """The claim on a token name, so one name is one token, even after it is revoked."""

    class Claimed(Aggregate.Created):
        name: str
        token_id: UUID
        at: datetime

    @event(Claimed)
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        name: str,
        token_id: UUID,
        at: datetime,
    ) -> None:
        self.name = name
        self.token_id = token_id
        self.at = at

    @classmethod
    def claim(cls, *, name: str, token_id: UUID, at: datetime) -> TokenName:
        return cls(id=token_name_id(name), name=name, token_id=token_id, at=at)
