"""Chronicle as deployed: API, projector and workers as separate processes on PostgreSQL and
RabbitMQ, driven only over HTTP with an API token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Processes

pytestmark = pytest.mark.e2e


def job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    response = api.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def dispatch(api: httpx.Client, **body: Any) -> str:
    response = api.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait_status(
    api: httpx.Client, job_id: str, status: str, timeout: float = 30.0
) -> dict[str, Any]:
    wait_until(lambda: job(api, job_id).get("status") == status, timeout, f"job {status}")
    return job(api, job_id)


def test_jobs_run_retry_time_out_and_cancel_across_processes(
    production: tuple[str, Processes], api: httpx.Client
) -> None:
    echo = dispatch(api, command_line="demo:echo 'hello world' --upper", queue="high")
    flaky = dispatch(
        api, command="demo:fail", options={"times": 1}, max_attempts=3, backoff_seconds=0
    )
    slow = dispatch(
        api, command_line="demo:sleep --seconds=30", timeout_seconds=0.5, max_attempts=1
    )
    later = dispatch(api, command_line="demo:noop", delay_seconds=300)

    done = wait_status(api, echo, "succeeded")
    assert done["output"] == "HELLO WORLD\n"
    assert [e["event"] for e in done["timeline"]] == ["dispatched", "started", "succeeded"]

    retried = wait_status(api, flaky, "succeeded")
    assert retried["attempts"] == 2
    assert retried["last_error_type"] == "RuntimeError"

    timed_out = wait_status(api, slow, "failed")
    assert timed_out["last_error_type"] == "JobTimedOutError"

    waiting = api.get("/api/jobs/waiting").json()
    assert later in [item["id"] for item in waiting["delayed"]]
    response = api.post(f"/api/jobs/{later}/cancel", json={})
    assert response.status_code == 202, response.text
    wait_status(api, later, "cancelled")

    queues = api.get("/api/queues").json()
    assert queues["queues"]["high"]["succeeded"] == 1
    assert queues["failed"] == 1


def test_cancel_a_running_job(production: tuple[str, Processes], api: httpx.Client) -> None:
    sleeper = dispatch(api, command_line="demo:sleep --seconds=60")
    wait_status(api, sleeper, "running")
    response = api.post(f"/api/jobs/{sleeper}/cancel", json={})
    assert response.status_code == 202, response.text
    cancelled = wait_status(api, sleeper, "cancelled", timeout=15)
    events = [e["event"] for e in cancelled["timeline"]]
    assert events[-2:] == ["cancellation_requested", "cancelled"]


def test_schedule_runs_every_second_and_its_history_shows_it(
    production: tuple[str, Processes], api: httpx.Client
) -> None:
    response = api.post(
        "/api/schedules",
        json={
            "name": "heartbeat",
            "command_line": "demo:echo beat",
            "helpers": [{"name": "everySecond", "args": []}],
            "timezone": "Europe/Rome",
        },
    )
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]

    def succeeded_runs() -> list[dict[str, Any]]:
        runs = api.get(f"/api/schedules/{schedule_id}/runs").json()
        return [run for run in runs["items"] if run["status"] == "succeeded"]

    wait_until(lambda: len(succeeded_runs()) >= 3, 20, "three successful runs")
    run = succeeded_runs()[0]
    assert run["output"] == "beat\n"
    assert run["manual"] is False
    job_response = api.get(f"/api/jobs/{run['job_id']}")
    assert job_response.json()["schedule_id"] == schedule_id

    response = api.post(f"/api/schedules/{schedule_id}/pause")
    assert response.status_code == 200, response.text
    detail = api.get(f"/api/schedules/{schedule_id}").json()
    assert detail["active"] is False
