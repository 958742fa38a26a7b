"""The REST API over real storage (SQLite files and Postgres), through Litestar's TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
import structlog
from litestar import Litestar
from litestar.testing import TestClient

from application.jobs import DispatchRequest
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from tests.integration.conftest import api_client, bearer
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

# Input checks do not depend on the storage: run them on SQLite only, to keep the suite fast.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

ACME = {"X-Chronicle-Tenant": "acme"}


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


@pytest.fixture
def queue(chronicle: Chronicle) -> FakeQueue:
    fake = FakeQueue()
    chronicle.add_outbox(fake)
    return fake


def project(app: Chronicle) -> None:
    for runner in app.projection_runners():
        runner.catch_up()


def run_all(app: Chronicle, queue: FakeQueue) -> None:
    """Relay every pending dispatch and run each message once, until nothing is left."""
    executor = app.executor(queue, worker_id="test-worker")
    app.runners["outbox"].catch_up()
    while queue.sent:
        for job_id, _, _ in queue.take():
            executor.process(job_id)
        app.runners["outbox"].catch_up()


def dispatch(
    client: TestClient[Litestar], headers: dict[str, str] | None = None, **body: Any
) -> str:
    response = client.post("/api/jobs", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# -- dispatch and detail ----------------------------------------------------------------------


def test_dispatch_answers_201_and_the_job_is_readable_before_projection(
    client: TestClient[Litestar], chronicle: Chronicle
):
    response = client.post(
        "/api/jobs",
        json={
            "command": "demo:echo",
            "arguments": {"message": "hi there"},
            "options": {"upper": True},
        },
        headers=bearer(chronicle, "bob"),
    )
    assert response.status_code == 201
    body = response.json()
    job_id = body["id"]
    assert body == {
        "id": job_id,
        "status": "waiting",
        "command_line": "demo:echo 'hi there' --upper",
        "queue": "default",
        "links": {"self": f"/api/jobs/{job_id}"},
    }
    assert response.headers["location"] == f"/api/jobs/{job_id}"

    # The read model has not run: the job is built from the event store, never a 404.
    early = client.get(response.headers["location"])
    assert early.status_code == 200
    job = early.json()
    assert (job["projected"], job["seq"], job["status"]) == (False, None, "waiting")
    assert job["requested_by"] == "token:bob"
    assert job["arguments"] == {"message": "hi there"}
    assert [(e["event"], e["actor"], e["position"]) for e in job["timeline"]] == [
        ("dispatched", "token:bob", None)
    ]

    project(chronicle)
    projected = client.get(f"/api/jobs/{job_id}").json()
    assert projected["projected"] is True
    assert isinstance(projected["seq"], int)
    assert isinstance(projected["timeline"][0]["position"], int)
    # Both answers have the same shape and values, apart from what only projection knows.
    for key in ("seq", "projected", "timeline"):
        job.pop(key)
        projected.pop(key)
    assert job == projected


def test_command_line_dispatch_with_queue_and_not_before(
    client: TestClient[Litestar], chronicle: Chronicle
):
    # not_before follows delay_seconds' rule: at most 365 days ahead.
    due = (datetime.now(UTC) + timedelta(days=300)).replace(microsecond=0)
    response = client.post(
        "/api/jobs",
        json={
            "command_line": "demo:sleep --seconds=0",
            "queue": "high",
            "not_before": due.astimezone(timezone(timedelta(hours=2))).isoformat(),
            "max_attempts": 5,
            "timeout_seconds": 30,
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["queue"] == "high"
    early = client.get(response.headers["location"]).json()
    project(chronicle)
    job = client.get(response.headers["location"]).json()
    assert early["timeline"][0]["details"] == job["timeline"][0]["details"]
    assert job["timeline"][0]["details"]["not_before"] == due.isoformat()
    assert job["available_at"] == due.isoformat().replace("+00:00", "Z")
    assert (job["delayed"], job["max_attempts"], job["timeout_seconds"]) == (True, 5, 30.0)


def test_full_flow_dispatch_run_project_inspect(
    client: TestClient[Litestar], chronicle: Chronicle, queue: FakeQueue
):
    ok = dispatch(client, command="demo:echo", arguments=["hello"])
    bad = dispatch(
        client,
        command="demo:fail",
        options={"times": 5},
        max_attempts=2,
        backoff_seconds=0,
        queue="low",
    )
    run_all(chronicle, queue)
    project(chronicle)

    job = client.get(f"/api/jobs/{ok}").json()
    assert (job["status"], job["attempts"], job["output"]) == ("succeeded", 1, "hello\n")
    assert job["result"] == {"echoed": "hello"}
    assert job["worker_id"] == "test-worker"
    assert [e["event"] for e in job["timeline"]] == ["dispatched", "started", "succeeded"]
    assert job["timeline"][1]["actor"] == "test-worker"
    started, finished = parse_time(job["started_at"]), parse_time(job["finished_at"])
    assert started <= finished

    stats = client.get("/api/queues").json()
    assert set(stats["queues"]) == {"high", "default", "low"}
    counted = ("waiting", "delayed", "running", "succeeded", "failed", "cancelled")
    assert {key: stats["queues"]["default"][key] for key in counted} == {
        "waiting": 0,
        "delayed": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
    }
    assert stats["queues"]["low"]["failed"] == 1
    assert stats["totals"]["succeeded"] == 1
    assert stats["failed"] == 1

    failed = client.get("/api/jobs/failed").json()
    assert [item["id"] for item in failed["items"]] == [bad]
    item = failed["items"][0]
    assert (item["error_type"], item["message"], item["attempts"]) == (
        "RuntimeError",
        "demo failure",
        2,
    )
    assert "Traceback" in item["traceback"]
    assert item["failed_at"] is not None
    assert client.get("/api/jobs/failed?queue=high").json()["items"] == []
    assert client.get("/api/jobs/failed?command=demo:fail").json()["items"][0]["id"] == bad

    # Only a failed job can be retried; the operator is recorded.
    conflict = client.post(f"/api/jobs/{ok}/retry")
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "conflict"
    assert "only failed jobs can be retried" in conflict.json()["message"]
    retried = client.post(f"/api/jobs/{bad}/retry", headers=bearer(chronicle, "op"))
    assert retried.status_code == 202
    assert retried.json() == {"id": bad, "status": "waiting", "links": {"self": f"/api/jobs/{bad}"}}
    project(chronicle)
    timeline = client.get(f"/api/jobs/{bad}").json()["timeline"]
    assert (timeline[-1]["event"], timeline[-1]["actor"]) == ("retried", "token:op")
    assert client.get("/api/queues").json()["failed"] == 0

    # A finished job cannot be cancelled.
    finished_cancel = client.post(f"/api/jobs/{ok}/cancel")
    assert finished_cancel.status_code == 409
    assert "cannot be cancelled" in finished_cancel.json()["message"]


def test_cancel_waiting_job_now_and_running_job_by_request(
    client: TestClient[Litestar], chronicle: Chronicle
):
    waiting = dispatch(client, command="demo:noop")
    response = client.post(
        f"/api/jobs/{waiting}/cancel",
        json={"reason": "not needed"},
        headers=bearer(chronicle, "op"),
    )
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"

    running = dispatch(client, command="demo:sleep")
    job = chronicle.jobs.get(UUID(running), tenant="default")
    job.start(worker_id="w-1", at=chronicle.clock.now())
    chronicle.events.save(job)
    response = client.post(f"/api/jobs/{running}/cancel")  # no body: the reason is optional
    assert response.status_code == 202
    assert response.json()["status"] == "cancelling"
    again = client.post(f"/api/jobs/{running}/cancel")
    assert again.status_code == 409
    assert "already being cancelled" in again.json()["message"]

    project(chronicle)
    cancelled = client.get(f"/api/jobs/{waiting}").json()
    assert (cancelled["status"], cancelled["cancelled_by"]) == ("cancelled", "token:op")
    assert cancelled["timeline"][-1]["details"]["reason"] == "not needed"
    # Without a header of its own, the request acts as the client's token.
    assert client.get(f"/api/jobs/{running}").json()["cancel_requested_by"] == "token:tester"


# -- lists --------------------------------------------------------------------------------


def test_list_filters_and_cursor_pagination(client: TestClient[Litestar], chronicle: Chronicle):
    ids = [dispatch(client, command="demo:echo", arguments=[f"m{i}"]) for i in range(5)]
    high = dispatch(client, command="demo:noop", queue="high")
    batch_id, schedule_id = uuid4(), uuid4()
    batch = chronicle.jobs.dispatch(
        DispatchRequest(command_line="demo:noop", batch_id=str(batch_id))
    )
    scheduled = chronicle.jobs.dispatch(
        DispatchRequest(command_line="demo:noop", schedule_id=str(schedule_id))
    )
    project(chronicle)
    newest_first = [str(scheduled), str(batch), high, *reversed(ids)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/jobs", params=params).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    assert pages == 3

    def ids_for(**params: Any) -> list[str]:
        response = client.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids_for(queue="high") == [high]
    assert ids_for(command="demo:echo") == list(reversed(ids))
    assert ids_for(batch_id=str(batch_id)) == [str(batch)]
    # Ids in query strings are UUIDs, in any spelling UUID() reads.
    assert ids_for(batch_id=str(batch_id).upper()) == [str(batch)]
    assert ids_for(schedule_id=str(schedule_id)) == [str(scheduled)]
    assert ids_for(schedule_id=str(uuid4())) == []
    assert ids_for(status="waiting", limit=500) == newest_first
    assert ids_for(status="ready") == newest_first
    assert ids_for(status="succeeded") == []
    item = client.get("/api/jobs", params={"limit": 1}).json()["items"][0]
    assert item["links"] == {"self": f"/api/jobs/{scheduled}"}
    assert item["delayed"] is False


def test_waiting_splits_ready_and_delayed(client: TestClient[Litestar], chronicle: Chronicle):
    ready = dispatch(client, command="demo:noop")
    delayed = dispatch(client, command="demo:noop", delay_seconds=3600)
    dispatch(client, command="demo:noop", queue="low")
    project(chronicle)

    waiting = client.get("/api/jobs/waiting", params={"queue": "default"}).json()
    assert [j["id"] for j in waiting["ready"]] == [ready]
    assert [j["id"] for j in waiting["delayed"]] == [delayed]
    due = parse_time(waiting["delayed"][0]["available_at"])
    dispatched = parse_time(waiting["delayed"][0]["dispatched_at"])
    assert due - dispatched == timedelta(hours=1)
    assert waiting["delayed"][0]["delayed"] is True

    everything = client.get("/api/jobs/waiting", params={"limit": 1}).json()
    assert (len(everything["ready"]), len(everything["delayed"])) == (1, 1)
    assert client.get("/api/jobs", params={"status": "delayed"}).json()["items"][0]["id"] == delayed

    counts = client.get("/api/queues").json()["queues"]["default"]
    assert (counts["waiting"], counts["delayed"]) == (1, 1)


# -- tenants and identity ------------------------------------------------------------------


def test_tenants_see_only_their_own_jobs(client: TestClient[Litestar], chronicle: Chronicle):
    theirs = dispatch(client, headers={**ACME, **bearer(chronicle, "alice")}, command="demo:noop")
    ours = dispatch(client, command="demo:noop")

    # Before projection (event-store fallback) and after, another tenant's job is a 404.
    assert client.get(f"/api/jobs/{theirs}").status_code == 404
    project(chronicle)
    assert client.get(f"/api/jobs/{theirs}").status_code == 404
    assert client.post(f"/api/jobs/{theirs}/cancel").status_code == 404
    assert client.post(f"/api/jobs/{theirs}/retry").status_code == 404
    assert [j["id"] for j in client.get("/api/jobs").json()["items"]] == [ours]
    assert client.get("/api/queues").json()["totals"]["waiting"] == 1

    job = client.get(f"/api/jobs/{theirs}", headers=ACME).json()
    assert (job["tenant"], job["requested_by"]) == ("acme", "token:alice")
    assert [j["id"] for j in client.get("/api/jobs", headers=ACME).json()["items"]] == [theirs]
    assert client.post(f"/api/jobs/{theirs}/cancel", headers=ACME).status_code == 202


@sqlite_only
def test_unknown_job_is_404(client: TestClient[Litestar]):
    missing = uuid4()
    for response in (
        client.get(f"/api/jobs/{missing}"),
        client.post(f"/api/jobs/{missing}/retry"),
        client.post(f"/api/jobs/{missing}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "message": f"job {missing} not found"}


# -- bad input: always a 4xx with a JSON message, never a 500 --------------------------------

ECHO = {"command": "demo:echo", "arguments": ["x"]}
TENANT, AUTH = "X-Chronicle-Tenant", "Authorization"


@dataclass(frozen=True)
class Bad:
    """A bad request and the error it must get: status, kind, field and part of the message."""

    method: str
    path: str
    status: int
    error: str
    field: str | None = None
    message: str = ""
    body: Any = None
    headers: dict[str, str] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} {str(self.body)[:40]} {self.headers or ''}"


def nested(depth: int) -> list[Any]:
    """A list nested `depth` levels deep."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def malformed(field: str | None, message: str, body: Any) -> Bad:
    """A request body that does not decode into DispatchJob: Litestar's 400."""
    return Bad("POST", "/api/jobs", 400, "bad_request", field, message, body)


