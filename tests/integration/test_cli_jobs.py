"""`chronicle jobs` on the embedded store: the failed list, retry, bulk retry, forget, cancel."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from click.testing import CliRunner

from application.jobs import DispatchRequest
from infrastructure.settings import load_settings
from interfaces.bootstrap import bootstrap
from interfaces.cli.main import cli
from tests.integration.test_failed_jobs import save_failed

pytestmark = pytest.mark.integration


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, input: str | None = None) -> str:  # noqa: A002
        result = runner.invoke(cli, ["jobs", *args], input=input, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def failed(count: int, *, hours_ago: float = 0, **kwargs: Any) -> list[str]:
    """Failed jobs saved straight into the store the CLI opens (no worker needed)."""
    app = bootstrap(load_settings())
    try:
        at = app.clock.now() - timedelta(hours=hours_ago)
        return [str(job_id) for job_id in save_failed(app, count, at=at, **kwargs)]
    finally:
        app.close()


def waiting(command_line: str) -> str:
    app = bootstrap(load_settings())
    try:
        return str(app.jobs.dispatch(DispatchRequest(command_line=command_line)))
    finally:
        app.close()


def listed(run, *args: str) -> list[dict[str, Any]]:
    # The output holds stderr too: the `more: --cursor` hint is not a JSON line.
    lines = run("failed", "--json", *args).splitlines()
    return [json.loads(line) for line in lines if not line.startswith("more:")]


def test_failed_lists_with_filters(run):
    [old] = failed(1, hours_ago=3)
    [low] = failed(1, queue="low")
    [timeout] = failed(1, error_type="TimeoutError", command="demo:sleep")

    table = run("failed")
    for job_id in (old, low, timeout):
        assert job_id in table
    assert "TimeoutError: TimeoutError in demo:sleep" in table
    assert [item["id"] for item in listed(run)] == [timeout, low, old]
    item = listed(run, "--queue", "low")[0]
    assert (item["id"], item["queue"], item["error_type"]) == (low, "low", "RuntimeError")
    assert "Traceback" in item["traceback"]
    assert [i["id"] for i in listed(run, "--error-type", "TimeoutError")] == [timeout]
    assert [i["id"] for i in listed(run, "--command", "demo:sleep")] == [timeout]
    assert [i["id"] for i in listed(run, "--failed-from", "2000-01-01T00:00Z")] == [
        timeout,
        low,
        old,
    ]
    assert listed(run, "--failed-to", "2000-01-01T00:00+01:00") == []
    assert [i["id"] for i in listed(run, "--limit", "1")] == [timeout]
    cursor = run("failed", "--limit", "2").splitlines()[-1].removeprefix("more: --cursor ")
    assert [i["id"] for i in listed(run, "--cursor", cursor)] == [old]

    assert "not an ISO-8601 time" in run("failed", "--failed-from", "yesterday", code=2)
    assert "needs a UTC offset" in run("failed", "--failed-to", "2026-01-01T00:00", code=2)
    assert "before failed_to" in run(
        "failed", "--failed-from", "2026-01-02T00:00Z", "--failed-to", "2026-01-01T00:00Z", code=1
    )
    assert "'urgent' is not one of" in run("failed", "--queue", "urgent", code=2)


def test_retry_one_records_the_cli_user(run):
    [job_id] = failed(1)
    assert run("retry", job_id).strip() == f"job {job_id} retried: waiting"
    assert "only failed jobs can be retried" in run("retry", job_id, code=1)
    assert "retried by cli:" in run("show", job_id)
    missing = str(uuid4())
    assert f"job {missing} not found" in run("retry", missing, code=1)
    assert "is not a valid UUID" in run("retry", "nope", code=2)


def test_retry_failed_asks_first_then_retries_what_matches(run):
    low = failed(2, queue="low")
    others = failed(3)

    output = run("retry-failed", "--queue", "low", input="n\n", code=1)
    assert "Retry 2 failed jobs?" in output
    assert "Aborted" in output
    assert len(listed(run)) == 5

    output = run("retry-failed", "--queue", "low", input="y\n")
    assert output.strip().endswith("retried: 2, skipped: 0")
    assert {i["id"] for i in listed(run)} == set(others)

    assert run("retry-failed", "--yes", "--page-size", "2").strip() == "retried: 3, skipped: 0"
    assert listed(run) == []
    assert run("retry-failed", "--yes").strip() == "no failed jobs match"
    for job_id in (*low, *others):
        assert "retried by cli:" in run("show", job_id)


def test_forget_and_cancel(run):
    [gone, kept] = failed(2)
    assert run("forget", gone).strip() == f"job {gone} forgotten"
    assert "already forgotten" in run("forget", gone, code=1)
    assert [i["id"] for i in listed(run)] == [kept]
    shown = run("show", gone)
    assert "forgotten by cli:" in shown
    assert "forgotten: True" in shown
    # Bulk retry leaves forgotten jobs alone.
    assert run("retry-failed", "--yes").strip() == "retried: 1, skipped: 0"

    job_id = waiting("demo:noop")
    assert run("cancel", job_id, "--reason", "not needed").strip() == f"job {job_id}: cancelled"
    assert "cannot be cancelled" in run("cancel", job_id, code=1)
    assert "cancelled by cli:" in run("show", job_id)
    assert "only failed jobs can be forgotten" in run("forget", job_id, code=1)
    assert f"job {UUID(int=1)} not found" in run("forget", str(UUID(int=1)), code=1)
