"""What a web page can make an operator's browser send: JSON routes take only application/json
(415 otherwise, and nothing happens), uploads only multipart forms, and CORS headers only for
the origins in CHRONICLE_CORS_ORIGINS. A page signed in by the session cookie must also send
its CSRF token with an unsafe request. A 500 never repeats the request's credentials."""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import structlog
from litestar import Litestar
from litestar.testing import TestClient

from domain.principals import Role
from infrastructure.logging import configure_logging
from interfaces.bootstrap import Chronicle
from interfaces.http.app import create_app
from tests.integration.conftest import api_client, bearer
from tests.integration.test_http import json_routes, project

pytestmark = pytest.mark.integration

# Content types are checked before storage is touched: SQLite is enough.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

NOOP = b'{"command": "demo:noop"}'
PAGE = "https://ops.example.com"


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


@pytest.fixture
def cors_client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    chronicle.settings = dataclasses.replace(
        chronicle.settings, cors_origins=(PAGE, "http://localhost:5173")
    )
    with api_client(chronicle) as test_client:
        yield test_client


def job_count(client: TestClient[Litestar], chronicle: Chronicle) -> int:
    project(chronicle)
    response = client.get("/api/jobs")
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


# -- JSON routes take JSON ---------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        ("text/plain", "Content-Type text/plain"),
        ("text/plain;charset=UTF-8", "Content-Type text/plain"),
        ("application/x-www-form-urlencoded", "Content-Type application/x-www-form-urlencoded"),
        ("multipart/form-data; boundary=x", "Content-Type multipart/form-data"),
        ("application/merge-patch+json", "Content-Type application/merge-patch+json"),
        (None, "no Content-Type"),
    ],
)
def test_a_json_route_refuses_other_content_types_and_does_nothing(
    client: TestClient[Litestar], chronicle: Chronicle, content_type: str | None, shown: str
):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/jobs", content=NOOP, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json() == {
        "error": "unsupported_media_type",
        "message": "this route takes a JSON body: send it with Content-Type application/json "
        f"(got {shown})",
    }
    assert job_count(client, chronicle) == 0


@sqlite_only
def test_without_credentials_a_json_route_answers_401_before_any_content_type_check(
    chronicle: Chronicle,
):
    with TestClient(create_app(chronicle)) as anonymous:
        response = anonymous.post("/api/jobs", content=NOOP, headers={"content-type": "text/plain"})
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
    with api_client(chronicle) as client:
        assert job_count(client, chronicle) == 0


@sqlite_only
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
def test_a_json_route_takes_application_json(
    client: TestClient[Litestar], chronicle: Chronicle, content_type: str
):
    response = client.post("/api/jobs", content=NOOP, headers={"content-type": content_type})
    assert response.status_code == 201, response.text
    assert job_count(client, chronicle) == 1


@sqlite_only
def test_every_json_route_refuses_text_plain(client: TestClient[Litestar]):
    routes = json_routes(client)
    assert len(routes) >= 15
    for method, url in routes:
        response = client.request(
            method, url, content=b"{}", headers={"content-type": "text/plain"}
        )
        assert response.status_code == 415, (method, url, response.text)
        assert response.json()["error"] == "unsupported_media_type"


@sqlite_only
def test_optional_bodies_may_still_be_left_out(client: TestClient[Litestar]):
    job = client.post("/api/jobs", json={"command": "demo:noop", "delay_seconds": 3600})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    # No body and no content type, as `curl -X POST` sends: the body is optional here.
    assert client.post("/api/queues/low/pause").status_code == 200
    assert client.post("/api/queues/low/resume").status_code == 200
    cancelled = client.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    # An empty body under any content type is still no body.
    empty = client.post("/api/jobs/failed/retry", headers={"content-type": "text/plain"})
    assert empty.status_code == 200, empty.text
    # A body, though, must be JSON.
    refused = client.post(
        f"/api/jobs/{job_id}/cancel", content=b'{"reason": "x"}', headers={"content-type": ""}
    )
    assert refused.status_code == 415, refused.text


