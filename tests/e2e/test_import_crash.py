"""An import whose worker is killed mid-import (SIGKILL) still completes with exact totals:
the job is retried on another worker and resumes after the last recorded chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import POSTGRES_URL, wait_until
from tests.e2e.conftest import Processes

pytestmark = pytest.mark.e2e

ROWS = 60_000
BAD_EVERY = 97  # rows 97, 194, … carry an invalid email


def contacts_csv(path: Path) -> tuple[int, int]:
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("name,email,age,country\n")
        for n in range(1, ROWS + 1):
            if n % BAD_EVERY == 0:
                bad += 1
                out.write(f"Person {n},person{n}-at-example.com,{n % 90},DE\n")
            else:
                out.write(f"Person {n},person{n}@example.com,{n % 90},DE\n")
    return ROWS - bad, bad


def state(api: httpx.Client, import_id: str) -> dict[str, Any]:
    response = api.get(f"/api/imports/{import_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so the kill takes the worker and nothing else.
    return subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "worker", "--threads", "2"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_worker_killed_mid_import_does_not_change_the_totals(
    production: tuple[str, Processes], api: httpx.Client, tmp_path: Path
) -> None:
    _, procs = production
    # The fixture's workers stop first: this test brings its own, to kill one of them.
    for name, proc in procs.running:
        if name == "worker":
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    source = tmp_path / "contacts.csv"
    good, bad = contacts_csv(source)
    first = start_worker(procs.env, tmp_path / "worker-a.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        with source.open("rb") as stream:
            response = api.post(
                "/api/imports",
                files={"file": ("contacts.csv", stream, "text/csv")},
                data={"importer": "contacts", "chunk_size": "500"},
                timeout=60,
            )
        assert response.status_code == 201, response.text
        import_id = response.json()["id"]
        wait_until(lambda: state(api, import_id)["rows"] >= 5_000, 120, "chunks recorded")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        at_kill = state(api, import_id)
        assert at_kill["status"] == "processing", "the import ended before the kill"
        second = start_worker(procs.env, tmp_path / "worker-b.log")
        wait_until(lambda: state(api, import_id)["status"] != "processing", 240, "import finished")
        final = state(api, import_id)
        assert final["status"] == "completed_with_failures", final
        assert (final["rows"], final["succeeded"], final["failed"]) == (ROWS, good, bad)
        job = api.get(final["links"]["job"]).json()
        assert job["status"] == "succeeded"
        assert job["attempts"] == 2
        assert job["last_error_type"] == "WorkerLost"
        schema = procs.env["CHRONICLE_DATABASE_SCHEMA"]
        with psycopg.connect(POSTGRES_URL) as conn:
            query = f"SELECT COUNT(*) FROM {schema}.contacts"  # noqa: S608 - a test's own schema
            (stored,) = conn.execute(query).fetchone()  # type: ignore[misc]
        assert stored == good
        failed = api.get(f"/api/imports/{import_id}/failed-rows?limit=500").json()
        # Row numbers count the header line: data row n is line n + 1.
        assert [row["number"] - 1 for row in failed["items"]] == list(
            range(BAD_EVERY, ROWS + 1, BAD_EVERY)
        )[:500]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        print((tmp_path / "worker-a.log").read_text(errors="replace")[-3000:])
