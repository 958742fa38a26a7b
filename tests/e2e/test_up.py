"""Smoke test of `chronicle up`: everything in one process on the embedded store, no settings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Up, wait_ready

pytestmark = pytest.mark.e2e


def test_up_runs_a_job_with_no_configuration(tmp_path: Path) -> None:
    up = Up(tmp_path)
    base_url = up.base_url
    try:
        wait_ready(base_url)
        # The first start made `admin` and showed its password once, on the terminal only.
        said = [line for line in up.log_path.read_text().splitlines() if "account admin" in line]
        assert len(said) == 1, said
        password = said[0].rsplit("password ", 1)[1].strip()
        assert len(password) >= 12
        mentions = [line for line in up.log_path.read_text().splitlines() if password in line]
        assert mentions == said  # in no (JSON) log line
        response = httpx.post(
            f"{base_url}/api/jobs", json={"command_line": "demo:echo up"}, timeout=5
        )
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]

        def succeeded() -> bool:
            body = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json()
            return bool(body.get("status") == "succeeded")

        wait_until(succeeded, 20, "the job to succeed")
        assert (tmp_path / ".chronicle" / "events.sqlite3").exists()

        # The scheduler runs inside `up` too.
        response = httpx.post(
            f"{base_url}/api/schedules",
            json={
                "name": "every second",
                "command_line": "demo:noop",
                "helpers": [{"name": "everySecond"}],
            },
            timeout=5,
        )
        assert response.status_code == 201, response.text
        runs_url = f"{base_url}/api/schedules/{response.json()['id']}/runs"

        def ran_twice() -> bool:
            items = httpx.get(runs_url, timeout=5).json()["items"]
            return sum(item["status"] == "succeeded" for item in items) >= 2

        wait_until(ran_twice, 20, "two scheduled runs")

        # An import through the API, run by the workers inside `up`.
        csv_text = "name,email,age\nAda,ada@example.com,36\nBob,bob-at-example,41\n"
        response = httpx.post(
            f"{base_url}/api/imports",
            files={"file": ("people.csv", csv_text.encode(), "text/csv")},
            data={"importer": "contacts"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        import_url = f"{base_url}{response.json()['links']['self']}"

        def imported() -> bool:
            return bool(httpx.get(import_url, timeout=5).json()["status"] != "processing")

        wait_until(imported, 20, "the import to end")
        body = httpx.get(import_url, timeout=5).json()
        assert (body["status"], body["succeeded"], body["failed"]) == (
            "completed_with_failures",
            1,
            1,
        )
        failed = httpx.get(f"{import_url}/failed-rows.csv", timeout=5).text
        assert "Bob,bob-at-example,41," in failed
    finally:
        code = up.stop()
    assert code == 0, up.log_path.read_text()