@sqlite_only
def test_routes_without_a_body_ignore_the_content_type(client: TestClient[Litestar]):
    response = client.get("/api/jobs", headers={"content-type": "text/plain"})
    assert response.status_code == 200, response.text


@sqlite_only
def test_the_schema_still_declares_json_bodies(client: TestClient[Litestar]):
    schema = client.get("/schema/openapi.json").json()
    dispatch = schema["paths"]["/api/jobs"]["post"]["requestBody"]
    assert list(dispatch["content"]) == ["application/json"]
    upload = schema["paths"]["/api/imports"]["post"]["requestBody"]
    assert list(upload["content"]) == ["multipart/form-data"]
    # Every operation with a body documents its 415; the others do not have one.
    for item in schema["paths"].values():
        for op in item.values():
            assert ("415" in op["responses"]) == ("requestBody" in op), op["operationId"]
    refused = schema["paths"]["/api/jobs"]["post"]["responses"]["415"]
    assert refused["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


# -- uploads take multipart forms ---------------------------------------------------------------


def upload_file() -> dict[str, Any]:
    return {"file": ("people.csv", io.BytesIO(b"name,email\nAda,ada@example.com\n"), "text/csv")}


@sqlite_only
@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"json": {"importer": "contacts"}}, "Content-Type application/json"),
        ({"data": {"importer": "contacts"}}, "Content-Type application/x-www-form-urlencoded"),
        (
            {"content": b"name\nAda\n", "headers": {"content-type": "text/csv"}},
            "Content-Type text/csv",
        ),
        ({}, "no Content-Type"),
    ],
)
def test_the_upload_route_takes_only_multipart_forms(
    client: TestClient[Litestar], chronicle: Chronicle, kwargs: dict[str, Any], shown: str
):
    response = client.post("/api/imports", **kwargs)
    assert response.status_code == 415, response.text
    assert response.json() == {
        "error": "unsupported_media_type",
        "message": "this route takes a multipart/form-data form: send it with Content-Type "
        f"multipart/form-data (got {shown})",
    }
    project(chronicle)
    assert client.get("/api/imports").json()["items"] == []


@sqlite_only
def test_the_upload_route_takes_a_multipart_form(client: TestClient[Litestar]):
    response = client.post("/api/imports", files=upload_file(), data={"importer": "contacts"})
    assert response.status_code == 201, response.text


# -- CORS ---------------------------------------------------------------------------------------


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@sqlite_only
def test_no_cors_headers_by_default(client: TestClient[Litestar]):
    simple = client.get("/api/jobs", headers={"origin": PAGE})
    assert simple.status_code == 200
    assert cors_headers(simple) == {}
    preflight = client.options(
        "/api/jobs",
        headers={"origin": PAGE, "access-control-request-method": "POST"},
    )
    assert cors_headers(preflight) == {}


@sqlite_only
def test_cors_for_a_configured_origin(cors_client: TestClient[Litestar]):
    preflight = cors_client.options(
        "/api/jobs",
        headers={
            "origin": PAGE,
            "access-control-request-method": "POST",
            "access-control-request-headers": (
                "authorization, content-type, idempotency-key, x-csrf-token"
            ),
        },
    )
    assert preflight.status_code == 204, preflight.text
    headers = cors_headers(preflight)
    assert headers["access-control-allow-origin"] == PAGE
    assert headers["access-control-allow-credentials"] == "true"
    assert set(headers["access-control-allow-methods"].split(", ")) >= {
        "GET",
        "POST",
        "PATCH",
        "DELETE",
    }
    allowed = set(headers["access-control-allow-headers"].split(", "))
    assert allowed >= {
        "authorization",
        "content-type",
        "idempotency-key",
        "x-chronicle-tenant",
        "x-csrf-token",
    }
    # The actor is the authenticated principal: no header names it any more.
    assert "x-chronicle-user" not in {name.lower() for name in allowed}
    assert "Origin" in preflight.headers["vary"]

    simple = cors_client.post("/api/jobs", json={"command": "demo:noop"}, headers={"origin": PAGE})
    assert simple.status_code == 201, simple.text
    assert simple.headers["access-control-allow-origin"] == PAGE
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert "location" in simple.headers["access-control-expose-headers"].lower()


