"""The `contacts` table the built-in contacts importer writes to (PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from application.importers import ValidRow
from domain.shared import DEFAULT_TENANT
from infrastructure.sql import Database

CONTACTS_DDL = (
    "CREATE TABLE IF NOT EXISTS contacts ("
    " tenant TEXT NOT NULL, email TEXT NOT NULL, name TEXT NOT NULL, age INTEGER,"
    " country TEXT, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,"
    " PRIMARY KEY (tenant, email))"
)


class SqlContactStore:
    """ContactStore on SQL: one chunk per transaction, keyed on (tenant, lower-cased email)."""

    def __init__(self, db: Database, *, tenant: str = DEFAULT_TENANT) -> None:
        self._db = db
        self._tenant = tenant

    def create(self) -> None:
        with self._db.transaction() as s:
            s.execute(CONTACTS_DDL)

    def upsert(
        self, rows: Sequence[ValidRow], update_existing: bool
    ) -> tuple[int, int, list[tuple[int, str]]]:
        """Insert new contacts, update (or reject) existing ones: (inserted, updated, rejected)."""
        if not rows:
            return 0, 0, []
        now = datetime.now(UTC)
        emails = [values["email"] for _, values in rows]
        marks = ", ".join("?" for _ in emails)
        with self._db.transaction() as s:
            existing = {
                row["email"]
                for row in s.fetchall(
                    f"SELECT email FROM contacts WHERE tenant = ? AND email IN ({marks})",  # noqa: S608 - placeholders only
                    [self._tenant, *emails],
                )
            }
            inserts: list[list[Any]] = []
            updates: list[list[Any]] = []
            rejected: list[tuple[int, str]] = []
            for number, values in rows:
                fields = [values["name"], values.get("age"), values.get("country")]
                if values["email"] not in existing:
                    inserts.append([self._tenant, values["email"], *fields, now, now])
                elif update_existing:
                    updates.append([*fields, now, self._tenant, values["email"]])
                else:
                    rejected.append((number, "email: a contact with this email already exists"))
            s.executemany(
                "INSERT INTO contacts (tenant, email, name, age, country, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            s.executemany(
                "UPDATE contacts SET name = ?, age = ?, country = ?, updated_at = ?"
                " WHERE tenant = ? AND email = ?",
                updates,
            )
        return len(inserts), len(updates), rejected

    def count(self) -> int:
        with self._db.read() as s:
            row = s.fetchone("SELECT COUNT(*) AS n FROM contacts WHERE tenant = ?", (self._tenant,))
        return int(row["n"]) if row else 0
