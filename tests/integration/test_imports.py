"""Imports on real storage: a file with known bad rows, exact row numbers and messages, the
failed-rows round trip, a crash mid-import, a failed import that says why."""

from __future__ import annotations

import csv
import io
import itertools
from uuid import UUID

import pytest

from application.commands import CommandCancelledError, CommandContext
from application.imports.service import ImportRequest, import_job_id
from application.imports.view import ImportFilter
from domain.data_import import ImportStatus
from domain.shared import ValidationError
from infrastructure.contacts import SqlContactStore
from interfaces.bootstrap import Chronicle
from tests.integration.test_pipeline import project, run_all
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

CONTACTS = (
    "\ufeffname,email,age,country\r\n"
    "Ada,ada@example.com,36,GB\r\n"  # row 2
    "Bob,not-an-email,41,US\r\n"  # row 3
    'Eve,eve@example.com,200,"IT"\r\n'  # row 4
    "Ann,ADA@example.com,,\r\n"  # row 5: duplicate of row 2
    ",nameless@example.com,3,XX\r\n"  # row 6: name required, bad country
    "Zed,zed@example.com,7\r\n"  # row 7: too few fields
    '"Multi\nline",multi@example.com,,de\r\n'  # rows 8-9
)


#: What an operator types into the failed-rows CSV of CONTACTS to make every row pass.
FIXES = {
    "3": {"email": "bob@example.com"},
    "4": {"age": "20"},
    "5": {"email": "ann@example.com"},
    "6": {"name": "Nameless", "country": "NL"},
    "7": {"country": "FR"},
}


def fix_failed_rows_csv(text: str) -> str:
    """The failed-rows CSV of CONTACTS with FIXES applied, as a spreadsheet would save it."""
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    for row in rows:
        row.update(FIXES[row["row"]])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


#: Names a spreadsheet would run as formulas (the failed-rows CSV marks them with `'`) and names
#: that merely start with `'`; every row fails on its email, so each goes round the failed-rows
#: CSV. Rows 2 to 8.
FORMULA_NAMES = [
    "-Minus Sign",
    "+39 06 1234",
    "=not a formula",
    "@handle",
    "'Tis the season",
    "'quoted'",
    "''=doubled",
]


def formula_names_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "email"])
    writer.writerows([name, "no-email"] for name in FORMULA_NAMES)
    return out.getvalue()


def fix_emails(text: str) -> str:
    """The failed-rows CSV of `formula_names_csv()` with only its emails fixed, as a user would."""
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    for row in rows:
        row["email"] = f"p{row['row']}@example.com"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def marked_names(text: str) -> list[str]:
    """The names in a failed-rows CSV, as written."""
    return [row["name"] for row in csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))]


def contact_names(app: Chronicle) -> list[str]:
    """The contacts' names by row (their email is p{row}@example.com)."""
    with app.db.transaction() as s:
        stored = {
            row["email"]: row["name"] for row in s.fetchall("SELECT name, email FROM contacts")
        }
    return [stored.get(f"p{row}@example.com", "") for row in range(2, 2 + len(FORMULA_NAMES))]


def start(app: Chronicle, text: str, **fields: object) -> UUID:
    request = ImportRequest(importer="contacts", file_name="contacts.csv", by="ops", **fields)  # type: ignore[arg-type]
    return app.imports.start(request, io.BytesIO(text.encode())).id


