"""Smoke test of `chronicle up`: everything in one process on the embedded store, no settings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Up, wait_ready

pytestmark = pytest.mark.e2e


def asks_for_credentials(base_url: str) -> None:
    """Without credentials the API answers 401 and says how to authenticate."""
    anonymous = httpx.get(f"{base_url}/api/jobs", timeout=5)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"].lower().startswith("bearer")


def signs_in_and_reads_the_jobs(base_url: str, password: str, job_id: str) -> None:
    """A person signs in as `admin` with the password `up` showed: the session cookie reads
    the jobs."""
    with httpx.Client(base_url=base_url, timeout=5) as browser:
        signed_in = browser.post("/auth/login", json={"username": "admin", "password": password})
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["actor"] == "user:admin"
        assert signed_in.json()["csrf_token"]
        assert browser.cookies.get("chronicle_session")

        def listed() -> bool:
            jobs = browser.get("/api/jobs")
            assert jobs.status_code == 200, jobs.text
            return job_id in [item["id"] for item in jobs.json()["items"]]

        wait_until(listed, 20, "the job in the list read with the session cookie")


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

        asks_for_credentials(base_url)

        # A program's token, made with the CLI while `up` runs.
        api = up.client()
        response = api.post("/api/jobs", json={"command_line": "demo:echo up"})
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]

        def succeeded() -> bool:
            body = api.get(f"/api/jobs/{job_id}").json()
            return bool(body.get("status") == "succeeded")

        wait_until(succeeded, 20, "the job to succeed")
        assert (tmp_path / ".chronicle" / "events.sqlite3").exists()

        signs_in_and_reads_the_jobs(base_url, password, job_id)

        # The scheduler runs inside `up` too.
        response = api.post(
            "/api/schedules",
            json={
                "name": "every second",
                "command_line": "demo:noop",
                "helpers": [{"name": "everySecond"}],
            },
        )
        assert response.status_code == 201, response.text
        runs_url = f"/api/schedules/{response.json()['id']}/runs"

        def ran_twice() -> bool:
            items = api.get(runs_url).json()["items"]
            return sum(item["status"] == "succeeded" for item in items) >= 2

        wait_until(ran_twice, 20, "two scheduled runs")

        # An import through the API, run by the workers inside `up`.
        csv_text = "name,email,age\nAda,ada@example.com,36\nBob,bob-at-example,41\n"
        response = api.post(
            "/api/imports",
            files={"file": ("people.csv", csv_text.encode(), "text/csv")},
            data={"importer": "contacts"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        import_url = response.json()["links"]["self"]

        def imported() -> bool:
            return bool(api.get(import_url).json()["status"] != "processing")

        wait_until(imported, 20, "the import to end")
        body = api.get(import_url).json()
        assert (body["status"], body["succeeded"], body["failed"]) == (
            "completed_with_failures",
            1,
            1,
        )
        failed = api.get(f"{import_url}/failed-rows.csv").text
        assert "Bob,bob-at-example,41," in failed
        api.close()
    finally:
        code = up.stop()
    assert code == 0, up.log_path.read_text()
