"""`chronicle export` and `chronicle exports` on the embedded store."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from interfaces.cli.main import cli
from tests.integration.test_exports import read_xlsx

pytestmark = pytest.mark.integration

Run = Callable[..., str]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL", "CHRONICLE_FILES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_export_jobs_to_csv_then_list_and_show(run: Run, tmp_path: Path) -> None:
    job_id = run("dispatch", "demo:echo '=HYPERLINK(1)'", "--queue", "low").strip()
    output = tmp_path / "out" / "jobs.csv"
    output.parent.mkdir()

    printed = run("export", "jobs", "--format", "csv", "-o", str(output), "--filter", "queue=low")

    assert printed.startswith(f"exported 1 row(s), {output.stat().st_size} bytes, to {output}")
    with output.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][:3] == ["Job", "Command line", "Queue"]
    assert rows[1][:4] == [job_id, "demo:echo '=HYPERLINK(1)'", "low", "waiting"]
    assert not list(output.parent.glob("*.part"))

    export_id = printed.rsplit("(export ", 1)[1].rstrip(")\n")
    listed = run("exports", "list")
    assert export_id in listed
    assert "completed" in listed
    lines = [json.loads(line) for line in run("exports", "list", "--json").splitlines()]
    assert (lines[0]["id"], lines[0]["rows"], lines[0]["job_id"]) == (export_id, 1, None)
    assert lines[0]["requested_by"].startswith("cli:")
    shown = run("exports", "show", export_id)
    assert "jobs (csv)" in shown
    assert "queue=low" in shown
    assert "1 row(s)" in shown
    copy = tmp_path / "copy.csv"
    run("exports", "download", export_id, "-o", str(copy))
    assert copy.read_bytes() == output.read_bytes()


def test_the_format_follows_the_output_extension(run: Run, tmp_path: Path) -> None:
    output = tmp_path / "contacts.xlsx"
    printed = run("export", "contacts", "-o", str(output))
    assert "exported 0 row(s)" in printed
    assert read_xlsx(output) == [["Email", "Name", "Age", "Country", "Created at", "Updated at"]]


def test_bad_input_exits_non_zero_with_the_problem(run: Run, tmp_path: Path) -> None:
    output = str(tmp_path / "x.csv")
    assert "unknown exporter 'job' (did you mean 'jobs'?)" in run(
        "export", "job", "-o", output, code=1
    )
    assert "unknown filter 'stat' for exporter 'jobs'" in run(
        "export", "jobs", "-o", output, "--filter", "stat=failed", code=1
    )
    assert "must be one of waiting" in run(
        "export", "jobs", "-o", output, "--filter", "status=broken", code=1
    )
    assert "is not NAME=VALUE" in run("export", "jobs", "-o", output, "--filter", "status", code=2)
    assert "'pdf' is not one of 'csv', 'xlsx'" in run(
        "export", "jobs", "--format", "pdf", "-o", output, code=2
    )
    assert "needs filter 'import_id'" in run("export", "failed-import-rows", "-o", output, code=1)
    assert not Path(output).exists()
    missing = run("exports", "show", "6b1f8f9e-2d4f-4bb0-9a57-3c1a1f4f0e11", code=1)
    assert "not found" in missing


def test_exporters_are_listed_with_their_filters(run: Run) -> None:
    listed = run("exports", "exporters")
    assert "failed-import-rows:" in listed
    assert "--filter import_id=<uuid, required>" in listed
    assert "--filter status=<str> (waiting|running|succeeded|failed|cancelled)" in listed
