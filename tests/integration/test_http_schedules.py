"""The schedules and frequencies API over real storage (SQLite files and Postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from interfaces.bootstrap import Chronicle, bootstrap
from tests.integration.conftest import api_client, bearer, make_settings
from tests.unit.fakes import FakeClock, FakeQueue

pytestmark = pytest.mark.integration

# Input checks do not depend on the storage: run them on SQLite only, to keep the suite fast.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

ACME = {"X-Chronicle-Tenant": "acme"}
# Monday 5 January 2026, 10:00 UTC (11:00 in Rome).
MONDAY = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
DAILY_13 = [{"name": "dailyAt", "args": ["13:00"]}]
ECHO = {"name": "echo", "command_line": "demo:echo hi"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY)


@pytest.fixture
def chronicle(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Chronicle]:
    """The conftest's Chronicle, with a clock the test moves: next due times are exact."""
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    app = bootstrap(make_settings(backend, tmp_path, schema), registry=registry, clock=clock)
    yield app
    app.close()


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


def project(app: Chronicle) -> None:
    for runner in app.runners.values():
        runner.catch_up()


def create(
    client: TestClient[Litestar], headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = client.post("/api/schedules", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# -- create and read ----------------------------------------------------------------------------


def test_create_from_a_command_line_and_helpers_then_read_it_before_and_after_projection(
    client: TestClient[Litestar], chronicle: Chronicle
):
    response = client.post(
        "/api/schedules",
        json={
            "name": "  Lunch report ",
            "description": "Sent to the team",
            "command_line": "demo:echo 'hi there' --upper",
            "helpers": [{"name": "weekdays"}, {"name": "dailyAt", "args": ["13:00"]}],
            "timezone": "Europe/Rome",
        },
        headers={**ACME, **bearer(chronicle, "alice")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    schedule_id = body["id"]
    location = f"/api/schedules/{schedule_id}"
    assert response.headers["location"] == location
    history = body.pop("history")
    assert [(h["event"], h["by"]) for h in history] == [("created", "token:alice")]
    assert body == {
        "id": schedule_id,
        "seq": None,
        "tenant": "acme",
        "name": "Lunch report",
        "description": "Sent to the team",
        "command": "demo:echo",
        "command_line": "demo:echo 'hi there' --upper",
        "arguments": {"message": "hi there"},
        "options": {"upper": True, "times": 1},
        "frequency": {
            "expression": "0 13 * * 1-5",
            "helpers": [{"name": "weekdays", "args": []}, {"name": "dailyAt", "args": ["13:00"]}],
            "windows": [],
        },
        "expression": "0 13 * * 1-5",
        "description_human": "At 13:00, Monday through Friday",
        "timezone": "Europe/Rome",
        "queue": "default",
        "max_attempts": 3,
        "timeout_seconds": None,
        "without_overlapping": False,
        "missed_runs": "skip",
        "active": True,
        "paused_at": None,
        "next_due_at": "2026-01-05T12:00:00Z",
        "next_due_local": "2026-01-05T13:00:00+01:00",
        "next_due_dst": None,
        "last_run": None,
        "created_by": "token:alice",
        "created_at": "2026-01-05T10:00:00Z",
        "updated_at": "2026-01-05T10:00:00Z",
        "version": 1,
        "projected": False,
        "links": {
            "self": location,
            "runs": f"{location}/runs",
            "comments": f"{location}/comments",
        },
    }

    # Not projected yet: built from the event store, never a 404.
    assert client.get(location, headers=ACME).json() == {**body, "history": history}

    project(chronicle)
    projected = client.get(location, headers=ACME).json()
    assert projected.pop("history") == history
    assert projected["projected"] is True
    assert isinstance(projected["seq"], int)
    assert {**projected, "seq": None, "projected": False} == body
    listed = client.get("/api/schedules", headers=ACME).json()
    assert listed == {"items": [{**projected, "history": None}], "next_cursor": None}


def test_create_from_command_arguments_and_a_cron_expression_with_seconds(
    client: TestClient[Litestar], chronicle: Chronicle
):
    body = create(
        client,
        name="pulse",
        command="demo:echo",
        arguments=["beat"],
        options={"times": 2},
        expression="*/15 * * * * *",
        queue="high",
        max_attempts=5,
        timeout_seconds=30,
        without_overlapping=True,
        missed_runs="run_once",
    )
    assert body["command_line"] == "demo:echo beat --times=2"
    assert body["frequency"] == {"expression": "*/15 * * * * *", "helpers": None, "windows": []}
    assert body["description_human"] == "Every 15 seconds"
    assert (body["timezone"], body["queue"], body["max_attempts"]) == ("UTC", "high", 5)
    assert (body["timeout_seconds"], body["without_overlapping"]) == (30.0, True)
    assert body["missed_runs"] == "run_once"
    assert body["next_due_at"] == "2026-01-05T10:00:15Z"
    assert body["next_due_local"] == "2026-01-05T10:00:15+00:00"
    assert body["created_by"] == "token:tester"

    project(chronicle)
    assert client.get(f"/api/schedules/{body['id']}").json()["next_due_at"] == (
        "2026-01-05T10:00:15Z"
    )


def test_next_due_local_is_in_the_schedules_timezone_summer_and_winter(
    client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock
):
    winter = create(client, **ECHO, helpers=DAILY_13, timezone="Europe/Rome")
    assert winter["next_due_local"] == "2026-01-05T13:00:00+01:00"
    clock.current = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 14:00 in Rome: today's is gone
    project(chronicle)
    summer = client.get(f"/api/schedules/{winter['id']}").json()
    assert summer["next_due_local"] == "2026-07-02T13:00:00+02:00"
    assert summer["next_due_at"] == "2026-07-02T11:00:00Z"
    tokyo = create(client, **ECHO, helpers=DAILY_13, timezone="Asia/Tokyo")
    assert tokyo["next_due_local"] == "2026-07-02T13:00:00+09:00"


def test_created_paused_has_no_next_due(client: TestClient[Litestar]):
    body = create(client, **ECHO, expression="0 * * * *", active=False)
    assert (body["active"], body["paused_at"], body["next_due_at"]) == (
        False,
        "2026-01-05T10:00:00Z",
        None,
    )
    assert body["next_due_local"] is None


def test_list_filters_on_active_and_pages_newest_first(
    client: TestClient[Litestar], chronicle: Chronicle
):
    ids = [
        create(client, **{**ECHO, "name": f"s{i}"}, expression="0 * * * *")["id"] for i in (0, 1)
    ]
    paused = create(client, **{**ECHO, "name": "s2"}, expression="0 * * * *", active=False)["id"]
    other_tenant = create(client, ACME, **ECHO, expression="0 * * * *")["id"]
    project(chronicle)

    def names(**params: Any) -> list[str]:
        page = client.get("/api/schedules", params=params).json()
        return [item["id"] for item in page["items"]]

    assert names() == [paused, ids[1], ids[0]]
    assert names(active="true") == [ids[1], ids[0]]
    assert names(active="false") == [paused]
    first = client.get("/api/schedules", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == [paused, ids[1]]
    second = client.get("/api/schedules", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [item["id"] for item in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    assert [i["id"] for i in client.get("/api/schedules", headers=ACME).json()["items"]] == [
        other_tenant
    ]
    assert client.get(f"/api/schedules/{other_tenant}").status_code == 404


# -- edit, pause, resume, delete ----------------------------------------------------------------


def test_patch_changes_the_frequency_and_the_next_due_time(
    client: TestClient[Litestar], chronicle: Chronicle
):
    schedule_id = create(client, **ECHO, helpers=DAILY_13, timezone="Europe/Rome")["id"]
    project(chronicle)
    path = f"/api/schedules/{schedule_id}"

    response = client.patch(path, json={"helpers": [{"name": "dailyAt", "args": ["15:30"]}]})
    assert response.status_code == 200, response.text
    edited = response.json()
    # The answer reflects the edit at once, even though the read model still has the old row.
    assert (edited["expression"], edited["next_due_local"]) == (
        "30 15 * * *",
        "2026-01-05T15:30:00+01:00",
    )
    assert (edited["version"], edited["projected"], edited["seq"]) == (2, False, None)
    assert client.get(path).json()["expression"] == "30 15 * * *"

    project(chronicle)
    assert client.get(path).json()["projected"] is True
    edited = client.patch(
        path,
        json={"timezone": "America/New_York", "name": "renamed", "command_line": "demo:noop"},
        headers=bearer(chronicle, "bob"),
    ).json()
    assert edited["next_due_local"] == "2026-01-05T15:30:00-05:00"
    assert edited["next_due_at"] == "2026-01-05T20:30:00Z"
    assert (edited["name"], edited["command"], edited["arguments"]) == ("renamed", "demo:noop", {})
    edited = client.patch(path, json={"expression": "0 9 * * 1", "timeout_seconds": 60}).json()
    assert (edited["description_human"], edited["timeout_seconds"]) == ("At 09:00, on Monday", 60)
    assert edited["next_due_local"] == "2026-01-05T09:00:00-05:00"  # 05:00 there now
    assert edited["frequency"]["helpers"] is None
    edited = client.patch(path, json={"command": "demo:echo", "arguments": ["a b"]}).json()
    assert edited["command_line"] == "demo:echo 'a b'"
    # Arguments or options alone are for the schedule's command; the other keeps its value.
    edited = client.patch(path, json={"options": {"upper": True}}).json()
    assert edited["command_line"] == "demo:echo 'a b' --upper"
    edited = client.patch(path, json={"arguments": {"message": "c"}}).json()
    assert edited["command_line"] == "demo:echo c --upper"
    # Leaving a field out keeps it; null clears a nullable one.
    assert client.patch(path, json={}).json()["timeout_seconds"] == 60
    assert client.patch(path, json={"timeout_seconds": None}).json()["timeout_seconds"] is None


def test_pause_and_resume_with_conflicts(client: TestClient[Litestar], chronicle: Chronicle):
    schedule_id = create(client, **ECHO, expression="0 * * * *")["id"]
    path = f"/api/schedules/{schedule_id}"
    paused = client.post(f"{path}/pause", headers=ACME | {"X-Chronicle-Tenant": "default"})
    assert paused.status_code == 200, paused.text
    assert (paused.json()["active"], paused.json()["next_due_at"]) == (False, None)
    assert paused.json()["paused_at"] == "2026-01-05T10:00:00Z"
    again = client.post(f"{path}/pause")
    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "message": f"schedule {schedule_id} is already paused",
    }
    project(chronicle)
    assert client.get("/api/schedules", params={"active": "false"}).json()["items"][0]["id"] == (
        schedule_id
    )
    resumed = client.post(f"{path}/resume")
    assert resumed.status_code == 200
    assert (resumed.json()["active"], resumed.json()["paused_at"]) == (True, None)
    assert resumed.json()["next_due_at"] == "2026-01-05T11:00:00Z"
    conflict = client.post(f"{path}/resume")
    assert conflict.status_code == 409
    assert conflict.json()["message"] == f"schedule {schedule_id} is not paused"


def test_delete_then_everything_is_404(client: TestClient[Litestar], chronicle: Chronicle):
    schedule_id = create(client, **ECHO, expression="0 * * * *")["id"]
    project(chronicle)
    path = f"/api/schedules/{schedule_id}"
    response = client.delete(path)
    assert response.status_code == 204
    assert response.content == b""
    for gone in (
        client.get(path),  # the read model still has the row: the event store says deleted
        client.patch(path, json={"name": "x"}),
        client.post(f"{path}/pause"),
        client.post(f"{path}/run"),
        client.get(f"{path}/runs"),
        client.get(f"{path}/comments"),
        client.delete(path),
    ):
        assert gone.status_code == 404, gone.text
        assert gone.json() == {"error": "not_found", "message": f"schedule {schedule_id} not found"}
    project(chronicle)
    assert client.get("/api/schedules").json()["items"] == []


# -- run now, runs, comments --------------------------------------------------------------------


def test_run_now_starts_a_job_that_shows_in_the_runs(
    client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock
):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    schedule_id = create(client, ACME, **ECHO, expression="0 0 1 1 *", active=False)["id"]
    path = f"/api/schedules/{schedule_id}"

    response = client.post(f"{path}/run", headers={**ACME, **bearer(chronicle, "alice")})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.json() == {"job_id": job_id, "links": {"job": f"/api/jobs/{job_id}"}}
    job = client.get(f"/api/jobs/{job_id}", headers=ACME)
    assert job.status_code == 200
    assert (job.json()["schedule_id"], job.json()["requested_by"]) == (schedule_id, "token:alice")
    assert job.json()["command_line"] == "demo:echo hi"
    assert client.get(f"/api/schedules/{job_id}", headers=ACME).status_code == 404  # a job's id

    project(chronicle)  # includes the outbox relay: the job's message is sent
    [run] = client.get(f"{path}/runs", headers=ACME).json()["items"]
    assert run["job_id"] == job_id
    assert (run["manual"], run["status"], run["triggered_by"]) == (True, "waiting", "token:alice")
    assert run["due_at"] == run["triggered_at"] == "2026-01-05T10:00:00Z"
    assert run["skip_reason"] is None
    schedule = client.get(path, headers=ACME).json()
    assert schedule["last_run"]["job_id"] == job_id
    assert schedule["last_run"]["at"] == "2026-01-05T10:00:00Z"

    [(sent, _, _)] = queue.take()
    clock.advance(2)
    chronicle.executor(queue, worker_id="test-worker").process(sent)
    project(chronicle)
    page = client.get(f"{path}/runs", headers=ACME).json()
    assert page["next_cursor"] is None
    [run] = page["items"]
    assert (run["status"], run["outcome"], run["attempts"]) == ("succeeded", "success", 1)
    assert run["output"] == "hi\n"
    assert run["started_at"] == run["finished_at"] == "2026-01-05T10:00:02Z"
    assert run["duration_ms"] is not None


def test_runs_are_newest_first_and_paged(client: TestClient[Litestar], chronicle: Chronicle):
    schedule_id = create(client, **ECHO, expression="0 * * * *")["id"]
    path = f"/api/schedules/{schedule_id}"
    jobs = [client.post(f"{path}/run").json()["job_id"] for _ in range(3)]
    project(chronicle)
    first = client.get(f"{path}/runs", params={"limit": 2}).json()
    assert [run["job_id"] for run in first["items"]] == [jobs[2], jobs[1]]
    rest = client.get(f"{path}/runs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([run["job_id"] for run in rest["items"]], rest["next_cursor"]) == ([jobs[0]], None)


def test_comments(client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock):
    schedule_id = create(client, **ECHO, expression="0 * * * *")["id"]
    path = f"/api/schedules/{schedule_id}/comments"
    assert client.get(path).json() == []
    response = client.post(
        path,
        json={"text": "moved to 13:00"},
        headers=ACME | {"X-Chronicle-Tenant": "default"} | bearer(chronicle, "alice"),
    )
    assert response.status_code == 201, response.text
    first = response.json()
    assert first == {
        "id": first["id"],
        "author": "token:alice",
        "text": "moved to 13:00",
        "at": "2026-01-05T10:00:00Z",
    }
    clock.advance(60)
    second = client.post(path, json={"text": "ok"}).json()
    assert (second["author"], second["at"]) == ("token:tester", "2026-01-05T10:01:00Z")
    assert client.get(path).json() == [first, second]
    project(chronicle)
    assert client.get(path).json() == [first, second]
    # Comments do not make the schedule look stale.
    assert client.get(f"/api/schedules/{schedule_id}").json()["projected"] is True


# -- frequencies --------------------------------------------------------------------------------


@sqlite_only
def test_the_catalogue_lists_the_helpers_with_their_parameters(client: TestClient[Litestar]):
    catalogue = client.get("/api/frequencies").json()
    by_name = {entry["name"]: entry for entry in catalogue}
    assert {"dailyAt", "weekdays", "everyMinute", "between", "cron"} <= set(by_name)
    daily = by_name["dailyAt"]
    assert daily["parameters"] == [
        {
            "name": "time",
            "type": "string | integer",
            "default": None,
            "required": True,
            "description": (
                "Time of day, 'HH:MM' ('H' or 'HH:MM:SS' too; seconds are ignored, as in Laravel)."
            ),
        }
    ]
    assert by_name["hourlyAt"]["parameters"][0]["type"].startswith(
        "integer | string (minute cron field"
    )
    assert daily["example"]["expression"] == "0 13 * * *"
    assert daily["description"]
    for entry in catalogue:  # every example is a chain the API accepts
        helpers = entry["example"]["helpers"]
        preview = client.post("/api/frequencies/preview", json={"helpers": helpers, "count": 1})
        assert preview.status_code == 200, (entry["name"], preview.text)
        assert preview.json()["expression"] == entry["example"]["expression"]


@sqlite_only
def test_preview_lists_count_runs_with_a_description(client: TestClient[Litestar]):
    response = client.post(
        "/api/frequencies/preview",
        json={"helpers": [{"name": "weekdays"}, *DAILY_13], "timezone": "Europe/Rome"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["expression"], body["timezone"]) == ("0 13 * * 1-5", "Europe/Rome")
    assert body["description"] == "At 13:00, Monday through Friday"
    runs = body["next_runs"]
    assert len(runs) == 10  # the default count
    assert runs[0]["local"] == "2026-01-05T13:00:00+01:00"
    assert runs[0]["utc"] == "2026-01-05T12:00:00Z"
    assert runs[5]["local"] == "2026-01-12T13:00:00+01:00"  # the weekend is left out
    three = client.post("/api/frequencies/preview", json={"expression": "@hourly", "count": 3})
    assert [run["utc"] for run in three.json()["next_runs"]] == [
        "2026-01-05T11:00:00Z",
        "2026-01-05T12:00:00Z",
        "2026-01-05T13:00:00Z",
    ]


@sqlite_only
def test_preview_takes_helper_arguments_as_laravel_does(client: TestClient[Litestar]):
    def expression(*helpers: dict[str, Any]) -> str:
        response = client.post("/api/frequencies/preview", json={"helpers": list(helpers)})
        assert response.status_code == 200, response.text
        built: str = response.json()["expression"]
        return built

    assert expression({"name": "hourlyAt", "args": ["*/10"]}) == "*/10 * * * *"
    assert expression({"name": "dailyAt", "args": ["13:08:10"]}) == "8 13 * * *"
    assert expression({"name": "weeklyOn", "args": ["1-5", "7:30"]}) == "30 7 * * 1-5"
    assert expression({"name": "mondays"}, {"name": "yearlyOn", "args": [7, "*", "09:01"]}) == (
        "1 9 * 7 1"
    )
    malformed = client.post(
        "/api/frequencies/preview", json={"helpers": [{"name": "hourlyAt", "args": ["*/70"]}]}
    )
    assert malformed.status_code == 422, malformed.text
    assert malformed.json()["field"] == "helpers[0].args[0]"
    assert "helper 'hourlyAt', argument 'minute'" in malformed.json()["message"]


@sqlite_only
def test_preview_shows_dst_in_europe_rome(client: TestClient[Litestar], clock: FakeClock):
    clock.current = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    daily = client.post(
        "/api/frequencies/preview",
        json={"helpers": [{"name": "dailyAt", "args": ["02:30"]}], "timezone": "Europe/Rome"},
    ).json()
    assert [(r["local"], r["skipped"], r["dst"]) for r in daily["next_runs"][:3]] == [
        ("2026-03-28T02:30:00+01:00", None, None),
        # 02:30 does not exist on the 29th (clocks jump from 02:00 to 03:00): runs after the gap.
        ("2026-03-29T03:00:00+02:00", None, "shifted_after_gap"),
        ("2026-03-30T02:30:00+02:00", None, None),
    ]
    assert daily["next_runs"][1]["utc"] == "2026-03-29T01:00:00Z"

    clock.current = datetime(2026, 3, 29, 0, 15, tzinfo=UTC)  # 01:15 in Rome
    half_hourly = client.post(
        "/api/frequencies/preview",
        json={"expression": "*/30 * * * *", "timezone": "Europe/Rome", "count": 4},
    ).json()
    assert [(r["slot"], r["skipped"]) for r in half_hourly["next_runs"]] == [
        ("2026-03-29T01:30:00", None),
        ("2026-03-29T02:00:00", "dst_gap"),
        ("2026-03-29T02:30:00", "dst_gap"),
        ("2026-03-29T03:00:00", None),
    ]


@sqlite_only
def test_next_due_passes_over_a_dst_gap(client: TestClient[Litestar], clock: FakeClock):
    clock.current = datetime(2026, 3, 29, 0, 45, tzinfo=UTC)  # 01:45 in Rome
    body = create(client, **ECHO, expression="*/30 * * * *", timezone="Europe/Rome")
    # 02:00 and 02:30 do not exist that night: the next run is at 03:00 summer time.
    assert body["next_due_local"] == "2026-03-29T03:00:00+02:00"


# -- bad input: a JSON 4xx naming the field, never a 500 -----------------------------------------


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

    def __str__(self) -> str:
        return f"{self.method} {self.path} {str(self.body)[:50]}"


def bad_create(status: int, error: str, field: str | None, message: str, **body: Any) -> Bad:
    return Bad("POST", "/api/schedules", status, error, field, message, {**ECHO, **body})


def rule(field: str, message: str, **body: Any) -> Bad:
    return bad_create(422, "validation_error", field, message, **body)


HOURLY = {"expression": "0 * * * *"}
MISSING = uuid4()
BAD_REQUESTS = [
    rule(
        "helpers[0].name",
        "unknown helper 'dailyat'; did you mean 'dailyAt'",
        helpers=[{"name": "dailyat", "args": ["13:00"]}],
    ),
    rule("helpers[0].args[0]", "'time'", helpers=[{"name": "dailyAt", "args": ["25:00"]}]),
    rule("helpers[1].name", "unknown helper", helpers=[{"name": "weekdays"}, {"name": "nope"}]),
    rule("helpers", "at least one", helpers=[]),
    rule("expression", "minute 61 is outside 0-59", expression="61 * * * *"),
    rule("expression", "cron expression", expression="every day"),
    rule("expression", "either expression or helpers"),
    rule("expression", "either expression or helpers", expression="0 * * * *", helpers=DAILY_13),
    rule("timezone", "unknown timezone 'Mars/Olympus'", timezone="Mars/Olympus", **HOURLY),
    rule("timezone", "unknown timezone", timezone="../etc/passwd", **HOURLY),
    # Names in the zone database that are no place.
    rule("timezone", "unknown timezone 'localtime'", timezone="localtime", **HOURLY),
    rule("timezone", "unknown timezone 'posixrules'", timezone="posixrules", **HOURLY),
    rule("timezone", "unknown timezone 'Factory'", timezone="Factory", **HOURLY),
    rule("timezone", "(did you mean 'Europe/Rome'?)", timezone="europe/rome", **HOURLY),
    rule("timezone", "(did you mean 'America/New_York'?)", timezone="America/NewYork", **HOURLY),
    rule("name", "1 to 200", name=" ", **HOURLY),
    rule("queue", "high, default, low", queue="urgent", **HOURLY),
    rule("max_attempts", "between 1 and 100", max_attempts=0, **HOURLY),
    rule("timeout_seconds", "greater than 0", timeout_seconds=-1, **HOURLY),
    rule("missed_runs", "'skip' or 'run_once'", missed_runs="sometimes", **HOURLY),
    bad_create(422, "invalid_command", "command_line", "unbalanced", command_line="demo:echo 'x"),
    bad_create(422, "invalid_command", "command", "unknown command", command_line="demo:nope"),
    bad_create(422, "invalid_command", "arguments.message", "missing", command_line="demo:echo"),
    bad_create(400, "bad_request", None, "`priority`", priority=1, **HOURLY),
    bad_create(400, "bad_request", "helpers[0].args", "array", helpers=[{"name": "x", "args": 1}]),
    bad_create(400, "bad_request", "without_overlapping", "bool", without_overlapping="yes"),
    Bad("POST", "/api/schedules", 400, "bad_request", None, "`name`", {"expression": "@daily"}),
    Bad("GET", "/api/schedules/not-a-uuid", 422, "validation_error", "id", "not a schedule id"),
    Bad("POST", "/api/schedules/x/run", 422, "validation_error", "id", "not a schedule id"),
    Bad("GET", "/api/schedules?limit=0", 400, "bad_request", "limit", ">= 1"),
    Bad("GET", "/api/schedules?active=maybe", 400, "bad_request", "active", "bool"),
    Bad("GET", "/api/schedules?cursor=garbage", 422, "validation_error", "cursor", "invalid"),
    Bad("PATCH", f"/api/schedules/{MISSING}", 400, "bad_request", None, "`active`", {"active": 0}),
    Bad("PATCH", f"/api/schedules/{MISSING}", 400, "bad_request", None, "`color`", {"color": 1}),
    Bad("POST", f"/api/schedules/{MISSING}/comments", 400, "bad_request", None, "`text`", {}),
    Bad(
        "POST",
        "/api/frequencies/preview",
        422,
        "validation_error",
        "count",
        "1-100",
        {**HOURLY, "count": 0},
    ),
    Bad(
        "POST",
        "/api/frequencies/preview",
        422,
        "validation_error",
        "count",
        "1-100",
        {**HOURLY, "count": 101},
    ),
    Bad(
        "POST",
        "/api/frequencies/preview",
        422,
        "validation_error",
        "timezone",
        "unknown",
        {**HOURLY, "timezone": "Nowhere"},
    ),
    Bad(
        "POST",
        "/api/frequencies/preview",
        422,
        "validation_error",
        "helpers[0].name",
        "",
        {"helpers": [{"name": "sometimes"}]},
    ),
    Bad("POST", "/api/frequencies/preview", 422, "validation_error", "expression", "either", {}),
    Bad(
        "POST",
        "/api/frequencies/preview",
        422,
        "validation_error",
        "timezone",
        "unknown timezone 'localtime'",
        {**HOURLY, "timezone": "localtime"},
    ),
    Bad(
        "PATCH",
        f"/api/schedules/{MISSING}",
        422,
        "validation_error",
        "timezone",
        "unknown timezone 'Factory'",
        {"timezone": "Factory"},
    ),
    *(
        Bad(method, f"/api/schedules/{MISSING}{suffix}", 404, "not_found", None, "not found", body)
        for method, suffix, body in [
            ("GET", "", None),
            ("PATCH", "", {"name": "x"}),
            ("DELETE", "", None),
            ("POST", "/pause", None),
            ("POST", "/resume", None),
            ("POST", "/run", None),
            ("GET", "/runs", None),
            ("GET", "/comments", None),
            ("POST", "/comments", {"text": "hello"}),
        ]
    ),
]


@sqlite_only
@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=str)
def test_bad_input_gets_a_json_4xx_naming_the_field(client: TestClient[Litestar], bad: Bad):
    response = client.request(bad.method, bad.path, json=bad.body)
    assert response.status_code == bad.status, response.text
    payload = response.json()
    assert payload["error"] == bad.error
    assert payload.get("field") == bad.field
    assert bad.message in payload["message"]


@sqlite_only
def test_edit_errors_name_the_field(client: TestClient[Litestar]):
    path = f"/api/schedules/{create(client, **ECHO, **HOURLY)['id']}"
    for body, field, message in [
        ({"helpers": [{"name": "hourlyy"}]}, "helpers[0].name", "did you mean 'hourly'"),
        ({"expression": "* * *"}, "expression", "cron expression"),
        ({"timezone": "Europe/Nowhere"}, "timezone", "unknown timezone"),
        ({"command_line": "demo:echo"}, "arguments.message", "missing argument"),
        ({"max_attempts": 101}, "max_attempts", "between 1 and 100"),
        ({"name": ""}, "name", "1 to 200"),
    ]:
        response = client.patch(path, json=body)
        assert response.status_code == 422, response.text
        assert (response.json()["field"], message in response.json()["message"]) == (field, True)
    comment = client.post(f"{path}/comments", json={"text": "  "})
    assert (comment.status_code, comment.json()["field"]) == (422, "text")


@sqlite_only
def test_openapi_documents_the_schedule_operations(client: TestClient[Litestar]):
    schema = client.get("/schema/openapi.json").json()
    operations = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if path.startswith(("/api/schedules", "/api/frequencies"))
    }
    assert {key: op["operationId"] for key, op in operations.items()} == {
        ("POST", "/api/schedules"): "createSchedule",
        ("GET", "/api/schedules"): "listSchedules",
        ("GET", "/api/schedules/{schedule_id}"): "getSchedule",
        ("PATCH", "/api/schedules/{schedule_id}"): "editSchedule",
        ("DELETE", "/api/schedules/{schedule_id}"): "deleteSchedule",
        ("POST", "/api/schedules/{schedule_id}/pause"): "pauseSchedule",
        ("POST", "/api/schedules/{schedule_id}/resume"): "resumeSchedule",
        ("POST", "/api/schedules/{schedule_id}/run"): "runScheduleNow",
        ("GET", "/api/schedules/{schedule_id}/runs"): "listScheduleRuns",
        ("GET", "/api/schedules/{schedule_id}/comments"): "listScheduleComments",
        ("POST", "/api/schedules/{schedule_id}/comments"): "addScheduleComment",
        ("GET", "/api/frequencies"): "listFrequencyHelpers",
        ("POST", "/api/frequencies/preview"): "previewFrequency",
    }
    for op in operations.values():
        assert op["summary"]
        assert op["description"]
    create_op = operations[("POST", "/api/schedules")]
    assert set(create_op["responses"]) >= {"201", "400", "422"}
    assert set(operations[("POST", "/api/schedules/{schedule_id}/pause")]["responses"]) >= {
        "200",
        "404",
        "409",
    }
    assert "204" in operations[("DELETE", "/api/schedules/{schedule_id}")]["responses"]
    edit = schema["components"]["schemas"]["EditSchedule"]
    assert "active" not in edit["properties"]
    assert not edit.get("required")
    html = client.get("/schema").text
    for op in operations.values():
        assert op["operationId"] in html


def test_schedule_detail_shows_who_changed_what(client, chronicle):
    created = client.post(
        "/api/schedules",
        json={"name": "audit", "command_line": "demo:noop", "expression": "0 * * * *"},
        headers=bearer(chronicle, "ana"),
    ).json()
    client.patch(
        f"/api/schedules/{created['id']}",
        json={"queue": "high"},
        headers=bearer(chronicle, "bo"),
    )
    client.post(f"/api/schedules/{created['id']}/pause", headers=bearer(chronicle, "cy"))
    history = client.get(f"/api/schedules/{created['id']}").json()["history"]
    assert [(h["event"], h["by"]) for h in history] == [
        ("created", "token:ana"),
        ("edited", "token:bo"),
        ("paused", "token:cy"),
    ]
    assert history[1]["changes"] == {"queue": {"from": "default", "to": "high"}}
