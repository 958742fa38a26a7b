"""The eventsourcing recorders (Postgres in production, SQLite embedded) and the log reader."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import structlog
from eventsourcing.persistence import PersistenceError
from psycopg import sql

from application.event_log import ChronicleEvents, LoggedEvent
from application.ports import StoreUnavailableError

log = structlog.get_logger(__name__)


def postgres_env(url: str, schema: str, *, pool_size: int = 3) -> dict[str, str]:
    """eventsourcing settings for a `postgresql://user:pass@host:port/db` URL.

    The pool keeps one connection open and opens up to `pool_size` under load (the others
    close after ten idle minutes); tables are created by `create_event_tables`, under the
    set-up lock, not when the application is built.
    """
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
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(max(0, pool_size - 1)),
        # Also how long a caller waits for a free pooled connection.
        "POSTGRES_CONNECT_TIMEOUT": "5",
        # Long enough for a worker to hold a connection across a slow save under load.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "CREATE_TABLE": "false",
    }


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}/{parts.path.lstrip('/')}"


def _probe(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT 1")


def wait_for_postgres(
    url: str,
    *,
    timeout: float | None,
    probe: Callable[[], None] | None = None,
) -> None:
    """Return once PostgreSQL accepts a connection (and `probe`, e.g. opening the pools,
    succeeds); say so when it does not.

    Waits up to `timeout` seconds (None: until it answers, for long-running processes),
    then raises `StoreUnavailableError` naming the server and the error. Holds no lock
    while it waits.
    """
    started = time.monotonic()
    delay = 0.25
    last_said = None
    while True:
        try:
            (probe or partial(_probe, url))()
        except (psycopg.Error, StoreUnavailableError, PersistenceError) as exc:
            waited = time.monotonic() - started
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            if timeout is not None and waited >= timeout:
                raise StoreUnavailableError(
                    f"PostgreSQL at {_where(url)} cannot be reached: {reason}"
                ) from None
            if last_said is None or time.monotonic() - last_said >= 30:
                log.warning(
                    "waiting for PostgreSQL",
                    server=_where(url),
                    error=reason,
                    waited_s=round(waited),
                )
                last_said = time.monotonic()
            time.sleep(delay)
            delay = min(5.0, delay * 2)
            continue
        if last_said is not None:
            log.info("PostgreSQL reachable", server=_where(url))
        return


def open_event_store_pool(events: ChronicleEvents, *, timeout: float) -> None:
    """Open the event store's pool and wait for its first connection (raises PoolTimeout,
    an OperationalError, if none can be made in `timeout` seconds)."""
    datastore = getattr(events.recorder, "datastore", None)
    if datastore is not None:
        datastore.pool.open(wait=True, timeout=timeout)


def create_event_tables(events: ChronicleEvents) -> None:
    """Create the event store's tables if missing (run under `setup_lock`)."""
    create_table = getattr(events.recorder, "create_table", None)
    if create_table is not None:
        create_table()


# Any fixed number: the advisory lock that serialises table creation between processes.
_SETUP_LOCK = 0x6368726F6E


@contextlib.contextmanager
def setup_lock(url: str, schema: str) -> Iterator[None]:
    """Hold a Postgres advisory lock while tables are created.

    Processes started together (API, projector, workers) would otherwise race on
    `CREATE SCHEMA/TABLE IF NOT EXISTS`, which is not safe against itself in PostgreSQL;
    the schema is created first, under the lock. Take it only once every pool the set-up
    uses has its connection: a process must never wait for a connection while holding it.
    """
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
        try:
            # eventsourcing creates tables, not schemas.
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))


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
        self._listener_lock = threading.Lock()
        if listen_url and channel:
            # Started by the first `wait`: a process that never follows the log (API, worker)
            # holds no listening connection.
            self._listener = threading.Thread(
                target=self._listen,
                args=(listen_url, channel),
                name="chronicle-log-listener",
                daemon=True,
            )

    def _wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _listen(self, url: str, channel: str) -> None:
        lost = False  # said once per outage, not once per attempt
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    if lost:
                        log.info("event log listener reconnected")
                        lost = False
                    self._wake()  # events may have been saved while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except psycopg.Error as exc:
                if not lost:
                    log.warning("event log listener lost its connection", error=str(exc))
                    lost = True
                # Followers poll meanwhile (see `wait`); wake them to look now and then.
                self._wake()
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

    def _listening(self) -> None:
        listener = self._listener
        if listener is not None and not listener.is_alive() and not self._stop.is_set():
            with self._listener_lock:
                if listener.ident is None:
                    listener.start()

    def wait(self, after: int, timeout: float) -> None:
        self._listening()
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
        if self._listener is not None and self._listener.ident is not None:
            with contextlib.suppress(RuntimeError):
                self._listener.join(timeout=2)
