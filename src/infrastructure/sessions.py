"""Sessions and failed sign-in counts in the read-model database (SQLite or PostgreSQL).

Neither is event-sourced: a session is a short-lived credential, not a fact of the domain
(signing in is logged; the account it opens is in the event log), and the counts only brake
password guessing. Both are shared by every API process of one database.
"""

from __future__ import annotations

from datetime import datetime

from application.sessions import SessionRecord
from infrastructure.sql import Database

SESSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS sessions ("
    " key TEXT PRIMARY KEY, account TEXT NOT NULL, stamp TEXT NOT NULL,"
    " created_at TIMESTAMPTZ NOT NULL, last_seen TIMESTAMPTZ NOT NULL)"
)
SESSIONS_INDEX = "CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen)"
FAILURES_DDL = (
    "CREATE TABLE IF NOT EXISTS sign_in_failures ("
    " key TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_at TIMESTAMPTZ NOT NULL,"
    " locked_until TIMESTAMPTZ)"
)


class SqlSessions:
    """SessionStore: one row per live session, keyed by the SHA-256 of its id."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self) -> None:
        with self._db.transaction() as s:
            s.execute(SESSIONS_DDL)
            s.execute(SESSIONS_INDEX)
            s.execute(FAILURES_DDL)

    def add(self, record: SessionRecord) -> None:
        with self._db.transaction() as s:
            s.execute(
                "INSERT INTO sessions (key, account, stamp, created_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.key, record.account, record.stamp, record.created_at, record.last_seen),
            )

    def get(self, key: str) -> SessionRecord | None:
        with self._db.read() as s:
            row = s.fetchone(
                "SELECT key, account, stamp, created_at, last_seen FROM sessions WHERE key = ?",
                (key,),
            )
        return SessionRecord(**row) if row else None

    def touch(self, key: str, at: datetime) -> None:
        with self._db.transaction() as s:
            s.execute(
                "UPDATE sessions SET last_seen = ? WHERE key = ? AND last_seen < ?", (at, key, at)
            )

    def remove(self, key: str) -> None:
        with self._db.transaction() as s:
            s.execute("DELETE FROM sessions WHERE key = ?", (key,))

    def remove_ended(self, idle_since: datetime, started_before: datetime) -> int:
        with self._db.transaction() as s:
            row = s.fetchone(
                "SELECT COUNT(*) AS n FROM sessions WHERE last_seen < ? OR created_at < ?",
                (idle_since, started_before),
            )
            s.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created_at < ?",
                (idle_since, started_before),
            )
        return int(row["n"]) if row else 0


class SqlFailureCounts:
    """FailureCounts: one row per account name or address with recent failed sign-ins."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def locked_until(self, keys: list[str]) -> datetime | None:
        if not keys:
            return None
        marks = ", ".join("?" for _ in keys)
        with self._db.read() as s:
            row = s.fetchone(
                f"SELECT MAX(locked_until) AS until FROM sign_in_failures"  # noqa: S608 - placeholders only
                f" WHERE key IN ({marks})",
                keys,
            )
        until = row["until"] if row else None
        if isinstance(until, str):  # SQLite gives MAX() of timestamps back as text
            until = datetime.fromisoformat(until)
        return until

    def record(self, key: str, at: datetime, forget_before: datetime) -> int:
        with self._db.transaction() as s:
            s.execute(
                "INSERT INTO sign_in_failures (key, failures, last_at) VALUES (?, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                " failures = CASE WHEN sign_in_failures.last_at < ? THEN 1"
                " ELSE sign_in_failures.failures + 1 END,"
                " locked_until = CASE WHEN sign_in_failures.last_at < ? THEN NULL"
                " ELSE sign_in_failures.locked_until END,"
                " last_at = excluded.last_at",
                (key, at, forget_before, forget_before),
            )
            row = s.fetchone("SELECT failures FROM sign_in_failures WHERE key = ?", (key,))
        return int(row["failures"]) if row else 1

    def lock(self, key: str, until: datetime) -> None:
        with self._db.transaction() as s:
            s.execute("UPDATE sign_in_failures SET locked_until = ? WHERE key = ?", (until, key))

    def clear(self, key: str) -> None:
        with self._db.transaction() as s:
            s.execute("DELETE FROM sign_in_failures WHERE key = ?", (key,))
