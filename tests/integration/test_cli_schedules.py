"""`chronicle schedules` on the embedded store: add, list, show, edit, pause, run, delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from interfaces.cli.main import cli
from interfaces.cli.schedules import parse_every

pytestmark = pytest.mark.integration


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["schedules", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def listed(run) -> dict[str, dict]:
    return {item["id"]: item for item in map(json.loads, run("list", "--json").splitlines())}


def test_every_values_become_helper_calls():
    assert parse_every(
        ("weekdays", "dailyAt:13:00", "twiceDailyAt:1,13", "between:9:00, 17:00")
    ) == [
        {"name": "weekdays", "args": []},
        {"name": "dailyAt", "args": ["13:00"]},
        {"name": "twiceDailyAt", "args": [1, 13]},
        {"name": "between", "args": ["9:00", "17:00"]},
    ]


def test_every_takes_laravel_times_and_cron_field_arguments(run):
    assert parse_every(("dailyAt:13:08:10", "hourlyAt:*/10", "weeklyOn:1-5,7:30")) == [
        {"name": "dailyAt", "args": ["13:08:10"]},
        {"name": "hourlyAt", "args": ["*/10"]},
        {"name": "weeklyOn", "args": ["1-5", "7:30"]},
    ]
    at_time = run("add", "at", "demo:noop", "--every", "dailyAt:13:08:10").strip()
    tens = run("add", "tens", "demo:noop", "--every", "hourlyAt:*/10").strip()
    items = listed(run)
    assert items[at_time]["expression"] == "8 13 * * *"  # seconds ignored, as in Laravel 12
    assert items[tens]["expression"] == "*/10 * * * *"


def test_add_list_show_edit_pause_resume_run_runs_delete(run):
    schedule_id = run(
        "add",
        "lunch report",
        "demo:echo 'from the cli'",
        "--every",
        "weekdays",
        "--every",
        "dailyAt:13:00",
        "--timezone",
        "Europe/Rome",
        "--queue",
        "low",
        "--max-attempts",
        "2",
        "--timeout",
        "30",
        "--without-overlapping",
        "--missed-runs",
        "run_once",
    ).strip()
    item = listed(run)[schedule_id]
    assert item["command_line"] == "demo:echo 'from the cli'"
    assert item["expression"] == "0 13 * * 1-5"
    assert item["frequency"]["helpers"] == [
        {"name": "weekdays", "args": []},
        {"name": "dailyAt", "args": ["13:00"]},
    ]
    assert (item["timezone"], item["queue"], item["max_attempts"]) == ("Europe/Rome", "low", 2)
    assert (item["timeout_seconds"], item["without_overlapping"]) == (30.0, True)
    assert item["missed_runs"] == "run_once"
    assert item["created_by"].startswith("cli:")
    assert item["next_due_local"].endswith(("T13:00:00+01:00", "T13:00:00+02:00"))
    table = run("list")
    assert schedule_id in table
    assert "At 13:00, Monday through Friday" in table

    shown = run("show", schedule_id)
    assert "lunch report" in shown
    assert "description_human: At 13:00, Monday through Friday" in shown
    assert json.loads(run("show", schedule_id, "--json"))["id"] == schedule_id

    edited = run("edit", schedule_id, "--cron", "*/10 * * * * *", "--name", "pulse")
    assert "'pulse': Every 10 seconds (Europe/Rome), next run" in edited
    item = listed(run)[schedule_id]
    assert (item["name"], item["expression"], item["frequency"]["helpers"]) == (
        "pulse",
        "*/10 * * * * *",
        None,
    )
    run("edit", schedule_id, "--every", "hourlyAt:15", "--allow-overlapping", "--timezone", "UTC")
    item = listed(run)[schedule_id]
    assert (item["expression"], item["without_overlapping"]) == ("15 * * * *", False)
    assert item["next_due_local"].endswith(":15:00+00:00")

    assert "paused" in run("pause", schedule_id)
    assert listed(run)[schedule_id]["next_due_at"] is None
    assert [json.loads(line)["id"] for line in run("list", "--paused", "--json").splitlines()] == [
        schedule_id
    ]
    assert run("list", "--active", "--json") == ""
    assert "next run" in run("resume", schedule_id)

    job_id = run("run", schedule_id).strip()
    [line] = run("runs", schedule_id, "--json").splitlines()
    tick = json.loads(line)
    assert (tick["job_id"], tick["manual"], tick["status"]) == (job_id, True, "waiting")
    assert tick["triggered_by"].startswith("cli:")
    assert job_id in run("runs", schedule_id)

    assert run("delete", schedule_id).strip() == f"deleted {schedule_id}"
    assert schedule_id not in listed(run)
    assert f"schedule {schedule_id} not found" in run("show", schedule_id, code=1)


def test_add_created_paused(run):
    schedule_id = run("add", "later", "demo:noop", "--cron", "0 9 * * *", "--paused").strip()
    item = listed(run)[schedule_id]
    assert (item["active"], item["next_due_at"]) == (False, None)


def test_errors_print_the_domain_message_and_exit_non_zero(run):
    output = run("add", "x", "demo:noop", "--every", "dailyat:13:00", code=1)
    assert "unknown helper 'dailyat'; did you mean 'dailyAt'?" in output
    output = run("add", "x", "demo:noop", "--every", "dailyAt:25:00", code=1)
    assert "helper 'dailyAt', argument 'time'" in output
    output = run("add", "x", "demo:noop", "--cron", "61 * * * *", code=1)
    assert "minute 61 is outside 0-59" in output
    output = run("add", "x", "demo:noop", "--cron", "0 * * * *", "--timezone", "Mars/Base", code=1)
    assert "unknown timezone 'Mars/Base'" in output
    output = run("add", "x", "demo:echo", "--cron", "0 * * * *", code=1)
    assert "missing argument 'message'" in output
    assert "--cron EXPR or --every" in run("add", "x", "demo:noop", code=2)
    output = run("add", "x", "demo:noop", "--cron", "0 * * * *", "--every", "hourly", code=2)
    assert "not both" in output
    assert listed(run) == {}

    schedule_id = run("add", "x", "demo:noop", "--cron", "0 * * * *").strip()
    assert "nothing to change" in run("edit", schedule_id, code=2)
    assert "unknown timezone" in run("edit", schedule_id, "--timezone", "Nowhere", code=1)
    run("pause", schedule_id)
    assert f"schedule {schedule_id} is already paused" in run("pause", schedule_id, code=1)
    run("resume", schedule_id)
    assert f"schedule {schedule_id} is not paused" in run("resume", schedule_id, code=1)
    missing = "00000000-0000-4000-8000-000000000000"
    for command in ("show", "runs", "pause", "resume", "run", "delete"):
        assert f"schedule {missing} not found" in run(command, missing, code=1)
    assert "not a valid UUID" in run("show", "nope", code=2)


def test_help_documents_every_chains(run):
    output = run("add", "--help")
    assert "--every weekdays --every dailyAt:13:00" in output
    assert "split on commas after the first" in output