def bad_command(field: str, message: str, body: Any) -> Bad:
    """A command, arguments or options that do not fit the command's signature."""
    return Bad("POST", "/api/jobs", 422, "invalid_command", field, message, body)


def broken_rule(field: str, message: str, body: Any) -> Bad:
    return Bad("POST", "/api/jobs", 422, "validation_error", field, message, body)


def bad_query(path: str, status: int, field: str, message: str) -> Bad:
    return Bad(
        "GET", path, status, "bad_request" if status == 400 else "validation_error", field, message
    )


ALL_STATUSES = "waiting, running, succeeded, failed, cancelled, delayed, ready"
BAD_REQUESTS = [
    malformed(None, "malformed", b"{bad"),
    malformed(None, "Expected `object`", []),
    malformed(None, "`priority`", {**ECHO, "priority": 1}),
    malformed("command", "str", {"command": 1}),
    malformed("max_attempts", "int", {**ECHO, "max_attempts": "three"}),
    malformed("arguments", "object | array | null", {"command": "demo:echo", "arguments": "x"}),
    malformed("not_before", "", {**ECHO, "not_before": "tomorrow"}),
    bad_command("command", "did you mean 'demo:echo'", {"command": "demo:ecko"}),
    bad_command("arguments.message", "missing argument 'message'", {"command": "demo:echo"}),
    bad_command("options.shout", "unknown option", {**ECHO, "options": {"shout": True}}),
    bad_command("options.times", "an integer", {**ECHO, "options": {"times": "many"}}),
    bad_command("arguments.message", "a string", {"command": "demo:echo", "arguments": [{}]}),
    bad_command("command_line", "unbalanced", {"command_line": "demo:echo 'open"}),
    broken_rule("command_line", "not both", {**ECHO, "command_line": "demo:noop"}),
    broken_rule("command", "required", {}),
    broken_rule("not_before", "timezone-aware", {**ECHO, "not_before": "2030-01-01T00:00:00"}),
    broken_rule("not_before", "out of range", {**ECHO, "not_before": "0001-01-01T00:00:00+01:00"}),
    broken_rule("not_before", "at most 365 days", {**ECHO, "not_before": "9999-12-31T00:00:00Z"}),
    broken_rule("not_before", "1 day in the past", {**ECHO, "not_before": "2001-01-01T00:00:00Z"}),
    bad_command(
        "options.times", "between 1 and 1000, got -5", {"command_line": "demo:echo x --times=-5"}
    ),
    bad_command(
        "options.seconds", "between 0 and 86400", {"command_line": "demo:sleep --seconds=-1"}
    ),
    malformed(None, "the request body is empty: send a JSON object (DispatchJob", b""),
    malformed(None, "contains a NUL character", {"command_line": "demo:echo 'a\u0000b'"}),
    malformed(None, "contains a NUL character", {**ECHO, "options": {"x\u0000": 1}}),
    malformed(
        None, "nested deeper than 32 levels", {"command": "demo:echo", "arguments": nested(32)}
    ),
    broken_rule("delay_seconds", "between 0", {**ECHO, "delay_seconds": -1}),
    broken_rule("delay_seconds", "between 0", {**ECHO, "delay_seconds": 1e300}),
    broken_rule("max_attempts", "between 1 and 100", {**ECHO, "max_attempts": 0}),
    broken_rule("max_attempts", "between 1 and 100", {**ECHO, "max_attempts": 10**30}),
    broken_rule("queue", "high, default, low", {**ECHO, "queue": "urgent"}),
    broken_rule("timeout_seconds", "greater than 0", {**ECHO, "timeout_seconds": 0}),
    Bad("POST", "/api/jobs", 400, "bad_request", TENANT, "must match", ECHO, {TENANT: "Acme!"}),
    # The caller is the principal of the credentials, not a header it names: a malformed
    # Authorization header is refused, not read as someone.
    Bad(
        "POST", "/api/jobs", 401, "unauthorized", None, "`Bearer <token>`", ECHO, {AUTH: "Basic x"}
    ),
    Bad("GET", "/api/queues", 400, "bad_request", TENANT, "must match", None, {TENANT: "x" * 64}),
    Bad("GET", "/api/jobs/not-a-uuid", 422, "validation_error", "id", "not a job id"),
    Bad("POST", "/api/jobs/not-a-uuid/retry", 422, "validation_error", "id", "not a job id"),
    Bad("POST", "/api/jobs/not-a-uuid/cancel", 422, "validation_error", "id", "not a job id"),
    Bad("POST", f"/api/jobs/{uuid4()}/cancel", 400, "bad_request", None, "`why`", {"why": "x"}),
    bad_query("/api/jobs?limit=0", 400, "limit", ">= 1"),
    bad_query("/api/jobs?limit=100000", 400, "limit", "<= 500"),
    bad_query("/api/jobs?limit=ten", 400, "limit", "int"),
    bad_query("/api/jobs?cursor=garbage", 422, "cursor", "invalid cursor"),
    bad_query("/api/jobs?status=done", 422, "status", ALL_STATUSES),
    bad_query("/api/jobs?queue=urgent", 422, "queue", "high, default, low"),
    bad_query("/api/jobs/waiting?limit=501", 400, "limit", "<= 500"),
    bad_query("/api/jobs/waiting?queue=x", 422, "queue", "choose one of"),
    bad_query("/api/jobs/failed?queue=x", 422, "queue", "choose one of"),
    bad_query("/api/jobs/failed?cursor=s1x", 422, "cursor", "invalid cursor"),
    bad_query("/api/jobs?cursor=s%C2%B2", 422, "cursor", "invalid cursor"),
    # PostgreSQL text cannot hold NUL: once a 500 (filters) or a stuck projection (bodies).
    bad_query("/api/jobs?command=a%00b", 400, "command", "contains a NUL character"),
    bad_query("/api/jobs/failed?error_type=%00", 400, "error_type", "NUL character"),
    bad_query("/api/jobs?batch_id=xyz", 422, "batch_id", "'xyz' is not a batch id (a UUID)"),
    bad_query("/api/jobs?schedule_id=b-1", 422, "schedule_id", "not a schedule id"),
    Bad("GET", "/api/nothing-here", 404, "not_found"),
    Bad("DELETE", "/api/jobs", 405, "method_not_allowed"),
]


