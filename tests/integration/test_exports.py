"""Exports on real storage (SQLite files and Postgres): every built-in exporter in CSV and XLSX
read back, formula neutralisation end to end, filters, keyset pages, retention, the job path."""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from xml.etree import ElementTree as ET

import pytest

from application.exports.exporters import ExportColumn, Exporter, ExportQuery, ExportRow
from application.jobs import DispatchRequest
from application.schedules import ScheduleRequest
from domain.export import ExportStatus, export_job_id
from domain.shared import GoneError, InvalidTransitionError
from infrastructure.builtin_exporters import builtin_exporters
from infrastructure.sql import Database
from interfaces.bootstrap import Chronicle
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
FORMULAS = ["=cmd|' /C calc'!A0", "+1", "-2", "@x"]
FAILED_ROWS_DDL = (
    "CREATE TABLE IF NOT EXISTS import_failed_rows ("
    " import_id TEXT NOT NULL, tenant TEXT NOT NULL, number INTEGER NOT NULL, data TEXT NOT NULL,"
    " errors TEXT NOT NULL, error TEXT NOT NULL, passed BOOLEAN NOT NULL,"
    " PRIMARY KEY (import_id, number))"
)


# -- reading files back -------------------------------------------------------------------------


def _letters(reference: str) -> str:
    return "".join(char for char in reference if char.isalpha())


def _column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - ord("A") + 1
    return index - 1


