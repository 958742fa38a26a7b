"""A queue pause that was answered holds at once: no job of that queue starts after it.

Seen before: `POST /api/queues/low/pause`, then at once `POST /api/jobs` to `low`, and the
job ran within 4 s on the embedded store. Tried on `chronicle up` and on the production
processes (two worker processes), each queue in turn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Processes, Up, wait_ready, wait_until

pytestmark = pytest.mark.e2e

#: How long a job of a paused queue is watched not to start.
WATCH_SECONDS = 3.0


@pytest.fixture
def up(tmp_path: Path) -> Iterator[str]:
    running = Up(tmp_path)
    try:
        wait_ready(running.base_url)
        yield running.base_url
    finally:
        running.stop()


def started(base_url: str, job_id: str) -> bool:
    body = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json()
    return any(entry["event"] == "started" for entry in body["timeline"]) or body["status"] in {
        "running",
        "succeeded",
        "failed",
    }


def check_pause_holds(base_url: str) -> None:
    for queue in ("low", "default", "high"):
        paused = httpx.post(f"{base_url}/api/queues/{queue}/pause", json={}, timeout=30)
        assert paused.status_code == 200, paused.text
        response = httpx.post(
            f"{base_url}/api/jobs", json={"command_line": "demo:noop", "queue": queue}, timeout=5
        )
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < deadline:
            assert not started(base_url, job_id), f"a job of paused queue {queue} started"
            time.sleep(0.1)
        assert paused.json()["held"] is True
        resumed = httpx.post(f"{base_url}/api/queues/{queue}/resume", timeout=5)
        assert resumed.status_code == 200, resumed.text
        wait_until(lambda job_id=job_id: started(base_url, job_id), 30, "the job after resume")


def test_a_pause_holds_once_answered_on_the_embedded_store(up: str) -> None:
    check_pause_holds(up)


def test_a_pause_holds_once_answered_in_production(production: tuple[str, Processes]) -> None:
    base_url, _ = production
    check_pause_holds(base_url)
