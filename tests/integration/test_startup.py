"""Start-up on PostgreSQL: waiting for the database says so and stalls nobody else."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import structlog

from application.ports import StoreUnavailableError
from infrastructure.event_store import _SETUP_LOCK
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, bootstrap
from tests.conftest import POSTGRES_URL, ScratchDatabase, scratch_database

pytestmark = pytest.mark.integration


@pytest.fixture
def refusing_database() -> Iterator[ScratchDatabase]:
    """A database that refuses connections until the test lets them in."""
    with scratch_database("chronicle_start", allow_connections=False) as database:
        yield database


def setup_lock_holders() -> int:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND ((classid::bigint << 32) | objid::bigint) = %s AND granted",
            (_SETUP_LOCK,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_an_unreachable_database_is_named_in_the_error() -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:1/nowhere cannot be reached"):
        bootstrap(settings, connect_timeout=1.0)
    assert time.monotonic() - started < 15


def test_start_up_waits_for_the_database_without_holding_the_setup_lock(
    refusing_database: ScratchDatabase,
) -> None:
    settings = Settings(database_url=refusing_database.url)
    opened: list[Chronicle] = []
    failed: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(bootstrap(settings, connect_timeout=None))
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            failed.append(exc)

    with structlog.testing.capture_logs() as logs:
        thread = threading.Thread(target=start)
        thread.start()
        deadline = time.monotonic() + 20
        while not any(e["event"] == "waiting for PostgreSQL" for e in logs):
            assert time.monotonic() < deadline, "start-up never said it was waiting"
            time.sleep(0.05)
        # While it waits, another process's set-up is not stalled by it.
        assert setup_lock_holders() == 0
        refusing_database.allow_connections()
        thread.join(60)
    assert not failed, failed
    assert opened, "start-up did not finish once the database accepted connections"
    try:
        assert opened[0].log.head() == 0
    finally:
        opened[0].close()