@sqlite_only
@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=str)
def test_bad_input_gets_a_json_4xx(client: TestClient[Litestar], bad: Bad):
    if isinstance(bad.body, bytes):
        response = client.request(
            bad.method, bad.path, content=bad.body, headers={"content-type": "application/json"}
        )
    else:
        response = client.request(bad.method, bad.path, json=bad.body, headers=bad.headers)
    assert response.status_code == bad.status, response.text
    payload = response.json()
    assert payload["error"] == bad.error
    assert payload.get("field") == bad.field
    assert bad.message in payload["message"]


def json_routes(client: TestClient[Litestar]) -> list[tuple[str, str]]:
    """Every operation that takes a JSON body, with its path parameters filled in."""
    schema = client.get("/schema/openapi.json").json()
    routes = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if "application/json" in (op.get("requestBody") or {}).get("content", {}):
                url = path.replace("{queue}", "high")
                routes.append((method.upper(), re.sub(r"\{\w+\}", str(uuid4()), url)))
    return routes


@sqlite_only
def test_every_json_route_refuses_bodies_nested_too_deep(client: TestClient[Litestar]):
    # 1,000 levels made the JSON decoder raise RecursionError: a 500 on every JSON route.
    routes = json_routes(client)
    assert len(routes) >= 15
    for depth in (1_000, 100_000):
        body = "[" * depth + "]" * depth
        for method, url in routes:
            response = client.request(
                method, url, content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, (method, url, response.text)
            assert response.json() == {
                "error": "bad_request",
                "message": "the JSON body is nested deeper than 32 levels of lists and objects",
                "details": [
                    {
                        "key": "data",
                        "message": "the JSON body is nested deeper than 32 levels of lists and "
                        "objects",
                    }
                ],
            }


@sqlite_only
def test_json_bodies_may_nest_32_levels(client: TestClient[Litestar]):
    at_limit = client.post("/api/jobs", json={"command": "demo:echo", "arguments": nested(31)})
    assert at_limit.status_code == 422  # past the depth check, refused by the command's types
    assert "must be a string, got a list" in at_limit.json()["message"]
    beyond = client.post("/api/jobs", json={"command": "demo:echo", "arguments": nested(32)})
    assert beyond.status_code == 400
    assert "nested deeper than 32 levels" in beyond.json()["message"]


@sqlite_only
def test_empty_body_says_what_is_expected(client: TestClient[Litestar]):
    job_id = dispatch(client, command="demo:noop")
    for url, body in [
        ("/api/jobs", "DispatchJob"),
        ("/api/schedules", "CreateSchedule"),
        ("/api/batches", "CreateBatch"),
        (f"/api/jobs/{job_id}/comments", "AddComment"),
    ]:
        response = client.post(url, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["message"] == (
            f"the request body is empty: send a JSON object ({body}, described at /schema) "
            "with content-type application/json"
        )


@sqlite_only
@pytest.mark.parametrize(
    ("body", "params"),
    [
        pytest.param(
            {"command": "demo:sleep", "options": {"seconds": 10**400}},
            None,
            id="float option with a 400-digit integer",
        ),
        pytest.param(
            {**ECHO, "options": {"times": 10**30}},
            None,
            id="int option beyond 64 bits",
        ),
        pytest.param(
            {**ECHO, "options": {"times": "9" * 5000}},
            None,
            id="int option with 5000 digits",
        ),
        pytest.param(
            None,
            {"cursor": "s" + "9" * 30},
            id="cursor beyond 64 bits",
        ),
    ],
)
def test_out_of_range_numbers_are_422(
    client: TestClient[Litestar], body: dict[str, Any] | None, params: dict[str, str] | None
):
    if body is not None:
        response = client.post("/api/jobs", json=body)
    else:
        response = client.get("/api/jobs", params=params)
    assert response.status_code == 422, response.text


@sqlite_only
def test_unexpected_error_is_a_logged_500_without_details(
    client: TestClient[Litestar], chronicle: Chronicle, monkeypatch: pytest.MonkeyPatch
):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret connection string")

    monkeypatch.setattr(chronicle.queries, "queue_stats", broken)
    with structlog.testing.capture_logs() as logs:
        response = client.get("/api/queues")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "internal error: the server logged the details",
    }
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    [entry] = [e for e in logs if e["event"] == "unhandled error"]
    assert entry["log_level"] == "error"
    assert entry["path"] == "/api/queues"
    assert isinstance(entry["exc_info"], RuntimeError)


# -- commands, health, docs ---------------------------------------------------------------------


@sqlite_only
def test_commands_lists_signatures(client: TestClient[Litestar], chronicle: Chronicle):
    commands = client.get("/api/commands").json()
    assert commands == [signature.to_dict() for signature in chronicle.registry.signatures()]
    echo = next(c for c in commands if c["name"] == "demo:echo")
    assert echo["usage"] == "demo:echo <message> [--upper] [--times=1]"
    assert echo["arguments"][0]["required"] is True


@sqlite_only
def test_health_and_ready(chronicle: Chronicle):
    calls: list[str] = []
    with api_client(
        chronicle, create_app(chronicle, checks={"broker": lambda: calls.append("broker")})
    ) as c:
        assert c.get("/health").json() == {"status": "ok"}
        ready = c.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ok",
            "checks": {
                "database": {"ok": True},
                "event_store": {"ok": True},
                "broker": {"ok": True},
            },
        }
        assert calls == ["broker"]


