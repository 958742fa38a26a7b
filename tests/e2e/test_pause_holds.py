"""A queue pause that was answered holds at once: no job of that queue starts after it.

Seen before: `POST /api/queues/low/pause`, then at once `POST /api/jobs` to `low`, and the
job ran within 4 s on the embedded store. Tried on `chronicle up` and on the production
processes (two worker processes), each queue in turn.

That the job does not start is shown by a witness job that a worker can start only after
passing over the held one: a job in a lower queue (strict priority), or for `low`, which
has none, another tenant's job queued behind it in `low` (taken after it, in order).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Processes, Up, wait_ready

pytestmark = pytest.mark.e2e

#: Where the witness of each paused queue goes, and for which tenant.
WITNESS = {"high": ("default", "default"), "default": ("low", "default"), "low": ("low", "other")}


@pytest.fixture
def up(tmp_path: Path) -> Iterator[httpx.Client]:
    """`chronicle up`, and a client with an admin token made while it runs."""
    running = Up(tmp_path)
    try:
        wait_ready(running.base_url)
        with running.client() as client:
            yield client
    finally:
        running.stop()


def job(api: httpx.Client, job_id: str, tenant: str = "default") -> dict[str, Any]:
    response = api.get(f"/api/jobs/{job_id}", headers={"X-Chronicle-Tenant": tenant})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def started(api: httpx.Client, job_id: str, tenant: str = "default") -> bool:
    body = job(api, job_id, tenant)
    return any(entry["event"] == "started" for entry in body["timeline"]) or body["status"] in {
        "running",
        "succeeded",
        "failed",
    }


def dispatch(api: httpx.Client, queue: str, tenant: str = "default") -> str:
    response = api.post(
        "/api/jobs",
        json={"command_line": "demo:noop", "queue": queue},
        headers={"X-Chronicle-Tenant": tenant},
    )
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def check_pause_holds(api: httpx.Client) -> None:
    for queue in ("low", "default", "high"):
        paused = api.post(f"/api/queues/{queue}/pause", json={}, timeout=30)
        assert paused.status_code == 200, paused.text
        job_id = dispatch(api, queue)
        witness_queue, tenant = WITNESS[queue]
        witness = dispatch(api, witness_queue, tenant)
        wait_until(
            lambda witness=witness, tenant=tenant: (
                job(api, witness, tenant)["status"] == "succeeded"
            ),
            30,
            f"the witness job in {witness_queue}",
        )
        assert not started(api, job_id), f"a job of paused queue {queue} started"
        assert paused.json()["held"] is True
        resumed = api.post(f"/api/queues/{queue}/resume")
        assert resumed.status_code == 200, resumed.text
        wait_until(lambda job_id=job_id: started(api, job_id), 30, "the job after resume")


def test_a_pause_holds_once_answered_on_the_embedded_store(up: httpx.Client) -> None:
    check_pause_holds(up)


def test_a_pause_holds_once_answered_in_production(
    production: tuple[str, Processes], api: httpx.Client
) -> None:
    check_pause_holds(api)
