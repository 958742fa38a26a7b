"""Scheduler presence in the read-model database, and when this process started.

Not a read model: the rows are written by the scheduler processes themselves (nothing in the
event log to rebuild them from), one per scheduler run, and pruned after a few days.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from infrastructure.sql import Database

#: When this module was imported: the start of the process where the OS cannot tell.
_IMPORTED_AT = datetime.now(UTC)

SCHEDULER_PRESENCE_DDL = (
    "CREATE TABLE IF NOT EXISTS scheduler_presence ("
    " run_id TEXT PRIMARY KEY, name TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL,"
    " last_seen TIMESTAMPTZ NOT NULL)"
)
SCHEDULER_PRESENCE_INDEX = (
    "CREATE INDEX IF NOT EXISTS scheduler_presence_last_seen ON scheduler_presence (last_seen)"
)


class SqlSchedulerPresence:
    """SchedulerPresence in the read-model database (PostgreSQL or SQLite)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self) -> None:
        with self._db.transaction() as s:
            s.execute(SCHEDULER_PRESENCE_DDL)
            s.execute(SCHEDULER_PRESENCE_INDEX)

    def beat(self, run_id: UUID, name: str, started_at: datetime, seen_at: datetime) -> None:
        with self._db.transaction() as s:
            s.execute(
                "INSERT INTO scheduler_presence (run_id, name, started_at, last_seen)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE"
                " SET last_seen = excluded.last_seen",
                (str(run_id), name, started_at, seen_at),
            )

    def spans(self, since: datetime) -> list[tuple[datetime, datetime]]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT started_at, last_seen FROM scheduler_presence WHERE last_seen >= ?",
                (since,),
            )
        return [(row["started_at"], row["last_seen"]) for row in rows]

    def runs(self) -> list[tuple[str, datetime, datetime]]:
        """(name, started at, last seen) of every recorded run, latest first."""
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT name, started_at, last_seen FROM scheduler_presence ORDER BY last_seen DESC"
            )
        return [(row["name"], row["started_at"], row["last_seen"]) for row in rows]

    def prune(self, before: datetime) -> None:
        with self._db.transaction() as s:
            s.execute("DELETE FROM scheduler_presence WHERE last_seen < ?", (before,))


def process_started_at() -> datetime:
    """When this process started, as the OS tells it (Linux), so that the seconds spent
    importing and connecting count as time a scheduler was running; elsewhere, when this
    module was imported (early: the process entry points import it)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:  # noqa: PTH123 - a /proc file
            raw = stat.read()
        # Field 22, start time in clock ticks since boot; fields resume after the ")" that
        # closes the command name (which may hold spaces).
        ticks = int(raw[raw.rindex(")") + 2 :].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT
    if not 0 <= age < 365 * 86400:
        return _IMPORTED_AT
    return datetime.now(UTC) - timedelta(seconds=age)