@sqlite_only
def test_ready_is_503_naming_the_failed_check(chronicle: Chronicle):
    def broker() -> None:
        raise ConnectionError("amqp://127.0.0.1:5672 refused")

    with api_client(chronicle, create_app(chronicle, checks={"broker": broker})) as c:
        assert c.get("/health").status_code == 200  # alive, just not ready
        response = c.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["error"] == "not_ready"
    assert body["message"] == "broker: ConnectionError: amqp://127.0.0.1:5672 refused"
    assert body["checks"]["broker"] == {
        "ok": False,
        "error": "ConnectionError: amqp://127.0.0.1:5672 refused",
    }
    assert body["checks"]["database"] == {"ok": True}


@sqlite_only
def test_openapi_has_operation_ids_and_the_docs_page_is_offline(client: TestClient[Litestar]):
    schema = client.get("/schema/openapi.json").json()
    operations = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert {key: op["operationId"] for key, op in operations.items()} == {
        ("POST", "/api/jobs"): "dispatchJob",
        ("GET", "/api/jobs"): "listJobs",
        ("GET", "/api/jobs/waiting"): "listWaitingJobs",
        ("GET", "/api/jobs/failed"): "listFailedJobs",
        ("GET", "/api/jobs/{job_id}"): "getJob",
        ("POST", "/api/jobs/{job_id}/retry"): "retryJob",
        ("POST", "/api/jobs/{job_id}/cancel"): "cancelJob",
        ("POST", "/api/jobs/failed/retry"): "retryFailedJobs",
        ("DELETE", "/api/jobs/failed/{job_id}"): "forgetFailedJob",
        ("GET", "/api/jobs/{job_id}/comments"): "listJobComments",
        ("POST", "/api/jobs/{job_id}/comments"): "addJobComment",
        ("GET", "/api/queues"): "getQueueStats",
        ("POST", "/api/queues/pause"): "pauseAllQueues",
        ("POST", "/api/queues/resume"): "resumeAllQueues",
        ("POST", "/api/queues/{queue}/pause"): "pauseQueue",
        ("POST", "/api/queues/{queue}/resume"): "resumeQueue",
        ("GET", "/api/commands"): "listCommands",
        ("POST", "/auth/login"): "signIn",
        ("GET", "/auth/session"): "getSession",
        ("POST", "/auth/logout"): "signOut",
        ("GET", "/health"): "getHealth",
        ("GET", "/ready"): "getReadiness",
        ("GET", "/api/schedules/{schedule_id}/comments"): "listScheduleComments",
        ("POST", "/api/schedules/{schedule_id}/comments"): "addScheduleComment",
        ("GET", "/api/schedules"): "listSchedules",
        ("POST", "/api/schedules"): "createSchedule",
        ("GET", "/api/schedules/{schedule_id}"): "getSchedule",
        ("DELETE", "/api/schedules/{schedule_id}"): "deleteSchedule",
        ("PATCH", "/api/schedules/{schedule_id}"): "editSchedule",
        ("POST", "/api/schedules/{schedule_id}/pause"): "pauseSchedule",
        ("POST", "/api/schedules/{schedule_id}/resume"): "resumeSchedule",
        ("POST", "/api/schedules/{schedule_id}/run"): "runScheduleNow",
        ("GET", "/api/schedules/{schedule_id}/runs"): "listScheduleRuns",
        ("GET", "/api/frequencies"): "listFrequencyHelpers",
        ("POST", "/api/frequencies/preview"): "previewFrequency",
        ("GET", "/api/events"): "streamJobEvents",
        ("POST", "/api/batches"): "createBatch",
        ("GET", "/api/batches"): "listBatches",
        ("GET", "/api/batches/{batch_id}"): "getBatch",
        ("POST", "/api/batches/{batch_id}/jobs"): "addBatchJobs",
        ("POST", "/api/batches/{batch_id}/cancel"): "cancelBatch",
        ("POST", "/api/batches/{batch_id}/retry-failed"): "retryBatchFailedJobs",
        ("POST", "/api/imports"): "startImport",
        ("GET", "/api/imports"): "listImports",
        ("GET", "/api/imports/{import_id}"): "getImport",
        ("GET", "/api/imports/{import_id}/failed-rows"): "listImportFailedRows",
        ("GET", "/api/imports/{import_id}/failed-rows.csv"): "downloadImportFailedRows",
        ("POST", "/api/imports/{import_id}/retry-failed"): "retryImportFailedRows",
        ("POST", "/api/imports/{import_id}/cancel"): "cancelImport",
        ("POST", "/api/exports"): "requestExport",
        ("GET", "/api/exports"): "listExports",
        ("GET", "/api/exports/{export_id}"): "getExport",
        ("GET", "/api/exports/{export_id}/download"): "downloadExport",
        ("GET", "/api/exporters"): "listExporters",
    }
    for op in operations.values():
        assert op["summary"]
        assert op["description"]
    dispatch_op = operations[("POST", "/api/jobs")]
    assert set(dispatch_op["responses"]) >= {"200", "201", "400", "422"}
    headers = {p["name"] for p in dispatch_op["parameters"] if p["in"] == "header"}
    # No header names the caller any more: the credentials do (see the security schemes).
    assert headers == {"X-Chronicle-Tenant", "Idempotency-Key"}
    assert dispatch_op["security"] == [{"bearer": []}, {"session": []}]
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "session"}
    assert schema["info"]["title"] == "Chronicle"

    page = client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for op in operations.values():
        assert op["operationId"] in html
    assert "/schema/openapi.json" in html
    # Nothing to fetch from elsewhere: no script, no external stylesheet, image or font.
    assert "<script" not in html
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", html)
    # Descriptions are Markdown: code spans are rendered, not shown with their backticks.
    assert "`" not in html
    assert "<code>X-Chronicle-Tenant</code>" in html


