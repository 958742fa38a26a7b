"""The dashboard's shell: sign-in and sign-out pages, pages behind the session, security
headers, the home page's widgets, and the live event stream (tenant-scoped, resumable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from interfaces.web.live import MAX_CONNECTIONS
from interfaces.web.pages import safe_next
from tests.conftest import wait_until
from tests.integration.conftest import bearer

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    chronicle.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:tests")
    with TestClient(create_app(chronicle)) as test_client:
        yield test_client


def sign_in(client: TestClient[Litestar], next_path: str = "/") -> Any:
    return client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD, "next": next_path},
        follow_redirects=False,
    )


def events(text: str) -> list[dict[str, Any]]:
    """The `job` messages of a Server-Sent Events body, with their ids."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if fields.get("event") == "job":
            found.append({"id": int(fields["id"]), **json.loads(fields["data"])})
    return found


def test_pages_send_the_browser_to_sign_in_and_back(client: TestClient[Litestar]):
    away = client.get("/partials/waiting?queue=low", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=/partials/waiting%3Fqueue%3Dlow"
    login = client.get("/login?next=/jobs")
    assert login.status_code == 200
    assert 'name="next" value="/jobs"' in login.text
    wrong = client.post("/login", data={"username": "ada", "password": "not the password!"})
    assert wrong.status_code == 401
    assert "Wrong name or password." in wrong.text
    assert "not the password" not in wrong.text
    signed_in = sign_in(client, "/queues")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/queues"
    assert "HttpOnly" in signed_in.headers["set-cookie"]
    home = client.get("/")
    assert home.status_code == 200
    assert "user:ada" in home.text or "ada" in home.text
    # A partial htmx asks for without a session: htmx is told to take the page to sign-in.
    client.cookies.clear()
    partial = client.get("/partials/stats", headers={"HX-Request": "true"})
    assert partial.status_code == 401
    assert partial.headers["hx-redirect"] == "/login?next=/partials/stats"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client: TestClient[Litestar]):
    sign_in(client)
    page = client.get("/").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("/jobs?x=1", "/jobs?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_paths_of_this_site_are_followed_after_sign_in(raw: str | None, safe: str):
    assert safe_next(raw) == safe


def test_pages_forbid_framing_and_foreign_scripts(client: TestClient[Litestar]):
    sign_in(client)
    for path in ("/", "/login", "/static/app.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-frame-options"] == "DENY"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
    home = client.get("/").text
    assert "<script>" not in home  # every script is a file of this origin
    assert " style=" not in home
    assert client.get("/static/vendor/htmx.min.js").status_code == 200


def test_the_home_page_shows_the_four_widgets(client: TestClient[Litestar], chronicle: Chronicle):
    operator = bearer(chronicle, "ci", role=Role.OPERATOR)
    for _ in range(2):
        assert (
            client.post(
                "/api/jobs", json={"command_line": "demo:echo hi", "queue": "low"}, headers=operator
            ).status_code
            == 201
        )
    schedule = client.post(
        "/api/schedules",
        json={"name": "nightly", "command_line": "demo:echo n", "expression": "0 3 * * *"},
        headers=operator,
    )
    assert schedule.status_code == 201
    for runner in chronicle.runners.values():
        runner.catch_up()
    sign_in(client)
    home = client.get("/").text
    for title in ("Jobs by queue", "Waiting", "Clock", "Live queue monitor"):
        assert title in home
    stats = client.get("/partials/stats").text
    low = stats.split('data-queue="low"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-count="waiting">2</td>' in low
    waiting = client.get("/partials/waiting").text
    assert '<tr data-queue="low" class="highlight">' in waiting  # the oldest wait
    assert waiting.count('class="highlight"') == 1
    upcoming = client.get("/partials/upcoming").text
    assert "nightly" in upcoming
    assert f"/schedules/{schedule.json()['id']}" in upcoming


def test_the_live_stream_carries_the_tenants_job_events_and_resumes(chronicle: Chronicle):
    acme = bearer(chronicle, "acme-op", role=Role.OPERATOR, tenant="acme")
    globex = bearer(chronicle, "globex-op", role=Role.OPERATOR, tenant="globex")
    with TestClient(create_app(chronicle)) as client:
        assert client.get("/api/events", headers=acme).status_code == 200  # follows from now
        job = client.post("/api/jobs", json={"command_line": "demo:echo a"}, headers=acme)
        assert job.status_code == 201
        job_id = job.json()["id"]
        other = client.post("/api/jobs", json={"command_line": "demo:echo g"}, headers=globex)
        for runner in chronicle.runners.values():
            runner.catch_up()

        def stream(headers: dict[str, str], last: int = 0) -> list[dict[str, Any]]:
            response = client.get("/api/events", headers={**headers, "Last-Event-ID": str(last)})
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "data: \r\n" not in response.text  # comments carry no empty message
            return events(response.text)

        wait_until(lambda: any(e["job_id"] == job_id for e in stream(acme)), what="the event")
        seen = stream(acme)
        assert [(e["event"], e["job_id"], e["queue"], e["command"]) for e in seen] == [
            ("dispatched", job_id, "default", "demo:echo")
        ]
        assert "tenant" not in seen[0]
        # The other tenant's stream has its own job only, never acme's.
        theirs = stream(globex)
        assert [e["job_id"] for e in theirs] == [other.json()["id"]]
        # A new stream (no Last-Event-ID) starts with the tenant's recent events.
        fresh = client.get("/api/events", headers=acme)
        assert [e["job_id"] for e in events(fresh.text)] == [job_id]
        # Resuming after the last id seen gives nothing again.
        assert stream(acme, last=seen[-1]["id"]) == []


def csrf_of(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_a_principal_bound_to_no_tenant_switches_the_tenant_it_looks_at(
    client: TestClient[Litestar], chronicle: Chronicle
):
    chronicle.accounts.create(name="root", password=PASSWORD, role=Role.ADMIN, by="cli:tests")
    acme = {**bearer(chronicle, "ci", role=Role.OPERATOR), "X-Chronicle-Tenant": "acme"}
    assert (
        client.post("/api/jobs", json={"command_line": "demo:echo a"}, headers=acme).status_code
        == 201
    )
    for runner in chronicle.runners.values():
        runner.catch_up()
    client.post("/login", data={"username": "root", "password": PASSWORD})
    home = client.get("/").text
    assert 'name="tenant" value="default"' in home
    assert 'waiting">1<' not in client.get("/partials/stats").text
    switched = client.post(
        "/tenant",
        data={"tenant": "acme", "next": "/", "csrf_token": csrf_of(home)},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/"
    assert 'name="tenant" value="acme"' in client.get("/").text
    default = client.get("/partials/stats").text.split('data-queue="default"', 1)[1]
    assert default.split("</tr>", 1)[0].count('data-count="waiting">1<') == 1
    bad = client.post("/tenant", data={"tenant": "Not A Tenant", "csrf_token": csrf_of(home)})
    assert bad.status_code == 422
    assert "a tenant is 1 to 63" in bad.text


def test_a_bound_viewer_has_no_switch_and_cannot_forge_one(
    client: TestClient[Litestar], chronicle: Chronicle
):
    chronicle.accounts.create(
        name="bea", password=PASSWORD, role=Role.VIEWER, tenant="acme", by="cli:tests"
    )
    client.post("/login", data={"username": "bea", "password": PASSWORD})
    home = client.get("/").text
    assert 'action="/tenant"' not in home
    forged = client.post("/tenant", data={"tenant": "globex", "csrf_token": csrf_of(home)})
    assert forged.status_code == 422
    assert "bound to tenant &#39;acme&#39;" in forged.text  # escaped in the page


def test_live_streams_are_bounded_per_process(chronicle: Chronicle):
    headers = bearer(chronicle, "viewer", role=Role.VIEWER)
    with TestClient(create_app(chronicle)) as client:
        feed = client.app.state.live
        feed.connections = MAX_CONNECTIONS
        refused = client.get("/api/events", headers=headers)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        feed.connections = 0
        assert client.get("/api/events", headers=headers).status_code == 200