def read_xlsx(path: Path) -> list[list[str]]:
    """The sheet as rows of text: numbers as written, booleans as true/false, no cell as ''."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        root = ET.fromstring(archive.read("xl/worksheets/sheet1.xml"))  # noqa: S314 our own file
    rows: list[list[str]] = []
    for row in root.iterfind("m:sheetData/m:row", NS):
        cells: dict[int, str] = {}
        for cell in row.iterfind("m:c", NS):
            kind = cell.get("t")
            if kind == "inlineStr":
                text = cell.find("m:is/m:t", NS)
                value = "" if text is None else (text.text or "")
            else:
                v = cell.find("m:v", NS)
                value = "" if v is None else (v.text or "")
                if kind == "b":
                    value = "true" if value == "1" else "false"
            cells[_column_index(_letters(cell.get("r", "")))] = value
        width = max(cells, default=-1) + 1
        rows.append([cells.get(index, "") for index in range(width)])
    # Trailing empty cells are not written: pad every row to the header's width.
    width = len(rows[0]) if rows else 0
    return [row + [""] * (width - len(row)) for row in rows]


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


def exported(app: Chronicle, exporter: str, fmt: str, **filters: object) -> list[dict[str, str]]:
    """Export in this process, then read the file back as header → text dicts."""
    export = app.exports.request(exporter, fmt, filters, by="test", dispatch=False)
    outcome = app.exports.run(export.id)
    assert outcome.status is ExportStatus.COMPLETED
    path = app.exports.download(export.id, tenant="default").path
    assert path.parent == app.settings.files_dir.resolve() / "exports"
    assert path.stat().st_size == outcome.size
    table = read_csv(path) if fmt == "csv" else read_xlsx(path)
    header, *body = table
    assert outcome.rows == len(body)
    assert header == [column.header for column in app.exporters.get(exporter).columns]
    return [dict(zip(header, row, strict=True)) for row in body]


def both(app: Chronicle, exporter: str, **filters: object) -> list[dict[str, str]]:
    """The rows of an export, the same read from its CSV as from its XLSX file."""
    from_csv = exported(app, exporter, "csv", **filters)
    assert exported(app, exporter, "xlsx", **filters) == from_csv
    return from_csv


# -- data -----------------------------------------------------------------------------------------


def add_contacts(db: Database, tenant: str, people: list[tuple[str, str, int | None, str]]) -> None:
    at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    with db.transaction() as s:
        s.executemany(
            "INSERT INTO contacts (tenant, email, name, age, country, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(tenant, email, name, age, country, at, at) for email, name, age, country in people],
        )


def add_failed_rows(db: Database, rows: list[tuple[str, str, int, dict[str, str], bool]]) -> None:
    with db.transaction() as s:
        s.execute(FAILED_ROWS_DDL)
        s.executemany(
            "INSERT INTO import_failed_rows (import_id, tenant, number, data, errors, error,"
            " passed) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    import_id,
                    tenant,
                    number,
                    json.dumps(data),
                    json.dumps({"email": "must be a valid email address"}),
                    f"email: must be a valid email address, got {data.get('email')!r}",
                    passed,
                )
                for import_id, tenant, number, data, passed in rows
            ],
        )


@pytest.fixture
def h(chronicle: Chronicle) -> Harness:
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    return Harness(chronicle, queue)


def dispatch(app: Chronicle, line: str, **options: Any) -> UUID:
    return app.jobs.dispatch(DispatchRequest(command_line=line, **options))


# -- the built-in exporters ---------------------------------------------------------------------


def test_contacts_in_both_formats_with_formulas_neutralised(chronicle: Chronicle) -> None:
    people = [
        ("b@example.com", FORMULAS[0], 30, "IT"),
        ("a@example.com", FORMULAS[1], -2, "GB"),
        ("c@example.com", FORMULAS[2], None, "IT"),
        ("d@example.com", FORMULAS[3], 41, '=HYPERLINK("http://evil")'),
    ]
    add_contacts(chronicle.db, "default", people)
    add_contacts(chronicle.db, "other", [("z@example.com", "Other tenant", 1, "IT")])

    rows = both(chronicle, "contacts")

    assert [row["Email"] for row in rows] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ]
    # Text that a spreadsheet would run as a formula starts with an apostrophe; numbers, even
    # negative ones, stay numbers.
    assert [row["Name"] for row in rows] == [
        "'+1",
        "'=cmd|' /C calc'!A0",
        "'-2",
        "'@x",
    ]
    assert [row["Age"] for row in rows] == ["-2", "30", "", "41"]
    assert rows[3]["Country"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["Created at"] == "2026-01-05T12:00:00+00:00"
    assert [row["Email"] for row in both(chronicle, "contacts", country="IT")] == [
        "b@example.com",
        "c@example.com",
    ]


def test_xlsx_cells_keep_their_types(chronicle: Chronicle) -> None:
    add_contacts(chronicle.db, "default", [("a@example.com", "-2", -2, "IT")])
    export = chronicle.exports.request("contacts", "xlsx", {}, dispatch=False)
    chronicle.exports.run(export.id)
    path = chronicle.exports.download(export.id, tenant="default").path
    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    # The name "-2" is text, neutralised; the age -2 is a number cell, untouched.
    assert '<c r="B2" t="inlineStr"><is><t xml:space="preserve">\'-2</t></is></c>' in sheet
    assert '<c r="C2"><v>-2</v></c>' in sheet


def test_jobs_newest_first_with_filters(h: Harness) -> None:
    app = h.app
    echo = dispatch(app, "demo:echo one")
    failed = dispatch(app, "demo:fail --times=5", max_attempts=1, queue="high")
    h.run()
    waiting = dispatch(app, "demo:noop", queue="low")  # sent, never run
    other = app.jobs.dispatch(DispatchRequest(command_line="demo:noop", tenant="other"))
    h.follow()

    rows = both(app, "jobs")

    assert [row["Job"] for row in rows] == [str(waiting), str(failed), str(echo)]
    assert str(other) not in {row["Job"] for row in rows}
    by_id = {row["Job"]: row for row in rows}
    assert (by_id[str(echo)]["Status"], by_id[str(echo)]["Attempts"]) == ("succeeded", "1")
    assert by_id[str(echo)]["Command line"] == "demo:echo one"
    assert by_id[str(failed)]["Status"] == "failed"
    assert by_id[str(failed)]["Queue"] == "high"
    assert by_id[str(failed)]["Error type"] == "RuntimeError"
    assert by_id[str(waiting)]["Started at"] == ""
    assert [row["Job"] for row in both(app, "jobs", status="failed")] == [str(failed)]
    assert [row["Job"] for row in both(app, "jobs", queue="low")] == [str(waiting)]
    assert [row["Job"] for row in both(app, "jobs", command="demo:echo")] == [str(echo)]


def test_failed_jobs_exclude_forgotten_ones_and_filter(h: Harness) -> None:
    app = h.app
    first = dispatch(app, "demo:fail --times=5", max_attempts=1)
    second = dispatch(app, "demo:fail --times=5", max_attempts=1, queue="high")
    forgotten = dispatch(app, "demo:fail --times=5", max_attempts=1)
    dispatch(app, "demo:echo fine")
    h.run()
    app.jobs.forget(forgotten, tenant="default", by="ops")
    h.follow()

    rows = both(app, "failed-jobs")

    assert [row["Job"] for row in rows] == [str(second), str(first)]
    assert rows[0]["Error type"] == "RuntimeError"
    assert rows[0]["Failed at"] != ""
    assert [row["Job"] for row in both(app, "failed-jobs", queue="high")] == [str(second)]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert both(app, "failed-jobs", failed_from=later) == []
    assert len(both(app, "failed-jobs", failed_to=later, error_type="RuntimeError")) == 2


def test_schedule_runs_of_one_schedule_or_all(h: Harness) -> None:
    app = h.app
    schedules = [
        app.schedules.create(
            ScheduleRequest(name=name, command_line="demo:echo tick", expression="0 3 * * *")
        )
        for name in ("nightly", "=sneaky")
    ]
    for schedule_id in [*schedules, schedules[0]]:
        app.schedules.run_now(schedule_id, tenant="default", by="ops")
    h.run()

    rows = both(app, "schedule-runs")

    assert [row["Schedule"] for row in rows] == [
        str(schedules[0]),
        str(schedules[1]),
        str(schedules[0]),
    ]
    assert [row["Schedule name"] for row in rows] == ["nightly", "'=sneaky", "nightly"]
    assert {row["Status"] for row in rows} == {"succeeded"}
    assert {row["Manual"] for row in rows} == {"true"}
    assert {row["Triggered by"] for row in rows} == {"ops"}
    one = both(app, "schedule-runs", schedule_id=str(schedules[1]))
    assert [row["Schedule"] for row in one] == [str(schedules[1])]


def test_failed_import_rows_of_one_import_leave_out_passed_rows(chronicle: Chronicle) -> None:
    import_id, other_import = str(uuid4()), str(uuid4())
    add_failed_rows(
        chronicle.db,
        [
            (import_id, "default", 7, {"email": "=bad"}, False),
            (import_id, "default", 3, {"email": "not-an-email", "name": "Bob"}, False),
            (import_id, "default", 5, {"email": "fixed@example.com"}, True),
            (other_import, "default", 2, {"email": "x"}, False),
            (import_id, "other", 9, {"email": "x"}, False),
        ],
    )

    rows = both(chronicle, "failed-import-rows", import_id=import_id)

    assert [(row["Import"], row["Row"]) for row in rows] == [(import_id, "3"), (import_id, "7")]
    assert json.loads(rows[0]["Data"]) == {"email": "not-an-email", "name": "Bob"}
    assert rows[0]["Error"] == "email: must be a valid email address, got 'not-an-email'"
    assert rows[1]["Error"] == "email: must be a valid email address, got '=bad'"


def test_every_exporter_reads_in_pages_and_misses_nothing(h: Harness) -> None:
    app = h.app
    add_contacts(app.db, "default", [(f"p{i:02d}@example.com", f"P{i}", i, "IT") for i in range(7)])
    for _ in range(5):
        dispatch(app, "demo:noop")
    for _ in range(3):
        dispatch(app, "demo:fail --times=5", max_attempts=1)
    schedule_id = app.schedules.create(
        ScheduleRequest(name="s", command_line="demo:noop", expression="0 3 * * *")
    )
    for _ in range(3):
        app.schedules.run_now(schedule_id, tenant="default", by="ops")
    h.run()
    import_id = str(uuid4())
    add_failed_rows(app.db, [(import_id, "default", n, {"n": str(n)}, False) for n in range(5)])
    filters: dict[str, dict[str, object]] = {"failed-import-rows": {"import_id": import_id}}

    small = {e.name: e for e in builtin_exporters(app.db, page_size=2)}
    large = {e.name: e for e in builtin_exporters(app.db, page_size=1000)}

    for name, exporter in small.items():
        query = ExportQuery(tenant="default", filters=filters.get(name, {}))
        paged = list(exporter.rows(query))
        assert paged == list(large[name].rows(query)), name
        assert len(paged) >= 3, name


class CountingDatabase:
    """A Database that counts the read transactions opened on it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect = db.dialect
        self.reads = 0

    def read(self) -> AbstractContextManager[Any]:
        self.reads += 1
        manager: AbstractContextManager[Any] = self._db.read()
        return manager

    def transaction(self) -> AbstractContextManager[Any]:
        manager: AbstractContextManager[Any] = self._db.transaction()
        return manager

    def check(self) -> None:
        self._db.check()

    def close(self) -> None:
        self._db.close()


