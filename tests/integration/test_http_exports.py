"""The exports API over real storage (SQLite files and Postgres), through Litestar's TestClient."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.export import export_job_id
from interfaces.bootstrap import Chronicle
from tests.integration.conftest import api_client, bearer
from tests.integration.test_batches import Harness
from tests.integration.test_exports import add_contacts, read_xlsx
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

ACME = {"X-Chronicle-Tenant": "acme"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def h(chronicle: Chronicle) -> Harness:
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    return Harness(chronicle, queue)


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


def request_export(
    client: TestClient[Litestar], headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = client.post("/api/exports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


def test_request_run_and_download_a_csv(client: TestClient[Litestar], h: Harness) -> None:
    add_contacts(h.app.db, "acme", [("a@example.com", "=1+1", 3, "IT")])
    add_contacts(h.app.db, "default", [("b@example.com", "Default tenant", 4, "IT")])

    body = request_export(
        client, {**ACME, **bearer(h.app, "alice")}, exporter="contacts", format="csv"
    )

    export_id = body["id"]
    assert (body["status"], body["exporter"], body["format"], body["filters"]) == (
        "pending",
        "contacts",
        "csv",
        {},
    )
    assert (body["requested_by"], body["tenant"], body["projected"]) == (
        "token:alice",
        "acme",
        False,
    )
    assert body["job_id"] == str(export_job_id(UUID(export_id)))
    assert body["links"] == {
        "self": f"/api/exports/{export_id}",
        "download": None,
        "job": f"/api/jobs/{body['job_id']}",
    }
    early = client.get(f"/api/exports/{export_id}/download", headers=ACME)
    assert early.status_code == 409
    assert early.json()["message"].startswith(f"export {export_id} is pending")

    h.run()  # the relay sends the job, the worker writes the file, projections follow

    shown = client.get(f"/api/exports/{export_id}", headers=ACME).json()
    assert (shown["status"], shown["rows"], shown["projected"]) == ("completed", 1, True)
    assert shown["links"]["download"] == f"/api/exports/{export_id}/download"
    assert shown["expires_at"] is not None
    download = client.get(shown["links"]["download"], headers=ACME)
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "contacts-" in disposition
    assert ".csv" in disposition
    assert int(download.headers["content-length"]) == shown["size"]
    text = download.content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["Email", "Name", "Age", "Country", "Created at", "Updated at"],
        [
            "a@example.com",
            "'=1+1",
            "3",
            "IT",
            "2026-01-05T12:00:00+00:00",
            "2026-01-05T12:00:00+00:00",
        ],
    ]


def test_xlsx_download_has_the_spreadsheet_type(
    client: TestClient[Litestar], h: Harness, tmp_path: Path
) -> None:
    body = request_export(client, exporter="jobs", format="xlsx", filters={"status": "waiting"})
    h.run()
    download = client.get(f"/api/exports/{body['id']}/download")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == XLSX_TYPE
    assert ".xlsx" in download.headers["content-disposition"]
    path = tmp_path / "download.xlsx"
    path.write_bytes(download.content)
    assert read_xlsx(path)[0][:3] == ["Job", "Command line", "Queue"]


def test_list_is_newest_first_with_a_cursor(client: TestClient[Litestar], h: Harness) -> None:
    ids = [request_export(client, exporter="jobs")["id"] for _ in range(3)]
    request_export(client, ACME, exporter="jobs")
    h.follow()
    first = client.get("/api/exports", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    second = client.get("/api/exports", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [item["id"] for item in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    bad = client.get("/api/exports", params={"cursor": "nope"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"exporter": "contact"},
            "exporter",
            (
                "unknown exporter 'contact' (did you mean 'contacts'?); known exporters: contacts,"
                " failed-import-rows, failed-jobs, jobs, schedule-runs"
            ),
        ),
        (
            {"exporter": "jobs", "format": "pdf"},
            "format",
            "unknown export format 'pdf'; use csv or xlsx",
        ),
        (
            {"exporter": "jobs", "filters": {"stauts": "failed"}},
            "filters",
            (
                "unknown filter 'stauts' for exporter 'jobs' (did you mean 'status'?); its filters:"
                " status, queue, command, batch_id, schedule_id"
            ),
        ),
        (
            {"exporter": "jobs", "filters": {"status": "broken"}},
            "filters",
            (
                "filter 'status' of exporter 'jobs' must be one of waiting, running, succeeded,"
                " failed, cancelled, got 'broken'"
            ),
        ),
        (
            {"exporter": "failed-jobs", "filters": {"failed_from": "yesterday"}},
            "filters",
            (
                "filter 'failed_from' of exporter 'failed-jobs' must be an ISO-8601 time with a UTC"
                " offset (e.g. 2026-01-05T12:00:00Z), got 'yesterday'"
            ),
        ),
        (
            {"exporter": "failed-import-rows"},
            "filters",
            "exporter 'failed-import-rows' needs filter 'import_id'",
        ),
        (
            {"exporter": "schedule-runs", "filters": {"schedule_id": "12"}},
            "filters",
            "filter 'schedule_id' of exporter 'schedule-runs' must be a UUID, got '12'",
        ),
    ],
)
def test_bad_requests_are_422_naming_the_problem(
    client: TestClient[Litestar], body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post("/api/exports", json=body)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "validation_error", "message": message, "field": field}
    assert client.get("/api/exports").json()["items"] == []


def test_malformed_bodies_are_400(client: TestClient[Litestar]) -> None:
    unknown = client.post("/api/exports", json={"exporter": "jobs", "colour": "red"})
    assert unknown.status_code == 400
    assert "colour" in unknown.json()["message"]
    wrong = client.post("/api/exports", json={"exporter": "jobs", "filters": ["status"]})
    assert wrong.status_code == 400
    missing = client.post("/api/exports", json={"format": "csv"})
    assert missing.status_code == 400
    assert "exporter" in missing.json()["message"]


def test_other_tenants_and_unknown_exports_are_404(
    client: TestClient[Litestar], h: Harness
) -> None:
    body = request_export(client, ACME, exporter="jobs")
    h.run()
    for path in (f"/api/exports/{body['id']}", f"/api/exports/{body['id']}/download"):
        assert client.get(path).status_code == 404
        assert client.get(path, headers=ACME).status_code == 200
    missing = client.get(f"/api/exports/{uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["message"]
    assert client.get("/api/exports/12/download").status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/exports/..%2F..%2F..%2Fetc%2Fpasswd/download",
        "/api/exports/%2E%2E/download",
        "/api/exports/../../etc/passwd",
        "/api/exports/%2Fetc%2Fpasswd/download",
    ],
)
def test_downloads_cannot_leave_the_export_folder(client: TestClient[Litestar], path: str) -> None:
    response = client.get(path)
    assert response.status_code in {404, 422}
    assert b"root:" not in response.content


def test_failed_export_is_409_with_the_reason(client: TestClient[Litestar], h: Harness) -> None:
    body = request_export(client, exporter="jobs")
    h.app.jobs.cancel(export_job_id(UUID(body["id"])), tenant="default", by="ops", reason="no")
    h.follow()
    response = client.get(f"/api/exports/{body['id']}/download")
    assert response.status_code == 409
    assert "is failed: its job" in response.json()["message"]
    assert "cancelled by ops" in response.json()["message"]


def test_after_the_retention_the_download_is_410_and_the_file_gone(
    client: TestClient[Litestar], h: Harness
) -> None:
    body = request_export(client, exporter="jobs")
    h.run()
    export = h.app.exports.get(UUID(body["id"]), tenant="default")
    path = h.app.exports.download(export.id, tenant="default").path
    assert export.finished_at is not None
    h.app.exports.expire(export.finished_at + timedelta(hours=168))
    h.follow()

    response = client.get(f"/api/exports/{body['id']}/download")

    assert response.status_code == 410
    assert response.json()["error"] == "gone"
    assert "was removed on" in response.json()["message"]
    assert "after the retention of 168 hours" in response.json()["message"]
    assert not path.exists()
    shown = client.get(f"/api/exports/{body['id']}").json()
    assert (shown["status"], shown["retention_hours"], shown["links"]["download"]) == (
        "expired",
        168.0,
        None,
    )
    assert shown["expired_at"] is not None


def test_exporters_are_listed_with_columns_and_filters(client: TestClient[Litestar]) -> None:
    exporters = client.get("/api/exporters").json()
    assert [item["name"] for item in exporters] == [
        "contacts",
        "failed-import-rows",
        "failed-jobs",
        "jobs",
        "schedule-runs",
    ]
    rows = next(item for item in exporters if item["name"] == "failed-import-rows")
    assert [column["name"] for column in rows["columns"]] == ["import_id", "row", "error", "data"]
    assert rows["filters"] == [
        {
            "name": "import_id",
            "type": "uuid",
            "help": "The import whose rows failed.",
            "required": True,
            "choices": None,
        }
    ]


def test_openapi_documents_the_export_operations(client: TestClient[Litestar]) -> None:
    schema = client.get("/schema/openapi.json").json()
    operations = {
        operation["operationId"]
        for methods in schema["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {
        "requestExport",
        "listExports",
        "getExport",
        "downloadExport",
        "listExporters",
    } <= operations
    assert "exports" in {tag["name"] for tag in schema["tags"]}
