"""The imports API over real storage: upload, follow, failed rows (JSON and CSV), retry with
corrections, the failed-rows CSV round trip, limits and bad input."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from interfaces.bootstrap import Chronicle
from tests.integration.conftest import api_client, bearer
from tests.integration.test_imports import (
    CONTACTS,
    FORMULA_NAMES,
    contact_names,
    fix_emails,
    fix_failed_rows_csv,
    formula_names_csv,
    marked_names,
)
from tests.integration.test_pipeline import project, run_all
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

ACME = {"X-Chronicle-Tenant": "acme"}


@pytest.fixture
def queue(chronicle: Chronicle) -> FakeQueue:
    fake = FakeQueue()
    chronicle.add_outbox(fake)
    return fake


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


def upload(
    client: TestClient[Litestar],
    text: str | bytes,
    *,
    headers: dict[str, str] | None = None,
    name: str = "contacts.csv",
    **form: Any,
) -> Any:
    content = text.encode() if isinstance(text, str) else text
    return client.post(
        "/api/imports",
        files={"file": (name, content, "text/csv")},
        data={"importer": "contacts", **form},
        headers=headers,
    )


def test_upload_follow_and_fix_an_import(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    response = upload(
        client, CONTACTS, headers={**ACME, **bearer(chronicle, "alice")}, chunk_size="2"
    )
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["status"] == "processing"
    assert started["requested_by"] == "token:alice"
    assert response.headers["location"] == f"/api/imports/{started['id']}"
    run_all(chronicle, queue)
    project(chronicle)
    path = started["links"]["self"]
    detail = client.get(path, headers=ACME).json()
    assert {k: detail[k] for k in ("status", "rows", "succeeded", "failed", "progress")} == {
        "status": "completed_with_failures",
        "rows": 7,
        "succeeded": 2,
        "failed": 5,
        "progress": 100.0,
    }
    assert detail["duration_seconds"] is not None
    assert client.get(path).status_code == 404  # another tenant's import
    listed = client.get("/api/imports?status=completed_with_failures", headers=ACME).json()
    assert [item["id"] for item in listed["items"]] == [started["id"]]

    page = client.get(f"{path}/failed-rows?limit=2", headers=ACME).json()
    assert [row["number"] for row in page["items"]] == [3, 4]
    assert page["items"][0]["errors"] == {
        "email": "must be a valid email address, got 'not-an-email'"
    }
    rest = client.get(f"{path}/failed-rows?after={page['next_after']}", headers=ACME).json()
    assert [row["number"] for row in rest["items"]] == [5, 6, 7]
    assert rest["next_after"] is None

    download = client.get(f"{path}/failed-rows.csv", headers=ACME)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "contacts-failed-rows.csv" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0] == ["row", "name", "email", "age", "country", "error"]
    assert rows[1] == [
        "3",
        "Bob",
        "not-an-email",
        "41",
        "US",
        "email: must be a valid email address, got 'not-an-email'",
    ]
    assert [row[0] for row in rows[1:]] == ["3", "4", "5", "6", "7"]

    retried = client.post(
        f"{path}/retry-failed",
        json={"corrections": {"3": {"email": "bob@example.com"}, "4": {"age": "44"}}},
        headers=ACME,
    )
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["passed"] == [3, 4]
    assert [row["number"] for row in body["still_failing"]] == [5, 6, 7]
    assert body["import"]["failed"] == 3
    project(chronicle)
    left = client.get(f"{path}/failed-rows", headers=ACME).json()
    assert [row["number"] for row in left["items"]] == [5, 6, 7]
    passed = client.get(f"{path}/failed-rows?include_passed=true", headers=ACME).json()
    assert [(row["number"], row["passed"]) for row in passed["items"]][:2] == [
        (3, True),
        (4, True),
    ]


def test_the_failed_rows_csv_fixed_and_uploaded_again_imports_every_row(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    first = upload(client, CONTACTS).json()
    run_all(chronicle, queue)
    project(chronicle)
    download = client.get(f"{first['links']['failed_rows_csv']}").content.decode("utf-8-sig")
    second = upload(client, fix_failed_rows_csv(download), name="fixed.csv").json()
    run_all(chronicle, queue)
    project(chronicle)
    detail = client.get(second["links"]["self"]).json()
    assert (detail["status"], detail["rows"], detail["succeeded"]) == ("completed", 5, 5)


def test_upload_limit_gives_413_with_a_message(chronicle: Chronicle):
    small = dataclasses.replace(chronicle.settings, import_max_bytes=2048)
    chronicle.settings = small
    chronicle.imports.max_bytes = 2048
    big = "name,email\n" + "".join(f"P{n},p{n}@example.com\n" for n in range(200))
    with api_client(chronicle) as client:
        response = upload(client, big)
        assert response.status_code == 413, response.text
        assert "larger than the upload limit of 2048 bytes" in response.json()["message"]
        assert upload(client, big[:1500]).status_code == 201
    assert list((chronicle.settings.files_dir / "imports").glob(".*.part")) == []


@pytest.mark.parametrize(
    ("form", "content", "field", "message"),
    [
        ({"importer": "people"}, CONTACTS, "importer", "unknown importer 'people'"),
        ({"mapping": "mail=email"}, CONTACTS, "mapping", "CSV column 'mail'"),
        ({"mapping": '{"email": "e-mail"}'}, CONTACTS, "mapping", "no column 'e-mail'"),
        ({"mapping": "nonsense"}, CONTACTS, "mapping", "must look like"),
        ({"options": "{bad"}, CONTACTS, "options", "not valid JSON"),
        ({}, b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "file", "not a CSV text file"),
        ({}, b"\xff\xfename\n", "file", "not valid utf-8"),
        ({"delimiter": "ab"}, CONTACTS, "delimiter", "invalid delimiter"),
    ],
)
def test_bad_uploads_are_4xx_naming_the_problem(
    client: TestClient[Litestar],
    form: dict[str, str],
    content: str | bytes,
    field: str,
    message: str,
):
    response = upload(client, content, **form)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field
    assert message in body["message"]


def test_missing_columns_are_a_failed_import_that_names_them(client: TestClient[Litestar]):
    response = upload(client, "name,mail\nAda,ada@example.com\n")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed"
    assert "lacks required columns for importer 'contacts': email" in body["failure"]


def test_retry_is_refused_while_running_and_for_unknown_rows(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    started = upload(client, CONTACTS).json()
    path = started["links"]["self"]
    response = client.post(f"{path}/retry-failed", json={})
    assert response.status_code == 409
    assert "processing" in response.json()["message"]
    run_all(chronicle, queue)
    response = client.post(f"{path}/retry-failed", json={"rows": [2]})
    assert response.status_code == 422
    assert "row 2 is not a failed row" in response.json()["message"]
    response = client.post(
        f"{path}/retry-failed", json={"corrections": {"3": {"mail": "x@example.com"}}}
    )
    assert response.status_code == 422
    assert "columns the file does not have: mail" in response.json()["message"]
    assert client.get("/api/imports/not-a-uuid").status_code == 422


def test_cancel_an_import_then_it_ends_failed_saying_who(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    started = upload(client, CONTACTS, headers=ACME).json()
    path = started["links"]["self"]
    response = client.post(
        f"{path}/cancel",
        json={"reason": "wrong file"},
        headers={**ACME, **bearer(chronicle, "alice")},
    )
    assert response.status_code == 202, response.text
    run_all(chronicle, queue)  # the job's message arrives: the job is cancelled, nothing runs
    chronicle.runners["system_jobs"].catch_up()
    project(chronicle)
    body = client.get(path, headers=ACME).json()
    assert body["status"] == "failed"
    assert "cancelled by token:alice: wrong file" in body["failure"]
    assert body["rows"] == 0
    again = client.post(f"{path}/cancel", json={}, headers=ACME)
    assert again.status_code == 409
    assert "only a processing import can be cancelled" in again.json()["message"]


def test_the_failed_rows_csv_round_trip_gives_back_the_values_typed(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    first = upload(client, formula_names_csv()).json()
    run_all(chronicle, queue)
    project(chronicle)
    download = client.get(first["links"]["failed_rows_csv"]).content.decode("utf-8-sig")
    # The download keeps a spreadsheet from running them; the `'` is only a mark.
    assert marked_names(download) == [
        "'-Minus Sign",
        "'+39 06 1234",
        "'=not a formula",
        "'@handle",
        "'Tis the season",
        "'quoted'",
        "''=doubled",
    ]
    second = upload(client, fix_emails(download), name="fixed.csv").json()
    run_all(chronicle, queue)
    project(chronicle)
    detail = client.get(second["links"]["self"]).json()
    assert (detail["status"], detail["succeeded"]) == ("completed", len(FORMULA_NAMES))
    assert contact_names(chronicle) == FORMULA_NAMES


def test_retrying_rows_that_are_not_failing_is_a_422_naming_them_and_retries_none(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    path = upload(client, CONTACTS).json()["links"]["self"]
    run_all(chronicle, queue)
    fixed = client.post(
        f"{path}/retry-failed", json={"corrections": {"3": {"email": "bob@example.com"}}}
    )
    assert fixed.json()["passed"] == [3]
    for body, named in [
        ({"rows": [3, 4]}, "row 3 is"),  # passed in the retry above
        ({"corrections": {"2": {"age": "1"}, "4": {"age": "20"}}}, "row 2 is"),  # never failed
        ({"corrections": {"4": {"age": "20"}, "99": {"age": "1"}}}, "row 99 is"),  # no such row
    ]:
        response = client.post(f"{path}/retry-failed", json=body)
        assert response.status_code == 422, response.text
        assert f"{named} not a failed row" in response.json()["message"]
        assert "nothing was retried" in response.json()["message"]
    assert client.get(path).json()["failed"] == 4


def test_cancel_takes_no_body_an_empty_body_or_a_reason(
    client: TestClient[Litestar], chronicle: Chronicle
):
    requests: list[dict[str, Any]] = [
        {},
        {"content": b"", "headers": {"Content-Type": "application/json"}},
        {"json": {}},
        {"json": {"reason": "wrong file"}},
    ]
    for request in requests:
        path = upload(client, CONTACTS).json()["links"]["self"]
        response = client.post(f"{path}/cancel", **request)
        assert response.status_code == 202, (request, response.text)
    chronicle.runners["system_jobs"].catch_up()
    failure = chronicle.imports.get(UUID(path.rsplit("/", 1)[1])).failure
    assert failure is not None
    assert failure.endswith("cancelled by token:tester: wrong file")
    wrong = client.post(f"{path}/cancel", json={"reasons": "x"})
    assert wrong.status_code == 400, wrong.text


def test_the_failed_rows_csv_is_text_csv_in_its_header_and_the_openapi_document(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    started = upload(client, CONTACTS).json()
    run_all(chronicle, queue)
    project(chronicle)
    download = client.get(started["links"]["failed_rows_csv"])
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    schema = client.get("/schema/openapi.json").json()
    operation = schema["paths"]["/api/imports/{import_id}/failed-rows.csv"]["get"]
    assert operation["responses"]["200"]["content"] == {"text/csv": {"schema": {"type": "string"}}}


def test_an_id_that_is_not_a_uuid_is_named_with_its_article(client: TestClient[Litestar]):
    response = client.get("/api/imports/not-a-uuid")
    assert response.status_code == 422
    assert "'not-a-uuid' is not an import id (a UUID)" in response.json()["message"]


def test_corrections_are_keyed_by_the_files_own_column_names(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    text = "name,E-mail\nAda,ada@example.com\nBob,not-an-email\n"
    path = upload(client, text, mapping="E-mail=email").json()["links"]["self"]
    run_all(chronicle, queue)
    by_importer_column = client.post(
        f"{path}/retry-failed", json={"corrections": {"3": {"email": "bob@example.com"}}}
    )
    assert by_importer_column.status_code == 422
    assert (
        "columns the file does not have: email (its columns: name, E-mail)"
        in (by_importer_column.json()["message"])
    )
    by_csv_column = client.post(
        f"{path}/retry-failed", json={"corrections": {"3": {"E-mail": "bob@example.com"}}}
    )
    assert by_csv_column.status_code == 200, by_csv_column.text
    assert by_csv_column.json()["passed"] == [3]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_out_of_range_numbers_and_deep_json_fields_are_4xx(client: TestClient[Litestar]):
    # Once a 500 (OverflowError): every integer parameter has bounds, stated in the schema.
    response = client.get(f"/api/imports/{uuid4()}/failed-rows", params={"after": 2**63})
    assert (response.status_code, response.json()["field"]) == (400, "after")
    assert "<= 2147483647" in response.json()["message"]
    # Once a 500 (RecursionError): JSON in form fields has the JSON bodies' depth limit.
    deep = "[" * 100_000 + "]" * 100_000
    for field in ("options", "mapping"):
        response = upload(
            client, "name,email\nAda,ada@example.com\n", **{field: '{"a": ' + deep + "}"}
        )
        assert response.status_code == 422, response.text
        assert response.json() == {
            "error": "validation_error",
            "message": f"{field} is nested deeper than 32 levels of lists and objects",
            "field": field,
        }
