"""Chronicle as deployed: API, projector and workers as separate processes on PostgreSQL and
RabbitMQ, driven only over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Processes

pytestmark = pytest.mark.e2e


def job(base_url: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def dispatch(base_url: str, **body: Any) -> str:
    response = httpx.post(f"{base_url}/api/jobs", json=body, timeout=5)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait_status(base_url: str, job_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    wait_until(lambda: job(base_url, job_id).get("status") == status, timeout, f"job {status}")
    return job(base_url, job_id)


def test_jobs_run_retry_time_out_and_cancel_across_processes(
    production: tuple[str, Processes],
) -> None:
    base_url, _ = production
    echo = dispatch(base_url, command_line="demo:echo 'hello world' --upper", queue="high")
    flaky = dispatch(
        base_url, command="demo:fail", options={"times": 1}, max_attempts=3, backoff_seconds=0
    )
    slow = dispatch(
        base_url, command_line="demo:sleep --seconds=30", timeout_seconds=0.5, max_attempts=1
    )
    later = dispatch(base_url, command_line="demo:noop", delay_seconds=300)

    done = wait_status(base_url, echo, "succeeded")
    assert done["output"] == "HELLO WORLD\n"
    assert [e["event"] for e in done["timeline"]] == ["dispatched", "started", "succeeded"]

    retried = wait_status(base_url, flaky, "succeeded")
    assert retried["attempts"] == 2
    assert retried["last_error_type"] == "RuntimeError"

    timed_out = wait_status(base_url, slow, "failed")
    assert timed_out["last_error_type"] == "JobTimedOutError"

    waiting = httpx.get(f"{base_url}/api/jobs/waiting", timeout=5).json()
    assert later in [item["id"] for item in waiting["delayed"]]
    response = httpx.post(f"{base_url}/api/jobs/{later}/cancel", json={}, timeout=5)
    assert response.status_code == 202, response.text
    wait_status(base_url, later, "cancelled")

    queues = httpx.get(f"{base_url}/api/queues", timeout=5).json()
    assert queues["queues"]["high"]["succeeded"] == 1
    assert queues["failed"] == 1


def test_cancel_a_running_job(production: tuple[str, Processes]) -> None:
    base_url, _ = production
    sleeper = dispatch(base_url, command_line="demo:sleep --seconds=60")
    wait_status(base_url, sleeper, "running")
    response = httpx.post(f"{base_url}/api/jobs/{sleeper}/cancel", json={}, timeout=5)
    assert response.status_code == 202, response.text
    cancelled = wait_status(base_url, sleeper, "cancelled", timeout=15)
    events = [e["event"] for e in cancelled["timeline"]]
    assert events[-2:] == ["cancellation_requested", "cancelled"]


def test_schedule_runs_every_second_and_its_history_shows_it(
    production: tuple[str, Processes],
) -> None:
    base_url, _ = production
    response = httpx.post(
        f"{base_url}/api/schedules",
        json={
            "name": "heartbeat",
            "command_line": "demo:echo beat",
            "helpers": [{"name": "everySecond", "args": []}],
            "timezone": "Europe/Rome",
        },
        timeout=5,
    )
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]

    def succeeded_runs() -> list[dict[str, Any]]:
        runs = httpx.get(f"{base_url}/api/schedules/{schedule_id}/runs", timeout=5).json()
        return [run for run in runs["items"] if run["status"] == "succeeded"]

    wait_until(lambda: len(succeeded_runs()) >= 3, 20, "three successful runs")
    run = succeeded_runs()[0]
    assert run["output"] == "beat\n"
    assert run["manual"] is False
    job_response = httpx.get(f"{base_url}/api/jobs/{run['job_id']}", timeout=5)
    assert job_response.json()["schedule_id"] == schedule_id

    response = httpx.post(f"{base_url}/api/schedules/{schedule_id}/pause", timeout=5)
    assert response.status_code == 200, response.text
    detail = httpx.get(f"{base_url}/api/schedules/{schedule_id}", timeout=5).json()
    assert detail["active"] is False
