"""Scheduler presence records on SQLite and PostgreSQL: a running scheduler keeps its own
up to date from its process start; old records are pruned; the process start is the OS's."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from infrastructure.scheduler_presence import SqlSchedulerPresence, process_started_at
from interfaces.bootstrap import Chronicle, bootstrap
from tests.conftest import wait_until
from tests.integration.conftest import make_settings
from tests.unit.fakes import FakeClock

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: A process that asks when it started two seconds after it did (and after importing).
ASKS_LATE = """
import time
time.sleep(2)
from infrastructure.scheduler_presence import process_started_at
print(process_started_at().isoformat())
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Chronicle]:
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    chronicle = bootstrap(make_settings(backend, tmp_path, schema), registry=registry, clock=clock)
    yield chronicle
    chronicle.close()


def test_presence_rows_are_recorded_refreshed_and_pruned(app: Chronicle):
    presence = SqlSchedulerPresence(app.db)
    run, old = uuid4(), uuid4()
    presence.beat(old, "old", T0 - timedelta(days=5), T0 - timedelta(days=4))
    presence.beat(run, "a", T0, T0)
    presence.beat(run, "a", T0, T0 + timedelta(seconds=1))  # a refresh moves only last_seen
    assert sorted(presence.spans(T0 - timedelta(days=10))) == [
        (T0 - timedelta(days=5), T0 - timedelta(days=4)),
        (T0, T0 + timedelta(seconds=1)),
    ]
    assert presence.spans(T0) == [(T0, T0 + timedelta(seconds=1))]
    presence.prune(T0 - timedelta(days=3))
    assert presence.runs() == [("a", T0, T0 + timedelta(seconds=1))]


def test_a_running_scheduler_records_its_presence_from_its_process_start(
    app: Chronicle, clock: FakeClock
):
    presence = SqlSchedulerPresence(app.db)
    presence.beat(uuid4(), "long gone", T0 - timedelta(days=9), T0 - timedelta(days=8))
    started = T0 - timedelta(seconds=7)  # the process started, then bootstrap took 7 s
    scheduler = app.scheduler("s", started_at=started)
    scheduler._presence_interval = 0.02
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: presence.runs() == [("s", started, T0)], 10, "the first beat")
        clock.current = T0 + timedelta(seconds=30)  # the loop may be stuck: the beat is not
        wait_until(lambda: presence.runs() == [("s", started, clock.current)], 10, "a refresh")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    # Stopped: its record stays, the time it covered is history (a tick due then was not
    # missed); the 8-day-old record was pruned.
    assert presence.runs() == [("s", started, T0 + timedelta(seconds=30))]


def test_the_process_start_is_the_time_the_os_started_it_not_the_time_it_is_asked():
    before = datetime.now(UTC)
    reported = subprocess.run(
        [
            sys.executable,
            "-c",
            ASKS_LATE,
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2] / "src",
    ).stdout
    started = datetime.fromisoformat(reported.strip())
    assert before - timedelta(seconds=0.1) <= started < before + timedelta(seconds=1.5)
    assert process_started_at() < before  # this test's own process started earlier