@sqlite_only
def test_no_cors_for_another_origin(cors_client: TestClient[Litestar]):
    other = "https://evil.example.net"
    preflight = cors_client.options(
        "/api/jobs", headers={"origin": other, "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = cors_client.get("/api/jobs", headers={"origin": other})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    # A near miss is another origin too.
    near = cors_client.get("/api/jobs", headers={"origin": PAGE + ".evil.example.net"})
    assert "access-control-allow-origin" not in near.headers


# -- secrets ------------------------------------------------------------------------------------


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The process's logging as `chronicle serve --log-format json` sets it, into capsys."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    configure_logging("json")
    # A logger cached now would keep this set-up in later tests (and their capture_logs).
    structlog.configure(cache_logger_on_first_use=False)
    yield capsys
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


@sqlite_only
def test_a_500_repeats_no_credential(
    client: TestClient[Litestar],
    chronicle: Chronicle,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: pytest.CaptureFixture[str],
):
    # What must not leak: a valid token (the request must get past the guard to fail), the
    # secret part of it on its own, and a session cookie.
    token = bearer(chronicle)["Authorization"].removeprefix("Bearer ")
    token_secret = token.split("_", 2)[2]
    cookie = "s3cret-session"
    secrets = (token, token_secret, cookie)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the dispatch failed")

    monkeypatch.setattr(chronicle.jobs, "dispatch_once", broken)
    response = client.post(
        "/api/jobs",
        json={"command": "demo:echo", "arguments": [f"body-{token}-{cookie}"]},
        headers={
            "Authorization": f"Bearer {token}",
            "Cookie": f"chronicle_session={cookie}",
            "Idempotency-Key": str(uuid4()),
        },
    )
    assert response.status_code == 500, response.text
    logged = json_logs.readouterr()
    assert "unhandled error" in logged.err
    assert "the dispatch failed" in logged.err  # the traceback is there
    for secret in secrets:
        assert secret not in response.text
        assert secret not in str(dict(response.headers))
        assert secret not in logged.err
        assert secret not in logged.out


# -- CSRF ---------------------------------------------------------------------------------------


@sqlite_only
def test_an_upload_signed_in_by_cookie_needs_the_csrf_token(chronicle: Chronicle):
    password = "a long enough password"  # noqa: S105 - a test account's
    chronicle.accounts.create(name="ada", password=password, role=Role.OPERATOR, by="cli:tests")
    with TestClient(create_app(chronicle)) as browser:
        signed_in = browser.post("/auth/login", json={"username": "ada", "password": password})
        assert signed_in.status_code == 200, signed_in.text
        csrf = signed_in.json()["csrf_token"]
        assert csrf
        assert "authorization" not in browser.headers
        assert browser.cookies.get("chronicle_session")

        form = {"importer": "contacts"}
        for refused in (
            browser.post("/api/imports", files=upload_file(), data=form),
            browser.post(
                "/api/imports", files=upload_file(), data=form, headers={"X-CSRF-Token": "x"}
            ),
            browser.post("/api/imports", files=upload_file(), data={**form, "csrf_token": "x"}),
        ):
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "forbidden"
            assert "CSRF token" in refused.json()["message"]
        project(chronicle)
        assert browser.get("/api/imports").json()["items"] == []  # a safe request needs none

        by_header = browser.post(
            "/api/imports", files=upload_file(), data=form, headers={"X-CSRF-Token": csrf}
        )
        assert by_header.status_code == 201, by_header.text
        assert by_header.json()["requested_by"] == "user:ada"
        by_field = browser.post(
            "/api/imports", files=upload_file(), data={**form, "csrf_token": csrf}
        )
        assert by_field.status_code == 201, by_field.text
        assert by_field.json()["requested_by"] == "user:ada"
        project(chronicle)
        listed = browser.get("/api/imports").json()["items"]
        assert {item["id"] for item in listed} == {by_header.json()["id"], by_field.json()["id"]}