def test_an_import_keeps_every_failed_row_with_its_error(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    import_id = start(chronicle, CONTACTS, chunk_size=3)
    run_all(chronicle, queue)
    project(chronicle)
    row = chronicle.import_queries.get_import("default", import_id)
    assert row is not None
    assert (row.status, row.rows, row.succeeded, row.failed) == (
        ImportStatus.COMPLETED_WITH_FAILURES,
        7,
        2,
        5,
    )
    assert row.progress == 100.0
    assert row.chunks == 3
    failed = chronicle.import_queries.failed_rows("default", import_id, limit=100)
    assert [(r.number, r.error) for r in failed] == [
        (3, "email: must be a valid email address, got 'not-an-email'"),
        (4, "age: must be an integer between 0 and 150, got '200'"),
        (5, "email: duplicate of row 2"),
        (
            6,
            (
                "name: is required; country: must be an ISO 3166-1 alpha-2 country code such"
                " as 'DE' or 'US', got 'XX'"
            ),
        ),
        (7, "expected 4 fields, got 3"),
    ]
    assert failed[4].data == {"name": "Zed", "email": "zed@example.com", "age": "7"}
    assert SqlContactStore(chronicle.db).count() == 2


def test_failed_rows_pass_once_corrected(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    import_id = start(chronicle, CONTACTS)
    run_all(chronicle, queue)
    outcome = chronicle.imports.retry_failed(
        import_id,
        tenant="default",
        by="ops",
        corrections={
            3: {"email": "bob@example.com"},
            4: {"age": "20"},
            5: {"email": "ann@example.com"},
            6: {"name": "Nameless", "country": "NL"},
        },
    )
    assert outcome.passed == [3, 4, 5, 6]
    assert [row.number for row in outcome.still_failing] == [7]
    outcome = chronicle.imports.retry_failed(
        import_id, tenant="default", by="ops", corrections={7: {"country": "FR"}}
    )
    assert outcome.passed == [7]
    project(chronicle)
    row = chronicle.import_queries.get_import("default", import_id)
    assert row is not None
    assert (row.status, row.succeeded, row.failed) == (ImportStatus.COMPLETED, 7, 0)
    assert chronicle.import_queries.failed_rows("default", import_id, limit=10) == []
    assert SqlContactStore(chronicle.db).count() == 7


def test_rows_or_corrections_that_are_not_failing_rows_retry_nothing(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    import_id = start(chronicle, CONTACTS)
    run_all(chronicle, queue)
    fixed = chronicle.imports.retry_failed(
        import_id, tenant="default", by="ops", corrections={3: {"email": "bob@example.com"}}
    )
    assert fixed.passed == [3]
    before = chronicle.imports.get(import_id)
    attempts: list[tuple[dict[int, dict[str, str]] | None, list[int] | None, str]] = [
        ({2: {"age": "1"}, 4: {"age": "20"}}, None, "row 2 is not a failed row"),  # never failed
        ({3: {"age": "1"}, 4: {"age": "20"}}, None, "row 3 is not a failed row"),  # passed
        (None, [3, 4, 99], "rows 3, 99 are not failed rows"),
        ({4: {"age": "20"}, 99: {"age": "1"}}, [4], "row 99 is not a failed row"),
    ]
    for corrections, rows, named in attempts:
        with pytest.raises(ValidationError) as caught:
            chronicle.imports.retry_failed(
                import_id, tenant="default", by="ops", corrections=corrections, rows=rows
            )
        assert f"{named} of import {import_id}" in str(caught.value)
        assert "nothing was retried" in str(caught.value)
    after = chronicle.imports.get(import_id)
    assert (after.version, after.failed, sorted(after.failing)) == (before.version, 4, [4, 5, 6, 7])


def test_a_file_without_required_columns_fails_and_says_which(chronicle: Chronicle):
    import_id = start(chronicle, "name,mail\nAda,ada@example.com\n")
    project(chronicle)
    row = chronicle.import_queries.get_import("default", import_id)
    assert row is not None
    assert row.status == ImportStatus.FAILED
    assert row.failure is not None
    assert "lacks required columns for importer 'contacts': email" in row.failure
    listed, _ = chronicle.import_queries.list_imports(ImportFilter("default"), limit=10)
    assert [r.id for r in listed] == [import_id]


@pytest.mark.parametrize(
    ("fields", "text", "message"),
    [
        (
            {"importer": "contact"},
            CONTACTS,
            "unknown importer 'contact' (did you mean 'contacts'?)",
        ),
        ({"mapping": {"mail": "email"}}, CONTACTS, "mapping names CSV column 'mail'"),
        ({"mapping": {"email": "e_mail"}}, CONTACTS, "importer 'contacts' has no column 'e_mail'"),
        ({}, "\x89PNG\r\n\x1a\n\x00\x00", "not a CSV text file"),
        ({}, "", "the file is empty"),
        ({"options": {"update": True}}, CONTACTS, "has no option 'update'"),
    ],
)
def test_bad_requests_are_refused_and_leave_nothing(
    chronicle: Chronicle, fields: dict[str, object], text: str, message: str
):
    request = ImportRequest(
        **{"importer": "contacts", "file_name": "x.csv", **fields}  # type: ignore[arg-type]
    )
    data = text.encode("latin-1") if text.startswith("\x89") else text.encode()
    with pytest.raises(ValidationError) as caught:
        chronicle.imports.start(request, io.BytesIO(data))
    assert message in str(caught.value)
    project(chronicle)
    assert chronicle.import_queries.list_imports(ImportFilter("default"), limit=10) == ([], None)
    assert list((chronicle.settings.files_dir / "imports").glob("*")) == []


def test_a_crashed_import_resumes_after_its_last_recorded_chunk(chronicle: Chronicle):
    """The worker dies while writing chunk 2: chunks 0 and 1 are recorded, chunk 2's rows are in
    the contacts table but not recorded. The retried job finishes with exact totals."""
    lines = ["name,email,age,country"]
    lines += [f"P{n},p{n}@example.com,{n % 100}," for n in range(2, 52)]
    lines[10] = "P10,broken,1,"  # row 11 fails
    text = "\n".join(lines) + "\n"
    import_id = start(chronicle, text, chunk_size=10)
    importer = chronicle.imports.importers.get("contacts")
    calls = {"n": 0}
    original = importer.handler

    def crash_on_third(rows, context):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        result = original(rows, context)
        if calls["n"] == 3:
            raise SystemExit("worker killed")  # the chunk's rows are written, not recorded
        return result

    object.__setattr__(importer, "handler", crash_on_third)
    with pytest.raises(SystemExit):
        chronicle.imports.run(import_id)
    current = chronicle.imports.get(import_id)
    assert current.chunks == {0, 1}
    object.__setattr__(importer, "handler", original)
    chronicle.imports.run(import_id)
    finished = chronicle.imports.get(import_id)
    assert (finished.status, finished.rows, finished.succeeded, finished.failed) == (
        ImportStatus.COMPLETED_WITH_FAILURES,
        50,
        49,
        1,
    )
    assert SqlContactStore(chronicle.db).count() == 49
    assert import_job_id(import_id) != import_id


def test_an_import_whose_job_gives_up_ends_failed_with_the_reason(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    importer = chronicle.imports.importers.get("contacts")
    original = importer.handler

    def broken(rows, context):  # type: ignore[no-untyped-def]
        raise RuntimeError("the contacts database is down")

    object.__setattr__(importer, "handler", broken)
    try:
        import_id = start(chronicle, CONTACTS)
        run_all(chronicle, queue)
    finally:
        object.__setattr__(importer, "handler", original)
    assert chronicle.imports.get(import_id).status is ImportStatus.PROCESSING
    chronicle.runners["system_jobs"].catch_up()
    failed = chronicle.imports.get(import_id)
    assert failed.status is ImportStatus.FAILED
    assert failed.failure is not None
    assert "gave up after 5 attempts" in failed.failure
    assert "the contacts database is down" in failed.failure


def test_cancelling_the_import_job_fails_the_import(chronicle: Chronicle):
    import_id = start(chronicle, CONTACTS)
    chronicle.jobs.cancel(import_job_id(import_id), tenant="default", by="ops", reason="wrong file")
    chronicle.runners["system_jobs"].catch_up()
    failed = chronicle.imports.get(import_id)
    assert failed.status is ImportStatus.FAILED
    assert failed.failure is not None
    assert "cancelled by ops: wrong file" in failed.failure
    # The job's message may still arrive: the import is not run any more.
    assert chronicle.imports.run(import_id)["status"] == "failed"
    assert SqlContactStore(chronicle.db).count() == 0


def test_a_running_import_stops_between_chunks_when_its_job_is_cancelled(chronicle: Chronicle):
    import_id = start(chronicle, CONTACTS, chunk_size=2)
    asked = iter([False, True])
    clock = itertools.count(step=1.0)  # each look at cancellation is a second later
    context = CommandContext(
        job_id=import_job_id(import_id),
        attempt=1,
        is_cancelled=lambda: next(asked, True),
        monotonic=lambda: float(next(clock)),
    )
    with pytest.raises(CommandCancelledError):
        chronicle.imports.run(import_id, context)
    current = chronicle.imports.get(import_id)
    assert current.chunks == {0}
    assert current.status is ImportStatus.PROCESSING  # until the watcher sees the job cancelled
