"""Three `chronicle scheduler` processes on one every-second schedule, on PostgreSQL: each due
second is triggered exactly once, also after one scheduler is killed; an edit of the
frequency is picked up within a second."""

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
from interfaces.bootstrap import bootstrap
from tests.conftest import POSTGRES_URL, require_service

pytestmark = pytest.mark.integration


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
        for i in range(3):
            log = (tmp_path / f"scheduler-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "interfaces.cli", "scheduler"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(3)  # start-up: connect, load
        start = datetime.now(UTC)
        time.sleep(8)
        procs[0].send_signal(signal.SIGKILL)  # one dies without a word
        time.sleep(6)
        edited_at = datetime.now(UTC)
        app.schedules.edit(
            schedule_id,
            {"helpers": [{"name": "everyFiveSeconds", "args": []}]},
            tenant="default",
            by="test",
        )
        time.sleep(8)
        end = datetime.now(UTC)
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
            f" 0 duplicates, 0 missing"
        )
    finally:
        app.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
