"""`chronicle import` and `chronicle imports` on the embedded store: import, wait with a
progress bar, list, show, failed rows to CSV, fix, retry."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner

from infrastructure.settings import Settings
from interfaces.bootstrap import bootstrap
from interfaces.cli.main import cli
from tests.integration.test_cli_batches import run_jobs
from tests.integration.test_imports import (
    CONTACTS,
    FORMULA_NAMES,
    contact_names,
    fix_emails,
    fix_failed_rows_csv,
    formula_names_csv,
    marked_names,
)

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
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def _id(output: str) -> str:
    first = output.splitlines()[0]
    assert first.startswith("import "), output
    assert first.endswith(" started"), output
    return str(UUID(first.split()[1]))


def test_import_then_fix_the_failed_rows(run, data_dir: Path, tmp_path: Path):
    source = tmp_path / "people.csv"
    source.write_text(CONTACTS, encoding="utf-8")
    import_id = _id(run("import", "contacts", str(source)))
    run_jobs(data_dir)
    shown = run("imports", "show", import_id)
    assert "completed_with_failures" in shown
    assert "7 (2 succeeded, 5 failed)" in shown
    listed = run("imports", "list")
    assert import_id in listed
    assert "people.csv" in listed
    rows = run("imports", "failed-rows", import_id)
    assert "row 3: email: must be a valid email address, got 'not-an-email'" in rows
    assert "row 7: expected 4 fields, got 3" in rows

    out = tmp_path / "failed.csv"
    assert "5 failed rows written" in run("imports", "failed-rows", import_id, "-o", str(out))
    out.write_text(fix_failed_rows_csv(out.read_text(encoding="utf-8-sig")), encoding="utf-8")
    assert "5 rows passed, 0 still fail" in run(
        "imports", "retry-failed", import_id, "--file", str(out)
    )
    assert "completed" in run("imports", "show", import_id)
    assert "no failed rows" in run("imports", "failed-rows", import_id)


def test_the_fixed_failed_rows_csv_gives_back_the_values_typed(run, data_dir: Path, tmp_path: Path):
    source = tmp_path / "people.csv"
    source.write_text(formula_names_csv(), encoding="utf-8")
    import_id = _id(run("import", "contacts", str(source)))
    run_jobs(data_dir)
    out = tmp_path / "failed.csv"
    run("imports", "failed-rows", import_id, "-o", str(out))
    download = out.read_text(encoding="utf-8-sig")
    assert marked_names(download)[:4] == [
        "'-Minus Sign",
        "'+39 06 1234",
        "'=not a formula",
        "'@handle",
    ]
    out.write_text(fix_emails(download), encoding="utf-8")
    assert "7 rows passed, 0 still fail" in run(
        "imports", "retry-failed", import_id, "--file", str(out)
    )
    app = bootstrap(Settings(data_dir=data_dir))
    try:
        assert contact_names(app) == FORMULA_NAMES
    finally:
        app.close()


def test_retry_failed_with_a_row_that_is_not_failing_retries_none(
    run, data_dir: Path, tmp_path: Path
):
    source = tmp_path / "people.csv"
    source.write_text(CONTACTS, encoding="utf-8")
    import_id = _id(run("import", "contacts", str(source)))
    run_jobs(data_dir)
    out = tmp_path / "failed.csv"
    run("imports", "failed-rows", import_id, "-o", str(out))
    fixed = fix_failed_rows_csv(out.read_text(encoding="utf-8-sig")).splitlines()
    only_row_3 = tmp_path / "row3.csv"
    only_row_3.write_text("\n".join(fixed[:2]) + "\n", encoding="utf-8")
    assert "1 rows passed, 0 still fail" in run(
        "imports", "retry-failed", import_id, "--file", str(only_row_3)
    )
    every_row = tmp_path / "fixed.csv"
    every_row.write_text("\n".join(fixed) + "\n", encoding="utf-8")
    output = run("imports", "retry-failed", import_id, "--file", str(every_row), code=1)
    assert "row 3 is not a failed row" in output
    assert "nothing was retried" in output
    assert "7 (3 succeeded, 4 failed)" in run("imports", "show", import_id)


def test_import_wait_follows_a_worker_and_exits_by_outcome(run, data_dir: Path, tmp_path: Path):
    source = tmp_path / "people.csv"
    source.write_text(CONTACTS, encoding="utf-8")
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            time.sleep(0.3)
            run_jobs(data_dir)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        output = run("import", "contacts", str(source), "--chunk-size", "2", "--wait", code=2)
    finally:
        done.set()
        thread.join(10)
    assert "completed_with_failures" in output
    assert "failed rows: chronicle imports failed-rows" in output


def test_bad_input_names_the_problem(run, tmp_path: Path):
    source = tmp_path / "people.csv"
    source.write_text(CONTACTS, encoding="utf-8")
    assert "unknown importer 'contact'" in run("import", "contact", str(source), code=1)
    assert "must look like NAME=VALUE" in run(
        "import", "contacts", str(source), "--map", "email", code=2
    )
    assert "has no option 'update'" in run(
        "import", "contacts", str(source), "--option", "update=true", code=1
    )
    deep = "[" * 1000 + "]" * 1000
    assert "nested deeper than 32 levels" in run(
        "import", "contacts", str(source), "--option", f"update_existing={deep}", code=2
    )
    missing = tmp_path / "missing.csv"
    missing.write_text("name\nAda\n", encoding="utf-8")
    output = run("import", "contacts", str(missing), code=1)
    assert "lacks required columns for importer 'contacts': email" in output
    assert "is not an import id" in run("imports", "show", "nope", code=2)


def test_cancel_an_import_from_the_command_line(run, data_dir: Path, tmp_path: Path):
    source = tmp_path / "people.csv"
    source.write_text(CONTACTS, encoding="utf-8")
    import_id = _id(run("import", "contacts", str(source)))
    assert "cancel requested" in run("imports", "cancel", import_id, "--reason", "wrong file")
    run_jobs(data_dir)
    shown = run("imports", "show", import_id)
    assert "failed" in shown
    assert "wrong file" in shown
    assert "only a processing import can be cancelled" in run(
        "imports", "cancel", import_id, code=1
    )
