"""Worker heartbeats: one row per live worker process, naming the jobs it runs."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from application.ports import WorkerBeat
from infrastructure.sql import Database

WORKER_HEARTBEATS_DDL = (
    "CREATE TABLE IF NOT EXISTS worker_beats ("
    " worker_id TEXT PRIMARY KEY, last_seen TIMESTAMPTZ NOT NULL, running TEXT NOT NULL,"
    " pauses_seen BIGINT NOT NULL)"
)


class SqlWorkerHeartbeats:
    """WorkerHeartbeats in the read-model database: one row per live worker process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self) -> None:
        with self._db.transaction() as s:
            # The table before the beats named the running jobs.
            s.execute("DROP TABLE IF EXISTS worker_heartbeats")
            s.execute(WORKER_HEARTBEATS_DDL)

    def beat(
        self,
        worker_id: str,
        at: datetime,
        running: frozenset[UUID] = frozenset(),
        pauses_seen: int = 0,
    ) -> None:
        with self._db.transaction() as s:
            s.execute(
                "INSERT INTO worker_beats (worker_id, last_seen, running, pauses_seen)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE"
                " SET last_seen = excluded.last_seen, running = excluded.running,"
                " pauses_seen = excluded.pauses_seen",
                (
                    worker_id,
                    at,
                    json.dumps(sorted(str(job_id) for job_id in running)),
                    pauses_seen,
                ),
            )

    @staticmethod
    def _beat(row: dict[str, Any]) -> WorkerBeat:
        return WorkerBeat(
            worker_id=row["worker_id"],
            last_seen=row["last_seen"],
            running=frozenset(UUID(job_id) for job_id in json.loads(row["running"])),
            pauses_seen=int(row["pauses_seen"]),
        )

    def latest(self, worker_id: str) -> WorkerBeat | None:
        with self._db.read() as s:
            row = s.fetchone(
                "SELECT worker_id, last_seen, running, pauses_seen FROM worker_beats"
                " WHERE worker_id = ?",
                (worker_id,),
            )
        return self._beat(row) if row else None

    def live(self, since: datetime) -> builtins.list[WorkerBeat]:
        with self._db.read() as s:
            rows = s.fetchall(
                "SELECT worker_id, last_seen, running, pauses_seen FROM worker_beats"
                " WHERE last_seen >= ? ORDER BY worker_id",
                (since,),
            )
        return [self._beat(row) for row in rows]

    def forget(self, worker_id: str) -> None:
        with self._db.transaction() as s:
            s.execute("DELETE FROM worker_beats WHERE worker_id = ?", (worker_id,))
