"""`chronicle worker --processes N` keeps N worker processes: a killed one is replaced."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Processes
from tests.e2e.test_production import dispatch, wait_status

pytestmark = pytest.mark.e2e


def worker_children(parent: int) -> list[int]:
    """The worker processes a `chronicle worker` parent started (not its resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        pid
        for pid in map(int, children)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def log_events(procs: Processes, name: str) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in procs.logs.glob(f"{name}-*.log")
        for line in path.read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]


def test_a_killed_worker_process_is_replaced_and_logged(
    production: tuple[str, Processes], api: httpx.Client
) -> None:
    base_url, procs = production
    parent = next(proc for name, proc in procs.running if name == "worker")
    wait_until(lambda: len(worker_children(parent.pid)) == 2, 30, "two worker processes")
    victim = worker_children(parent.pid)[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        children = worker_children(parent.pid)
        return len(children) == 2 and victim not in children

    wait_until(replaced, 30, "the killed worker process to be replaced")
    events = log_events(procs, "worker")
    exited = [e for e in events if e["event"] == "worker process exited, replacing it"]
    assert exited, "the exit was not logged"
    assert exited[0]["pid"] == victim
    assert exited[0]["reason"] == "killed by SIGKILL"
    assert any(e["event"] == "worker process replaced" for e in events)
    # And the replacement works.
    job_id = dispatch(api, command_line="demo:echo again")
    assert wait_status(api, job_id, "succeeded")["output"] == "again\n"
    assert httpx.get(f"{base_url}/health", timeout=5).status_code == 200


def test_the_job_of_a_killed_worker_runs_again_without_using_up_an_attempt(
    production: tuple[str, Processes], api: httpx.Client
) -> None:
    """kill -9 of the worker running a job: once the worker is known lost (its heartbeat is
    silent for CHRONICLE_WORKER_LOST_AFTER_SECONDS, 30 s), the job runs again; the lost
    attempt is not counted, so a job of one attempt still gets its run."""
    job_id = dispatch(api, command_line="demo:sleep --seconds=3", max_attempts=1)
    running = wait_status(api, job_id, "running")
    pid = int(str(running["worker_id"]).rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    done = wait_status(api, job_id, "succeeded", timeout=120)
    recovered = time.monotonic() - killed
    print(f"\nthe killed worker's job succeeded {recovered:.1f} s after the kill")
    events = [entry["event"] for entry in done["timeline"]]
    assert events == [
        "dispatched",
        "started",
        "attempt_failed",
        "attempt_not_counted",
        "retry_scheduled",
        "started",
        "succeeded",
    ], events
    assert done["last_error_type"] == "WorkerLost"
