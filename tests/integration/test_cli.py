"""The `chronicle` command on the embedded store: dispatch, inspect, rebuild, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from interfaces.cli.main import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_dispatch_then_list_and_show(run):
    job_id = run("dispatch", "demo:echo 'from the cli'", "--queue", "low").strip()
    listed = run("jobs", "list")
    assert job_id in listed
    assert "demo:echo 'from the cli'" in listed
    lines = [json.loads(line) for line in run("jobs", "list", "--json").splitlines()]
    assert lines[0]["id"] == job_id
    assert lines[0]["queue"] == "low"
    assert lines[0]["status"] == "waiting"
    assert lines[0]["requested_by"].startswith("cli:")
    shown = run("jobs", "show", job_id)
    assert "dispatched by cli:" in shown


def test_bad_command_line_is_refused_with_the_reason(run):
    output = run("dispatch", "demo:echo", code=1)
    assert "missing argument 'message'" in output
    output = run("dispatch", "demo:nope", code=1)
    assert "unknown command 'demo:nope'" in output


def test_bad_setting_names_the_variable(run, monkeypatch):
    monkeypatch.setenv("CHRONICLE_PORT", "eighty")
    output = run("jobs", "list", code=2)
    assert "CHRONICLE_PORT must be an integer" in output


def test_worker_without_a_shared_broker_is_refused(run):
    output = run("worker", code=2)
    assert "needs CHRONICLE_BROKER_URL" in output


def test_projections_status_and_rebuild(run):
    for i in range(3):
        run("dispatch", f"demo:echo n{i}")
    run("jobs", "list")  # brings the embedded read models up to date
    lines = run("projections", "status", "--json").splitlines()
    status = {row["name"]: row for row in map(json.loads, lines)}
    assert status["jobs"]["lag"] == 0
    assert status["jobs"]["head"] == 3
    # The reactions that follow the log are listed too.
    assert {"batch_process", "system_jobs", "outbox"} <= set(status)
    output = run("projections", "rebuild", "jobs")
    assert "jobs: rebuilt up to position 3" in output
    assert len(run("jobs", "list", "--json").splitlines()) == 3
    output = run("projections", "rebuild", "nope", code=2)
    assert "nope" in output


def test_commands_lists_signatures(run):
    output = run("commands")
    assert "demo:sleep [--seconds=1.0]" in output


def test_every_json_option_prints_json_lines(run):
    """One convention (README, "Command line"): each line of `--json` output is one JSON
    object; lists print a line per item, single things one line."""
    job_id = run("dispatch", "demo:echo 'two\nlines'").strip()
    schedule_id = run("schedules", "add", "nightly", "demo:noop", "--cron", "0 3 * * *").strip()
    batch_id = run("batches", "create", "pair", "demo:noop", "demo:echo x").split()[-1]
    lists = {
        ("jobs", "list", "--json"): 3,
        ("jobs", "failed", "--json"): 0,
        ("schedules", "list", "--json"): 1,
        ("schedules", "runs", schedule_id, "--json"): 0,
        ("batches", "list", "--json"): 1,
        ("exports", "list", "--json"): 0,
        ("projections", "status", "--json"): None,
    }
    singles = [
        ("schedules", "show", schedule_id, "--json"),
        ("batches", "show", batch_id, "--json"),
        ("queues", "stats", "--json"),
    ]
    for args, count in lists.items():
        items = [json.loads(line) for line in run(*args).splitlines()]
        assert all(isinstance(item, dict) for item in items), args
        assert count is None or len(items) == count, args
    for args in singles:
        [line] = run(*args).splitlines()
        assert isinstance(json.loads(line), dict), args
    jobs = {job["id"]: job for job in map(json.loads, run("jobs", "list", "--json").splitlines())}
    # The objects the REST API answers (`GET /api/jobs` items).
    assert jobs[job_id]["links"] == {"self": f"/api/jobs/{job_id}"}