def test_rows_stream_a_page_per_query(chronicle: Chronicle) -> None:
    add_contacts(
        chronicle.db, "default", [(f"p{i:04d}@example.com", "P", i, "IT") for i in range(2500)]
    )
    counting = CountingDatabase(chronicle.db)
    (contacts,) = [e for e in builtin_exporters(counting, page_size=1000) if e.name == "contacts"]
    rows = contacts.rows(ExportQuery(tenant="default"))
    first = next(rows)
    # Only the first page has been read when the first row arrives.
    assert (first["email"], counting.reads) == ("p0000@example.com", 1)
    rest = list(rows)
    assert len(rest) == 2499
    assert counting.reads == 3  # 1000 + 1000 + 500: a short page ends the walk


# -- the export's life ----------------------------------------------------------------------------


def test_the_job_writes_the_file_once(h: Harness) -> None:
    app = h.app
    dispatch(app, "demo:noop")
    h.run()
    export = app.exports.request("jobs", "xlsx", {"status": "succeeded"}, tenant="default", by="op")
    assert export.job_id == export_job_id(export.id)
    with pytest.raises(InvalidTransitionError, match="is pending"):
        app.exports.download(export.id, tenant="default")

    h.run()  # the relay sends the export's job, a worker runs it

    stored = app.exports.get(export.id, tenant="default")
    assert (stored.status, stored.rows) == (ExportStatus.COMPLETED, 1)
    job = app.queries.get("default", export_job_id(export.id))
    assert job is not None
    assert job.status == "succeeded"
    assert job.result == {
        "export_id": str(export.id),
        "status": "completed",
        "rows": 1,
        "size": stored.size,
        "file": f"{export.id}.xlsx",
        "failure": None,
    }
    # A second message for the same job is skipped; running the command again writes nothing.
    h.executor.process(export_job_id(export.id))
    assert app.exports.run(export.id).rows == 1
    assert app.exports.get(export.id, tenant="default").version == stored.version
    h.follow()
    record = app.export_queries.get_export("default", export.id)
    assert record is not None
    assert (record.status, record.rows, record.size, record.filters) == (
        "completed",
        1,
        stored.size,
        {"status": "succeeded"},
    )


