"""The batches API over real storage (SQLite files and Postgres), through Litestar's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.batch import CallbackKind, callback_job_id
from interfaces.bootstrap import Chronicle
from tests.integration.conftest import api_client, bearer
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

ACME = {"X-Chronicle-Tenant": "acme"}


@pytest.fixture
def h(chronicle: Chronicle) -> Harness:
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    return Harness(chronicle, queue)


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


def create(
    client: TestClient[Litestar], headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = client.post("/api/batches", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_then_follow_a_batch_to_its_end(
    client: TestClient[Litestar], h: Harness, chronicle: Chronicle
):
    response = client.post(
        "/api/batches",
        json={
            "name": "import",
            "jobs": [
                {"command_line": "demo:echo one"},
                {"command": "demo:echo", "arguments": ["two"], "options": {"upper": True}},
                {"command_line": "demo:noop", "queue": "high", "max_attempts": 1},
            ],
            "then": "demo:echo then",
            "finally": "demo:echo finally",
        },
        headers={**ACME, **bearer(chronicle, "alice")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    batch_id = body["id"]
    assert response.headers["location"] == f"/api/batches/{batch_id}"
    # Before the read model has caught up, the batch is built from its own events.
    assert (body["projected"], body["total"], body["pending"], body["progress"]) == (
        False,
        3,
        3,
        0,
    )
    assert body["created_by"] == "token:alice"
    assert body["callbacks"] == {
        "then": {"command_line": "demo:echo then", "job_id": None, "job": None},
        "finally": {"command_line": "demo:echo finally", "job_id": None, "job": None},
    }
    assert body["links"] == {
        "self": f"/api/batches/{batch_id}",
        "jobs": f"/api/jobs?batch_id={batch_id}",
    }
    h.follow()
    jobs = client.get(body["links"]["jobs"], headers=ACME).json()["items"]
    assert sorted(job["command_line"] for job in jobs) == [
        "demo:echo one",
        "demo:echo two --upper",
        "demo:noop",
    ]
    assert {job["requested_by"] for job in jobs} == {"token:alice"}
    h.run()
    detail = client.get(f"/api/batches/{batch_id}", headers=ACME).json()
    then_id = str(callback_job_id(UUID(batch_id), CallbackKind.THEN))
    assert detail["projected"] is True
    assert (detail["total"], detail["pending"], detail["processed"], detail["progress"]) == (
        3,
        0,
        3,
        100,
    )
    assert (detail["finished"], detail["cancelled"], detail["failed"]) == (True, False, 0)
    assert detail["finished_at"].endswith("Z")
    assert detail["callbacks"]["then"] == {
        "command_line": "demo:echo then",
        "job_id": then_id,
        "job": f"/api/jobs/{then_id}",
    }
    assert client.get(f"/api/jobs/{then_id}", headers=ACME).json()["status"] == "succeeded"
    # Other tenants see nothing.
    assert client.get(f"/api/batches/{batch_id}").status_code == 404
    assert client.get("/api/batches").json()["items"] == []


def test_jobs_may_be_plain_command_lines(client: TestClient[Litestar], h: Harness):
    """As the README says: jobs are command lines, or commands with arguments and options."""
    body = create(
        client,
        name="mixed",
        jobs=["demo:echo one", {"command": "demo:echo", "arguments": ["two"]}, "demo:noop"],
    )
    assert body["total"] == 3
    added = client.post(f"/api/batches/{body['id']}/jobs", json={"jobs": ["demo:echo three"]})
    assert added.status_code == 201, added.text
    h.follow()
    jobs = client.get(body["links"]["jobs"]).json()["items"]
    assert sorted(job["command_line"] for job in jobs) == [
        "demo:echo one",
        "demo:echo three",
        "demo:echo two",
        "demo:noop",
    ]
    bad = client.post("/api/batches", json={"name": "x", "jobs": ["demo:noop", "demo:echo"]})
    assert (bad.status_code, bad.json()["field"]) == (422, "jobs[1].arguments.message")
    assert client.post("/api/batches", json={"name": "x", "jobs": [5]}).status_code == 400


def test_list_pages_newest_first(client: TestClient[Litestar], h: Harness):
    ids = [
        create(client, name=f"b{i}", jobs=[{"command_line": "demo:noop"}])["id"] for i in range(3)
    ]
    h.follow()
    first = client.get("/api/batches", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    second = client.get("/api/batches", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([item["id"] for item in second["items"]], second["next_cursor"]) == ([ids[0]], None)
    assert first["items"][0]["projected"] is True
    bad = client.get("/api/batches", params={"cursor": "nope"})
    assert (bad.status_code, bad.json()["field"]) == (422, "cursor")
    assert client.get("/api/batches", params={"limit": 0}).status_code == 400


def test_cancel_add_jobs_and_retry_failed(
    client: TestClient[Litestar], h: Harness, chronicle: Chronicle
):
    batch_id = create(
        client,
        name="mail",
        jobs=[{"command_line": "demo:echo a"}, {"command_line": "demo:echo b"}],
        catch="demo:echo catch",
    )["id"]
    added = client.post(
        f"/api/batches/{batch_id}/jobs",
        json={"jobs": [{"command_line": "demo:echo c"}]},
        headers=bearer(chronicle, "carol"),
    )
    assert added.status_code == 201, added.text
    assert len(added.json()["job_ids"]) == 1
    response = client.post(f"/api/batches/{batch_id}/cancel", json={"reason": "wrong list"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["cancelled"], body["cancelled_by"], body["cancel_reason"]) == (
        True,
        "token:tester",
        "wrong list",
    )
    assert body["total"] == 3
    h.run()
    body = client.get(f"/api/batches/{batch_id}").json()
    assert (body["cancelled_jobs"], body["processed"], body["finished"]) == (3, 3, True)
    again = client.post(f"/api/batches/{batch_id}/cancel")
    assert (again.status_code, again.json()["error"]) == (409, "conflict")
    closed = client.post(
        f"/api/batches/{batch_id}/jobs", json={"jobs": [{"command_line": "demo:noop"}]}
    )
    assert closed.status_code == 409
    assert "cancelled" in closed.json()["message"]
    retry = client.post(f"/api/batches/{batch_id}/retry-failed")
    assert retry.status_code == 409

    tolerant = create(
        client,
        name="flaky",
        jobs=[{"command_line": "demo:fail --times=1", "max_attempts": 1}],
        allow_failures=True,
    )["id"]
    h.run()
    assert client.get(f"/api/batches/{tolerant}").json()["failed"] == 1
    retried = client.post(f"/api/batches/{tolerant}/retry-failed")
    assert retried.status_code == 202, retried.text
    assert retried.json()["retried"] == 1
    h.run()
    body = client.get(f"/api/batches/{tolerant}").json()
    assert (body["failed"], body["succeeded"], body["progress"]) == (0, 1, 100)
    assert client.post(f"/api/batches/{tolerant}/retry-failed").json()["retried"] == 0


@sqlite_only
def test_bad_input_is_a_4xx_naming_the_problem(client: TestClient[Litestar]):
    def problem(body: Any, path: str = "/api/batches") -> tuple[int, str | None, str]:
        response = client.post(path, json=body)
        payload = response.json()
        return response.status_code, payload.get("field"), payload["message"]

    status, field, message = problem(
        {
            "name": "x",
            "jobs": [{"command_line": "demo:noop"}] * 3 + [{"command_line": "demo:echo 'open"}],
        }
    )
    assert (status, field) == (422, "jobs[3].command_line")
    assert message.startswith("jobs[3]: ")
    status, field, _ = problem({"name": "x", "jobs": [{"command": "demo:echo"}]})
    assert (status, field) == (422, "jobs[0].arguments.message")
    status, field, _ = problem({"name": "x", "jobs": [{"command_line": "demo:noop", "queue": "x"}]})
    assert (status, field) == (422, "jobs[0].queue")
    assert problem({"name": "x", "jobs": []})[:2] == (422, "jobs")
    assert problem({"name": "", "jobs": [{"command_line": "demo:noop"}]})[:2] == (422, "name")
    status, field, _ = problem(
        {"name": "x", "jobs": [{"command_line": "demo:noop"}], "finally": "nope:nope"}
    )
    assert (status, field) == (422, "finally")
    assert problem({"name": "x"})[0] == 400
    assert problem({"name": "x", "jobs": [{"command_line": "demo:noop", "color": 1}]})[0] == 400
    assert problem({"name": "x", "jobs": [], "after": "demo:noop"})[0] == 400
    missing = uuid4()
    for path in (f"/api/batches/{missing}/cancel", f"/api/batches/{missing}/retry-failed"):
        assert client.post(path).status_code == 404
    assert client.get(f"/api/batches/{missing}").status_code == 404
    assert (
        problem({"jobs": [{"command_line": "demo:noop"}]}, f"/api/batches/{missing}/jobs")[0] == 404
    )
    bad = client.get("/api/batches/not-a-uuid")
    assert (bad.status_code, bad.json()["field"]) == (422, "id")
    # A job's id is not a batch's.
    job = client.post("/api/jobs", json={"command_line": "demo:noop"}).json()["id"]
    assert client.get(f"/api/batches/{job}").status_code == 404
    schema = client.get("/schema/openapi.json").json()
    operations = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert {
        "createBatch",
        "listBatches",
        "getBatch",
        "addBatchJobs",
        "cancelBatch",
        "retryBatchFailedJobs",
    } <= operations
