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
    status = {row["name"]: row for row in json.loads(run("projections", "status", "--json"))}
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