@sqlite_only
def test_openapi_states_the_rules_the_api_checks(client: TestClient[Litestar]):
    schema = client.get("/schema/openapi.json").json()
    queues = ["high", "default", "low"]
    parameters = {
        (method, path, p["name"]): p
        for path, item in schema["paths"].items()
        for method, op in item.items()
        for p in op.get("parameters", [])
    }
    for (method, path, name), parameter in parameters.items():
        where = f"{method} {path} {name}"
        if name.endswith("_id"):
            assert parameter["schema"]["format"] == "uuid", where
        types = [parameter["schema"].get("type")]
        types += [v.get("type") for v in parameter["schema"].get("oneOf", [])]
        if "integer" in types:
            assert {"minimum", "maximum"} <= parameter["schema"].keys(), where
        if name == "queue":
            assert parameter["schema"]["enum"] == queues, where
        if name == "cursor":
            assert parameter["schema"]["pattern"] == "^s[0-9]{1,18}$", where
    assert parameters[("get", "/api/jobs", "status")]["schema"]["enum"] == [
        "waiting",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "delayed",
        "ready",
    ]
    assert (
        parameters[("get", "/api/imports/{import_id}/failed-rows", "after")]["schema"]["maximum"]
        == 2**31 - 1
    )
    tenant = parameters[("get", "/api/queues", "X-Chronicle-Tenant")]["schema"]
    assert tenant["pattern"] == "^[a-z0-9][a-z0-9_-]{0,62}$"

    bodies = schema["components"]["schemas"]
    dispatch_job = bodies["DispatchJob"]["properties"]
    assert dispatch_job["queue"]["enum"] == queues
    assert (dispatch_job["max_attempts"]["minimum"], dispatch_job["max_attempts"]["maximum"]) == (
        1,
        100,
    )
    assert dispatch_job["delay_seconds"]["maximum"] == 365 * 86400
    assert bodies["JobItem"]["properties"]["batch_id"]["format"] == "uuid"
    assert bodies["JobItem"]["properties"]["status"]["enum"] == [
        "waiting",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]
    timezones = bodies["CreateSchedule"]["properties"]["timezone"]["enum"]
    assert "Europe/Rome" in timezones
    assert not {"localtime", "posixrules", "Factory"} & set(timezones)
    assert bodies["CreateSchedule"]["properties"]["missed_runs"]["enum"] == ["skip", "run_once"]
    assert bodies["AddComment"]["properties"]["text"]["maxLength"] == 10_000

    # Each route's 404 and 409 name its own resource.
    resources = {"jobs": "job", "schedules": "schedule", "batches": "batch", "queues": "queue"}
    resources |= {"imports": "import", "exports": "export"}
    for path, item in schema["paths"].items():
        for op in item.values():
            for code in ("404", "409"):
                if code in op["responses"]:
                    resource = resources[path.split("/")[2]]
                    assert f" {resource} " in op["responses"][code]["description"], (path, code)
