"""Three `chronicle scheduler` processes on one every-second schedule, on PostgreSQL: each due
second is triggered exactly once, also after one scheduler is killed; an edit of the
frequency is picked up within a second.

No fixed sleeps: the test waits for what it needs (each scheduler saying it has loaded, the
ticks of the seconds it watches), each with a deadline, so a slow machine makes it slower,
not red.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from application.schedules import ScheduleRequest
from domain.schedule import SkippedTick, TriggeredTick
from infrastructure.settings import load_settings
from interfaces.bootstrap import Chronicle, bootstrap
from tests.conftest import POSTGRES_URL, require_service, wait_until

pytestmark = pytest.mark.integration

#: Deadlines, generous: start-up took 7 s on a loaded CI machine.
START_UP_SECONDS = 120.0
TICKS_SECONDS = 60.0


def all_loaded(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> bool:
    """Whether every scheduler has logged `scheduler loaded`; raises if one has exited."""
    for proc, log in zip(procs, logs, strict=True):
        if proc.poll() is not None:
            raise AssertionError(f"{log.name}: exited with {proc.returncode}")
    return all('"event": "scheduler loaded"' in log.read_text(errors="replace") for log in logs)


def triggered_dues(app: Chronicle) -> set[datetime]:
    return {
        e.event.due_at
        for e in app.log.read(0, limit=1_000_000)
        if isinstance(e.event, TriggeredTick.Triggered)
    }


def wait_for_tick(app: Chronicle, after: datetime, seconds: int) -> None:
    """Wait until the tick of the whole second `seconds` after `after` has been triggered."""
    due = after.replace(microsecond=0) + timedelta(seconds=seconds)
    wait_until(lambda: due in triggered_dues(app), TICKS_SECONDS, f"the tick of {due}")


def start_schedulers(
    env: dict[str, str], logs: list[Path], procs: list[subprocess.Popen[bytes]]
) -> float:
    """Start one scheduler per log (into `procs`); return how long until all had loaded."""
    spawned = time.monotonic()
    for log in logs:
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "interfaces.cli", "scheduler"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    wait_until(lambda: all_loaded(procs, logs), START_UP_SECONDS, f"{len(logs)} schedulers loaded")
    return time.monotonic() - spawned


def test_three_schedulers_trigger_each_second_exactly_once(tmp_path: Path) -> None:
    require_service("PostgreSQL", POSTGRES_URL)
    schema = f"sched_{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "CHRONICLE_DATABASE_URL": POSTGRES_URL,
        "CHRONICLE_DATABASE_SCHEMA": schema,
        "CHRONICLE_LOG_FORMAT": "json",
    }
    app = bootstrap(load_settings(env))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        schedule_id = app.schedules.create(
            ScheduleRequest(
                name="every second",
                command_line="demo:noop",
                helpers=[{"name": "everySecond", "args": []}],
            )
        )
        logs = [tmp_path / f"scheduler-{i}.log" for i in range(3)]
        loaded_after = start_schedulers(env, logs, procs)
        start = datetime.now(UTC)
        wait_for_tick(app, start, 8)  # eight seconds of three schedulers racing for each tick
        procs[0].send_signal(signal.SIGKILL)  # one dies without a word
        wait_for_tick(app, datetime.now(UTC), 6)  # six more seconds with the two others
        edited_at = datetime.now(UTC)
        app.schedules.edit(
            schedule_id,
            {"helpers": [{"name": "everyFiveSeconds", "args": []}]},
            tenant="default",
            by="test",
        )
        # Two ticks of the new frequency (it takes a second at most to be seen).
        wait_until(
            lambda: (
                len([d for d in triggered_dues(app) if d > edited_at + timedelta(seconds=1)]) >= 2
            ),
            TICKS_SECONDS,
            "two ticks after the edit",
        )
        end = datetime.now(UTC)
    except BaseException:
        for log in tmp_path.glob("scheduler-*.log"):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(20)
    try:
        events = [e.event for e in app.log.read(0, limit=1_000_000)]
        triggered = [e for e in events if isinstance(e, TriggeredTick.Triggered)]
        skipped = [e for e in events if isinstance(e, SkippedTick.Skipped)]
        per_due = Counter(e.due_at for e in triggered)
        assert max(per_due.values()) == 1, "a due time was triggered twice"
        assert not skipped, f"ticks were skipped: {[(s.due_at, s.reason) for s in skipped]}"
        # Every second between start and the edit has its one job, none missing — also the
        # second just before the edit, when a late scheduler sees the edit before its tick.
        first = start.replace(microsecond=0) + timedelta(seconds=1)
        seconds = [
            first + timedelta(seconds=i) for i in range(int((edited_at - first).total_seconds()))
        ]
        missing = [s for s in seconds if s not in per_due]
        assert not missing, f"seconds never triggered: {missing}"
        # After the edit (+1 s to see it), only multiples of five seconds run.
        after_edit = [d for d in per_due if d > edited_at + timedelta(seconds=1)]
        assert after_edit, "nothing ran after the edit"
        assert all(d.second % 5 == 0 for d in after_edit), after_edit
        assert all(d <= end for d in per_due)
        jobs = {e.job_id for e in triggered}
        assert len(jobs) == len(triggered)
        print(
            f"\n{len(triggered)} ticks triggered by 3 schedulers (one killed),"
            f" 0 duplicates, 0 missing; all loaded {loaded_after:.1f} s after they were spawned,"
            f" latest tick triggered {max(e.at - e.due_at for e in triggered).total_seconds():.1f}"
            " s late"
        )
    finally:
        app.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
