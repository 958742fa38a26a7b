"""The `contacts` table the built-in contacts importer writes to (PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.importers import Rejections, ValidRow
from domain.shared import DEFAULT_TENANT
from infrastructure.sql import Database

#: `import_id`/`import_row` name the import row that last wrote a contact: a chunk run again
#: after a crash finds its own rows and counts them as written instead of as duplicates.
CONTACTS_DDL = (
    "CREATE TABLE IF NOT EXISTS contacts ("
    " tenant TEXT NOT NULL, email TEXT NOT NULL, name TEXT NOT NULL, age INTEGER,"
    " country TEXT, import_id TEXT, import_row INTEGER,"
    " created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,"
    " PRIMARY KEY (tenant, email))"
)
ALREADY_EXISTS = "a contact with this email already exists"


class SqlContactStore:
    """ContactStore on SQL: one chunk per transaction, keyed on (tenant, lower-cased email)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self) -> None:
        with self._db.transaction() as s:
            s.execute(CONTACTS_DDL)

    def upsert(
        self,
        rows: Sequence[ValidRow],
        *,
        update_existing: bool,
        import_id: UUID,
        tenant: str = DEFAULT_TENANT,
    ) -> Rejections:
        """Insert new contacts, update (or reject) existing ones; the rows refused and why."""
        if not rows:
            return {}
        now = datetime.now(UTC)
        source = str(import_id)
        emails = [values["email"] for _, values in rows]
        marks = ", ".join("?" for _ in emails)
        inserts: list[list[Any]] = []
        updates: list[list[Any]] = []
        rejected: Rejections = {}
        with self._db.transaction() as s:
            existing = {
                row["email"]: (row["import_id"], row["import_row"])
                for row in s.fetchall(
                    "SELECT email, import_id, import_row FROM contacts"  # noqa: S608 - placeholders only
                    f" WHERE tenant = ? AND email IN ({marks})",
                    [tenant, *emails],
                )
            }
            for number, values in rows:
                email = values["email"]
                fields = [values["name"], values.get("age"), values.get("country")]
                writer = existing.get(email)
                if writer is None:
                    inserts.append([tenant, email, *fields, source, number, now, now])
                    existing[email] = (source, number)
                elif writer == (source, number):
                    continue  # written by this very row before a crash
                elif update_existing:
                    updates.append([*fields, source, number, now, tenant, email])
                else:
                    rejected[number] = {"email": ALREADY_EXISTS}
            s.executemany(
                "INSERT INTO contacts (tenant, email, name, age, country, import_id, import_row,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            s.executemany(
                "UPDATE contacts SET name = ?, age = ?, country = ?, import_id = ?,"
                " import_row = ?, updated_at = ? WHERE tenant = ? AND email = ?",
                updates,
            )
        return rejected

    def count(self, tenant: str = DEFAULT_TENANT) -> int:
        with self._db.read() as s:
            row = s.fetchone("SELECT COUNT(*) AS n FROM contacts WHERE tenant = ?", (tenant,))
        return int(row["n"]) if row else 0