def test_a_failing_exporter_fails_the_export_and_its_job_says_why(h: Harness) -> None:
    app = h.app

    def broken(query: ExportQuery) -> Iterator[ExportRow]:
        yield {"x": 1}
        raise RuntimeError(f"cannot read the table for {query.tenant}")

    app.exporters.register(Exporter("broken", "", [ExportColumn("x", "X")], broken))
    export = app.exports.request("broken", "csv", {})
    h.run()

    stored = app.exports.get(export.id, tenant="default")
    assert stored.status is ExportStatus.FAILED
    assert stored.failure == "RuntimeError: cannot read the table for default"
    assert stored.attempts == 3  # each attempt of its job ran it again
    job = app.queries.get("default", export_job_id(export.id))
    assert job is not None
    assert (job.status, job.last_error_type) == ("failed", "RuntimeError")
    assert list((app.settings.files_dir / "exports").iterdir()) == []


def test_cancelling_the_waiting_job_fails_the_export(h: Harness) -> None:
    app = h.app
    export = app.exports.request("jobs", "csv", {})
    app.jobs.cancel(export_job_id(export.id), tenant="default", by="ops", reason="oops")
    h.follow()
    stored = app.exports.get(export.id, tenant="default")
    assert stored.status is ExportStatus.FAILED
    assert stored.failure is not None
    assert "was cancelled by ops: oops" in stored.failure


def test_retention_removes_the_file_and_the_export_says_so(h: Harness) -> None:
    app = h.app
    old = app.exports.request("jobs", "csv", {}, dispatch=False)
    app.exports.run(old.id)
    path = app.exports.download(old.id, tenant="default").path
    fresh = app.exports.request("jobs", "csv", {}, dispatch=False)
    app.exports.run(fresh.id)
    h.follow()
    finished = app.exports.get(old.id, tenant="default").finished_at
    assert finished is not None
    # The moment the old export's file reaches the retention; the fresh one finished after it.
    later = finished + timedelta(hours=app.settings.export_retention_hours)

    assert app.exports.expire(later) == 1

    assert not path.exists()
    stored = app.exports.get(old.id, tenant="default")
    assert stored.status is ExportStatus.EXPIRED
    with pytest.raises(GoneError, match="after the retention of 168 hours"):
        app.exports.download(old.id, tenant="default")
    assert app.exports.download(fresh.id, tenant="default").path.exists()
    h.follow()
    record = app.export_queries.get_export("default", old.id)
    assert record is not None
    assert (record.status, record.retention_hours) == ("expired", 168.0)
    assert app.exports.expire(later) == 0


def test_the_list_is_newest_first_per_tenant_with_a_cursor(h: Harness) -> None:
    app = h.app
    ids = [app.exports.request("jobs", "csv", {}, dispatch=False).id for _ in range(3)]
    app.exports.request("jobs", "csv", {}, tenant="other", dispatch=False)
    h.follow()
    page, cursor = app.export_queries.list_exports("default", limit=2, cursor=None)
    assert [row.id for row in page] == [ids[2], ids[1]]
    assert cursor is not None
    rest, end = app.export_queries.list_exports("default", limit=2, cursor=cursor)
    assert ([row.id for row in rest], end) == ([ids[0]], None)
    assert app.export_queries.get_export("other", ids[0]) is None


def test_the_read_model_rebuilds_to_the_same_rows(h: Harness) -> None:
    app = h.app
    done = app.exports.request("jobs", "csv", {"queue": "low"}, dispatch=False)
    app.exports.run(done.id)
    app.exports.request("contacts", "xlsx", {})
    h.follow()
    before, _ = app.export_queries.list_exports("default", limit=10, cursor=None)
    app.runners["exports"].rebuild()
    after, _ = app.export_queries.list_exports("default", limit=10, cursor=None)
    assert after == before
    assert [row.status for row in after] == ["pending", "completed"]
