"""`chronicle batches` on the embedded store: create, list, show, cancel, retry-failed."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from click.testing import CliRunner

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from infrastructure.settings import Settings
from interfaces.bootstrap import bootstrap
from interfaces.cli.main import cli
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def run(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["batches", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def run_jobs(data_dir: Path) -> None:
    """What `chronicle up` would do meanwhile: relay, run every job, follow the log."""
    registry = CommandRegistry()
    register_builtins(registry)
    app = bootstrap(Settings(data_dir=data_dir, default_backoff_seconds=0.0), registry=registry)
    try:
        queue = FakeQueue()
        app.add_outbox(queue)
        Harness(app, queue).run()
    finally:
        app.close()


def test_create_list_show_and_cancel(run):
    batch_id = run(
        "create",
        "newsletter",
        "demo:echo one",
        "demo:echo 'two words'",
        "--then",
        "demo:echo sent",
        "--finally",
        "demo:echo done",
        "--queue",
        "low",
    ).strip()
    UUID(batch_id)
    table = run("list")
    assert batch_id in table
    assert "newsletter" in table
    assert "running" in table
    [line] = run("list", "--json").splitlines()
    item = json.loads(line)
    assert (item["id"], item["total"], item["pending"], item["progress"]) == (batch_id, 2, 2, 0)
    assert item["created_by"].startswith("cli:")
    shown = run("show", batch_id)
    assert "newsletter" in shown
    assert "0% (0 of 2 processed, 2 pending)" in shown
    assert "then: demo:echo sent (not dispatched)" in shown
    assert json.loads(run("show", batch_id, "--json"))["callbacks"]["finally"]["command_line"] == (
        "demo:echo done"
    )

    cancelled = run("cancel", batch_id, "--reason", "typo in the text")
    # The batch process ran in this command: the waiting jobs are cancelled now.
    assert cancelled.strip() == f"cancelled {batch_id}: 2 job(s) cancelled, 0 still running"
    shown = run("show", batch_id)
    assert "cancelled" in shown
    assert "typo in the text" in shown
    assert "100% (2 of 2 processed, 0 pending)" in shown
    assert "already cancelled" in run("cancel", batch_id, code=1)
    assert "was cancelled" in run("retry-failed", batch_id, code=1)


def test_retry_failed_reopens_the_batch(run, data_dir: Path):
    batch_id = run(
        "create",
        "flaky",
        "demo:fail --times=1",
        "demo:echo fine",
        "--allow-failures",
        "--max-attempts",
        "1",
    ).strip()
    run_jobs(data_dir)
    assert "1 succeeded, 1 failed, 0 cancelled" in run("show", batch_id)
    assert run("retry-failed", batch_id).strip() == f"retried 1 failed job(s) of batch {batch_id}"
    assert "1 pending" in run("show", batch_id)
    run_jobs(data_dir)
    shown = run("show", batch_id)
    assert "2 succeeded, 0 failed" in shown
    assert "finished" in shown
    assert run("retry-failed", batch_id).strip() == f"retried 0 failed job(s) of batch {batch_id}"


def test_bad_input_and_unknown_batches(run):
    assert "jobs[1]" in run("create", "x", "demo:echo ok", "demo:nope", code=1)
    assert "then" in run("create", "x", "demo:noop", "--then", "demo:echo 'open", code=1)
    assert "Missing argument" in run("create", "x", code=2)
    missing = str(uuid4())
    for command in ("show", "cancel", "retry-failed"):
        assert f"batch {missing} not found" in run(command, missing, code=1)
    assert "is not a valid UUID" in run("show", "nope", code=2)
    assert "invalid cursor" in run("list", "--cursor", "zzz", code=1)
    assert run("list", "--json") == ""
