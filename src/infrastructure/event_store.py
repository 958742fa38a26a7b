"""The eventsourcing recorders (Postgres in production, SQLite embedded) and the log reader."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import structlog
from psycopg import sql

from application.event_log import ChronicleEvents, LoggedEvent

log = structlog.get_logger(__name__)


def postgres_env(url: str, schema: str) -> dict[str, str]:
    """eventsourcing settings for a `postgresql://user:pass@host:port/db` URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "10",
        "POSTGRES_MAX_OVERFLOW": "20",
        "POSTGRES_CONNECT_TIMEOUT": "5",
        # Long enough for a worker to hold a connection across a slow save under load.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "CREATE_TABLE": "true",
    }


# Any fixed number: the advisory lock that serialises table creation between processes.
_SETUP_LOCK = 0x6368726F6E


@contextlib.contextmanager
def setup_lock(url: str) -> Iterator[None]:
    """Hold a Postgres advisory lock while tables are created.

    Processes started together (API, projector, workers) would otherwise race on
    `CREATE TABLE IF NOT EXISTS`, which is not safe against itself in PostgreSQL.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))


def ensure_schema(url: str, schema: str) -> None:
    """Create the schema if it does not exist (eventsourcing creates tables, not schemas)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def sqlite_env(path: Path) -> dict[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "CREATE_TABLE": "true",
    }


class StoreEventLog:
    """Reads the application log; `wait` wakes on saves in this process and, on Postgres,
    on LISTEN/NOTIFY from other processes (no busy polling). SQLite has no notifications:
    in the embedded mode every writer is in this process, and a slow poll covers the rest."""

    def __init__(
        self,
        events: ChronicleEvents,
        *,
        listen_url: str | None = None,
        channel: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._events = events
        self._cond = threading.Condition()
        self._generation = 0
        self._poll_interval = poll_interval
        events.on_save(self._wake)
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        if listen_url and channel:
            self._listener = threading.Thread(
                target=self._listen,
                args=(listen_url, channel),
                name="chronicle-log-listener",
                daemon=True,
            )
            self._listener.start()

    def _wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _listen(self, url: str, channel: str) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._wake()  # events may have been saved while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except psycopg.Error as exc:
                log.warning("event log listener lost its connection", error=str(exc))
                self._stop.wait(1.0)

    def head(self) -> int:
        return self._events.recorder.max_notification_id() or 0

    def read(
        self, after: int, *, limit: int, upto: int | None = None, topics: Sequence[str] = ()
    ) -> list[LoggedEvent]:
        notifications = self._events.recorder.select_notifications(
            start=after, limit=limit, stop=upto, topics=topics, inclusive_of_start=False
        )
        to_event = self._events.mapper.to_domain_event
        return [LoggedEvent(n.id, to_event(n)) for n in notifications]

    def wait(self, after: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            generation = self._generation
        # A save or NOTIFY that came before we took the generation would otherwise be missed.
        if self.head() > after:
            return
        with self._cond:
            while self._generation == generation:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                # Without a listener (SQLite) look at the log now and then for other writers.
                step = remaining if self._listener else min(remaining, self._poll_interval)
                self._cond.wait(step)
                if self._listener is None and self.head() > after:
                    return

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(RuntimeError):
                self._listener.join(timeout=2)
