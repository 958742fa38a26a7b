"""SQL tables, writer and queries of the queue pauses read model."""

from __future__ import annotations

from collections.abc import Callable, Collection
from uuid import UUID

from application.views.queue_pauses import QueuePause
from domain.job import JobStatus
from infrastructure.read_models.jobs import SqlJobsQueries
from infrastructure.read_models.store import SqlProjectionStore, Table
from infrastructure.sql import Database, Session

#: How the maintenance pause (queue None) is stored: a key column cannot be NULL.
ALL_QUEUES = "*"

QUEUE_CONTROLS = Table(
    "queue_controls",
    "id TEXT PRIMARY KEY, tenant TEXT NOT NULL",
)
QUEUE_PAUSES = Table(
    "queue_pauses",
    """tenant TEXT NOT NULL, queue TEXT NOT NULL, paused_by TEXT NOT NULL, reason TEXT NOT NULL,
    paused_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (tenant, queue)""",
)


def _key(queue: str | None) -> str:
    return ALL_QUEUES if queue is None else queue


class SqlQueuePausesWriter:
    """QueuePausesWriter on SQL tables."""

    def __init__(self, session: Session, table: Callable[[str], str]) -> None:
        self._s = session
        self._controls = table("queue_controls")
        self._pauses = table("queue_pauses")

    def tenants(self, control_ids: Collection[UUID]) -> dict[UUID, str]:
        if not control_ids:
            return {}
        ids = [str(i) for i in control_ids]
        # One control per tenant: this is a handful of ids, never a long list.
        rows = self._s.fetchall(
            f"SELECT id, tenant FROM {self._controls} WHERE id IN ({', '.join('?' for _ in ids)})",
            ids,
        )
        return {UUID(row["id"]): row["tenant"] for row in rows}

    def insert_control(self, control_id: UUID, tenant: str) -> None:
        self._s.execute(
            f"INSERT INTO {self._controls} (id, tenant) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            (str(control_id), tenant),
        )

    def set_pause(self, pause: QueuePause) -> None:
        self._s.execute(
            f"INSERT INTO {self._pauses} (tenant, queue, paused_by, reason, paused_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, queue) DO UPDATE SET"
            " paused_by = excluded.paused_by, reason = excluded.reason,"
            " paused_at = excluded.paused_at",
            (pause.tenant, _key(pause.queue), pause.by, pause.reason, pause.at),
        )

    def clear_pause(self, tenant: str, queue: str | None) -> None:
        self._s.execute(
            f"DELETE FROM {self._pauses} WHERE tenant = ? AND queue = ?", (tenant, _key(queue))
        )


def queue_pauses_store(db: Database) -> SqlProjectionStore[SqlQueuePausesWriter]:
    return SqlProjectionStore(
        db, "queue_pauses", [QUEUE_CONTROLS, QUEUE_PAUSES], SqlQueuePausesWriter
    )


class SqlQueuePauses:
    """QueuePausesQueries over the SQL read models."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def pauses(self, tenant: str | None = None) -> list[QueuePause]:
        sql = "SELECT tenant, queue, paused_by, reason, paused_at FROM queue_pauses"
        params: tuple[str, ...] = ()
        if tenant is not None:
            sql += " WHERE tenant = ?"
            params = (tenant,)
        with self._db.read() as s:
            rows = s.fetchall(sql + " ORDER BY tenant, queue", params)
        return [
            QueuePause(
                tenant=row["tenant"],
                queue=None if row["queue"] == ALL_QUEUES else row["queue"],
                by=row["paused_by"],
                reason=row["reason"],
                at=row["paused_at"],
            )
            for row in rows
        ]

    def position(self) -> int:
        return queue_pauses_store(self._db).position()

    def waiting(self) -> set[tuple[str, str]]:
        # The jobs read model's per-(tenant, queue, status) counters: one row per pair.
        return SqlJobsQueries(self._db).tenant_queues(JobStatus.WAITING)
