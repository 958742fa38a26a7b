"""Shared fixtures: service URLs, and the rule that a missing service fails in CI."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "CHRONICLE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("CHRONICLE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("CHRONICLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip locally when a service is down; in CI (CI=true) fail instead."""
    if reachable(url):
        return
    message = f"{name} is not reachable at {urlsplit(url).netloc}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class ScratchDatabase:
    """A PostgreSQL database of a test's own, so its connections can be counted, refused or
    cut without touching any other test's."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{self.name}"))

    def _admin(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            cursor = conn.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def refuse_connections(self) -> None:
        self._admin(f"ALTER DATABASE {self.name} ALLOW_CONNECTIONS false")

    def allow_connections(self) -> None:
        self._admin(f"ALTER DATABASE {self.name} ALLOW_CONNECTIONS true")

    def cut_connections(self) -> int:
        """Terminate every connection to the database; returns how many there were."""
        return len(
            self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
        )

    def connections(self) -> int:
        rows = self._admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.name,))
        return int(str(rows[0][0]))


@contextmanager
def scratch_database(prefix: str, *, allow_connections: bool = True) -> Iterator[ScratchDatabase]:
    """Create a database for one test (connections refused if asked), drop it afterwards."""
    require_service("PostgreSQL", POSTGRES_URL)
    database = ScratchDatabase(prefix)
    database._admin(
        f"CREATE DATABASE {database.name}"
        + ("" if allow_connections else " ALLOW_CONNECTIONS false")
    )
    try:
        yield database
    finally:
        database._admin(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


def wait_until(
    check: Callable[[], bool],
    timeout: float = 20.0,
    what: str = "the condition",
    *,
    interval: float = 0.05,
) -> None:
    """Return as soon as `check()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
