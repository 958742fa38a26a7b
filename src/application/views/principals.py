"""The principals read model: accounts and API tokens as sign-in and `Bearer` lookups need them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from domain.principals import Account, ApiToken, Role


@dataclass(frozen=True)
class AccountRow:
    """An account as stored in the read model (its hash is for sign-in only: never shown)."""

    id: UUID
    name: str
    role: Role
    tenant: str | None
    enabled: bool
    password_hash: str
    created_at: datetime
    created_by: str
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True)
class TokenRow:
    """An API token as stored in the read model; `secret_hash` is the SHA-256 of its secret."""

    id: UUID
    name: str
    role: Role
    tenant: str | None
    expires_at: datetime | None
    secret_hash: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class PrincipalsWriter(Protocol):
    """What the principals projection needs from its store, inside one transaction."""

    def insert_account(self, row: AccountRow) -> None: ...
    def update_account(self, account_id: UUID, changes: dict[str, Any]) -> None: ...
    def insert_token(self, row: TokenRow) -> None: ...
    def revoke_token(self, token_id: UUID, by: str, at: datetime) -> None: ...


class PrincipalsProjection:
    """One row per account and per token; later events change their row."""

    name = "principals"
    topics = tuple(
        topic(cls)
        for cls in (
            Account.Created,
            Account.RoleChanged,
            Account.Disabled,
            Account.Enabled,
            Account.PasswordChanged,
            ApiToken.Created,
            ApiToken.Revoked,
        )
    )

    def process(self, events: Sequence[LoggedEvent], writer: PrincipalsWriter) -> None:
        for logged in events:
            e = logged.event
            if isinstance(e, Account.Created):
                writer.insert_account(
                    AccountRow(
                        id=e.originator_id,
                        name=e.name,
                        role=Role(e.role),
                        tenant=e.tenant,
                        enabled=True,
                        password_hash=e.password_hash,
                        created_at=e.at,
                        created_by=e.by,
                        changed_at=e.at,
                        changed_by=e.by,
                    )
                )
            elif isinstance(e, ApiToken.Created):
                writer.insert_token(
                    TokenRow(
                        id=e.originator_id,
                        name=e.name,
                        role=Role(e.role),
                        tenant=e.tenant,
                        expires_at=e.expires_at,
                        secret_hash=e.secret_hash,
                        created_at=e.at,
                        created_by=e.by,
                        revoked_at=None,
                        revoked_by=None,
                    )
                )
            elif isinstance(e, ApiToken.Revoked):
                writer.revoke_token(e.originator_id, e.by, e.at)
            else:
                changes = _account_changes(e)
                if changes is not None:
                    writer.update_account(
                        e.originator_id, {**changes, "changed_at": e.at, "changed_by": e.by}
                    )


def _account_changes(e: object) -> dict[str, Any] | None:
    if isinstance(e, Account.RoleChanged):
        return {"role": Role(e.role)}
    if isinstance(e, Account.Disabled):
        return {"enabled": False}
    if isinstance(e, Account.Enabled):
        return {"enabled": True}
    if isinstance(e, Account.PasswordChanged):
        return {"password_hash": e.password_hash}
    return None


class PrincipalsQueries(Protocol):
    """Read side of the principals read model."""

    def account(self, name: str) -> AccountRow | None:
        """The account named `name` (normalised), or None."""
        ...

    def accounts(self) -> list[AccountRow]:
        """Every account, by name."""
        ...

    def token(self, token_id: UUID) -> TokenRow | None:
        """The token of id `token_id`, revoked or not, or None."""
        ...

    def tokens(self) -> list[TokenRow]:
        """Every token, revoked ones included, by name."""
        ...
