"""The `contacts` table the built-in contacts importer writes to (PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.imports.importers import Rejections, ValidRow
from domain.shared import DEFAULT_TENANT
from infrastructure.sql import Database, Session

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
_INSERT_COLUMNS = (
    "tenant",
    "email",
    "name",
    "age",
    "country",
    "import_id",
    "import_row",
    "created_at",
    "updated_at",
)


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
        inserts: list[list[Any]] = []
        updates: list[list[Any]] = []
        rejected: Rejections = {}
        with self._db.transaction() as s:
            existing = self._existing(s, tenant, emails)
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
            s.insert_rows("contacts", _INSERT_COLUMNS, inserts)
            if self._db.dialect == "postgres":
                _update_postgres(s, updates)
            else:
                s.executemany(
                    "UPDATE contacts SET name = ?, age = ?, country = ?, import_id = ?,"
                    " import_row = ?, updated_at = ? WHERE tenant = ? AND email = ?",
                    updates,
                )
        return rejected

    def _existing(
        self, s: Session, tenant: str, emails: list[str]
    ) -> dict[str, tuple[str | None, int | None]]:
        if self._db.dialect == "postgres":
            # One text parameter split by the server: the plan does not change with the
            # chunk's size, and no array is built value by value on this side. A valid email
            # holds no control character, so U+001F cannot be part of one.
            rows = s.fetchall(
                "SELECT email, import_id, import_row FROM contacts"
                " WHERE tenant = ? AND email = ANY(string_to_array(?, chr(31)))",
                [tenant, "\x1f".join(emails)],
            )
        else:
            marks = ", ".join("?" for _ in emails)
            rows = s.fetchall(
                "SELECT email, import_id, import_row FROM contacts"  # noqa: S608 - placeholders only
                f" WHERE tenant = ? AND email IN ({marks})",
                [tenant, *emails],
            )
        return {row["email"]: (row["import_id"], row["import_row"]) for row in rows}

    def count(self, tenant: str = DEFAULT_TENANT) -> int:
        with self._db.read() as s:
            row = s.fetchone("SELECT COUNT(*) AS n FROM contacts WHERE tenant = ?", (tenant,))
        return int(row["n"]) if row else 0


def _columns(rows: list[list[Any]], count: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(count)]


def _update_postgres(s: Session, updates: list[list[Any]]) -> None:
    """A chunk's updates as one statement, the values passed as arrays."""
    if not updates:
        return
    names, ages, countries, sources, numbers, stamps, tenants, emails = _columns(updates, 8)
    s.execute(
        "UPDATE contacts SET name = t.name, age = t.age, country = t.country,"
        " import_id = t.source, import_row = t.number, updated_at = ?"
        " FROM unnest(?::text[], ?::int[], ?::text[], ?::text[], ?::int[], ?::text[])"
        " AS t(name, age, country, source, number, email)"
        " WHERE contacts.tenant = ? AND contacts.email = t.email",
        [stamps[0], names, ages, countries, sources, numbers, emails, tenants[0]],
    )
