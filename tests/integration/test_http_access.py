"""Who may call what, over every operation of the OpenAPI document (walked, not hand-picked):
the role matrix (anonymous, viewer, operator, admin) and tenant isolation (another tenant's
ids are not found anywhere, its lists and filters show none of it, writes change nothing)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from tests.integration.conftest import bearer
from tests.integration.test_batches import Harness
from tests.integration.test_exports import add_contacts
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN
PUBLIC = None

#: The least role of every operation (None: anyone, no credentials). Stated here, not derived
#: from the code: a new route fails `test_the_matrix_names_every_operation` until it is added.
LEAST_ROLE: dict[tuple[str, str], Role | None] = {
    ("POST", "/auth/login"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("POST", "/auth/logout"): VIEWER,
    ("GET", "/auth/session"): VIEWER,
    ("GET", "/api/jobs"): VIEWER,
    ("GET", "/api/jobs/waiting"): VIEWER,
    ("GET", "/api/jobs/failed"): VIEWER,
    ("GET", "/api/jobs/{job_id}"): VIEWER,
    ("GET", "/api/jobs/{job_id}/comments"): VIEWER,
    ("POST", "/api/jobs"): OPERATOR,
    ("POST", "/api/jobs/{job_id}/comments"): OPERATOR,
    ("POST", "/api/jobs/{job_id}/cancel"): OPERATOR,
    ("POST", "/api/jobs/{job_id}/retry"): OPERATOR,
    ("POST", "/api/jobs/failed/retry"): OPERATOR,
    ("DELETE", "/api/jobs/failed/{job_id}"): OPERATOR,
    ("GET", "/api/queues"): VIEWER,
    ("POST", "/api/queues/pause"): ADMIN,
    ("POST", "/api/queues/resume"): ADMIN,
    ("POST", "/api/queues/{queue}/pause"): ADMIN,
    ("POST", "/api/queues/{queue}/resume"): ADMIN,
    ("GET", "/api/commands"): VIEWER,
    ("GET", "/api/schedules"): VIEWER,
    ("GET", "/api/schedules/{schedule_id}"): VIEWER,
    ("GET", "/api/schedules/{schedule_id}/runs"): VIEWER,
    ("GET", "/api/schedules/{schedule_id}/comments"): VIEWER,
    ("POST", "/api/schedules"): OPERATOR,
    ("PATCH", "/api/schedules/{schedule_id}"): OPERATOR,
    ("DELETE", "/api/schedules/{schedule_id}"): OPERATOR,
    ("POST", "/api/schedules/{schedule_id}/pause"): OPERATOR,
    ("POST", "/api/schedules/{schedule_id}/resume"): OPERATOR,
    ("POST", "/api/schedules/{schedule_id}/run"): OPERATOR,
    ("POST", "/api/schedules/{schedule_id}/comments"): OPERATOR,
    ("GET", "/api/batches"): VIEWER,
    ("GET", "/api/batches/{batch_id}"): VIEWER,
    ("POST", "/api/batches"): OPERATOR,
    ("POST", "/api/batches/{batch_id}/jobs"): OPERATOR,
    ("POST", "/api/batches/{batch_id}/cancel"): OPERATOR,
    ("POST", "/api/batches/{batch_id}/retry-failed"): OPERATOR,
    ("GET", "/api/imports"): VIEWER,
    ("GET", "/api/imports/{import_id}"): VIEWER,
    ("GET", "/api/imports/{import_id}/failed-rows"): VIEWER,
    ("GET", "/api/imports/{import_id}/failed-rows.csv"): VIEWER,
    ("POST", "/api/imports"): OPERATOR,
    ("POST", "/api/imports/{import_id}/retry-failed"): OPERATOR,
    ("POST", "/api/imports/{import_id}/cancel"): OPERATOR,
    ("GET", "/api/exports"): VIEWER,
    ("GET", "/api/exports/{export_id}"): VIEWER,
    ("GET", "/api/exports/{export_id}/download"): VIEWER,
    ("POST", "/api/exports"): OPERATOR,
    ("GET", "/api/exporters"): VIEWER,
    ("GET", "/api/frequencies"): VIEWER,
    ("GET", "/api/events"): VIEWER,
    ("POST", "/api/frequencies/preview"): VIEWER,
}

PASSWORD = "a long enough password"  # noqa: S105 - a test account's

#: A body each write would accept if the resource were there: a refusal cannot come from a
#: body check instead of the access check under test.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/jobs"): {"command_line": "demo:echo globex"},
    ("POST", "/api/jobs/{job_id}/comments"): {"text": "from globex"},
    ("POST", "/api/jobs/{job_id}/cancel"): {"reason": "globex"},
    ("POST", "/api/jobs/failed/retry"): {},
    ("POST", "/api/queues/pause"): {"reason": "globex"},
    ("POST", "/api/queues/{queue}/pause"): {"reason": "globex"},
    ("POST", "/api/schedules"): {
        "name": "globex",
        "command_line": "demo:echo globex",
        "expression": "0 * * * *",
    },
    ("PATCH", "/api/schedules/{schedule_id}"): {"description": "changed by globex"},
    ("POST", "/api/schedules/{schedule_id}/comments"): {"text": "from globex"},
    ("POST", "/api/batches"): {"name": "globex", "jobs": ["demo:echo globex"]},
    ("POST", "/api/batches/{batch_id}/jobs"): {"jobs": ["demo:echo globex"]},
    ("POST", "/api/batches/{batch_id}/cancel"): {"reason": "globex"},
    ("POST", "/api/imports/{import_id}/retry-failed"): {},
    ("POST", "/api/imports/{import_id}/cancel"): {"reason": "globex"},
    ("POST", "/api/exports"): {"exporter": "contacts", "format": "csv"},
    ("POST", "/api/frequencies/preview"): {"expression": "0 * * * *"},
    ("POST", "/auth/login"): {"username": "matrix", "password": PASSWORD},
}

CSV = "name,email,age,country\nAda,ada@example.com,36,UK\nBob,not-an-email,41,US\n"


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(chronicle)) as test_client:
        yield test_client


def operations(client: TestClient[Litestar]) -> list[tuple[str, str]]:
    document = client.get("/schema/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "put", "delete"}
    ]


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def call(
    client: TestClient[Litestar],
    method: str,
    path: str,
    ids: dict[str, str],
    headers: dict[str, str],
) -> Any:
    url = fill(path, ids)
    if (method, path) == ("POST", "/api/imports"):
        return client.post(
            url,
            files={"file": ("contacts.csv", CSV.encode(), "text/csv")},
            data={"importer": "contacts"},
            headers=headers,
        )
    body = BODIES.get((method, path))
    if method in {"POST", "PATCH"}:
        return client.request(method, url, json=body, headers=headers)
    return client.request(method, url, headers=headers)


def random_ids() -> dict[str, str]:
    return {
        "job_id": str(uuid4()),
        "schedule_id": str(uuid4()),
        "batch_id": str(uuid4()),
        "import_id": str(uuid4()),
        "export_id": str(uuid4()),
        "queue": "low",
    }


def test_the_matrix_names_every_operation(client: TestClient[Litestar]):
    assert sorted(operations(client)) == sorted(LEAST_ROLE)


@pytest.mark.parametrize("role", [None, VIEWER, OPERATOR, ADMIN], ids=str)
def test_role_matrix(client: TestClient[Litestar], chronicle: Chronicle, role: Role | None):
    """Every operation, for one caller: anonymous gets 401 with a Bearer challenge everywhere
    but the public routes; a role below the operation's gets 403 naming the role needed;
    a role that may passes the access check (whatever the operation answers then)."""
    headers = {} if role is None else bearer(chronicle, f"matrix-{role}", role=role)
    chronicle.accounts.create(name="matrix", password=PASSWORD, role=VIEWER, by="cli:tests")
    ids = random_ids()
    for method, path in operations(client):
        least = LEAST_ROLE[(method, path)]
        response = call(client, method, path, ids, headers)
        client.cookies.clear()  # the sign-in's cookie: each call shows only `headers`
        where = f"{role} {method} {path}: {response.status_code} {response.text[:200]}"
        assert response.status_code < 500, where
        if least is not None and role is None:
            assert response.status_code == 401, where
            assert response.headers["www-authenticate"].startswith("Bearer"), where
            assert response.json()["error"] == "unauthorized", where
        elif least is not None and role is not None and not role.includes(least):
            assert response.status_code == 403, where
            assert f"needs the {least} role" in response.json()["message"], where
        else:
            assert response.status_code not in (401, 403), where


def test_queue_control_needs_a_principal_bound_to_no_tenant(
    client: TestClient[Litestar], chronicle: Chronicle
):
    bound = bearer(chronicle, "acme-admin", role=ADMIN, tenant="acme")
    for path in ("/api/queues/pause", "/api/queues/resume", "/api/queues/low/pause"):
        response = client.post(path, headers=bound)
        assert response.status_code == 403, response.text
        assert "bound to no tenant" in response.json()["message"]
    assert client.get("/api/queues", headers=bound).status_code == 200


def test_a_bound_principal_naming_another_tenant_is_refused_everywhere(
    client: TestClient[Litestar], chronicle: Chronicle
):
    headers = {**bearer(chronicle, "globex-admin", role=ADMIN, tenant="globex")}
    head = chronicle.log.head()
    ids = random_ids()
    for method, path in operations(client):
        if LEAST_ROLE[(method, path)] is PUBLIC:
            continue
        response = call(client, method, path, ids, {**headers, "X-Chronicle-Tenant": "acme"})
        where = f"{method} {path}: {response.status_code} {response.text[:200]}"
        if path.startswith("/api/queues/") and method == "POST":
            assert response.status_code == 403, where  # bound: no queue control at all
            continue
        assert response.status_code == 403, where
        assert "bound to tenant 'globex', not 'acme'" in response.json()["message"], where
    assert chronicle.log.head() == head
    # Without the header, a bound principal acts for its own tenant.
    assert client.get("/api/jobs", headers=headers).status_code == 200


def _acme_world(
    client: TestClient[Litestar], chronicle: Chronicle, acme: dict[str, str]
) -> dict[str, str]:
    """One of everything in tenant acme, run to its end: a failed job with a comment, a
    schedule with a run and a comment, a batch, an import with a failed row, a written export."""
    h = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(h.queue)
    add_contacts(chronicle.db, "acme", [("a@example.com", "Acme contact", 3, "IT")])

    def ok(response: Any, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    failed = ok(
        client.post(
            "/api/jobs",
            json={"command_line": "demo:fail --times 3", "max_attempts": 1, "queue": "low"},
            headers=acme,
        ),
        201,
    )["id"]
    ok(client.post(f"/api/jobs/{failed}/comments", json={"text": "acme only"}, headers=acme), 201)
    schedule = ok(
        client.post(
            "/api/schedules",
            json={
                "name": "acme-hourly",
                "command_line": "demo:echo acme",
                "expression": "0 * * * *",
            },
            headers=acme,
        ),
        201,
    )["id"]
    ok(client.post(f"/api/schedules/{schedule}/run", headers=acme), 202)
    ok(
        client.post(f"/api/schedules/{schedule}/comments", json={"text": "acme"}, headers=acme),
        201,
    )
    batch = ok(
        client.post(
            "/api/batches",
            json={"name": "acme-batch", "jobs": ["demo:echo one", "demo:fail --times 3"]},
            headers=acme,
        ),
        201,
    )["id"]
    imported = ok(
        client.post(
            "/api/imports",
            files={"file": ("contacts.csv", CSV.encode(), "text/csv")},
            data={"importer": "contacts"},
            headers=acme,
        ),
        201,
    )["id"]
    export = ok(
        client.post("/api/exports", json={"exporter": "contacts", "format": "csv"}, headers=acme),
        202,
    )["id"]
    h.run()
    assert client.get(f"/api/jobs/{failed}", headers=acme).json()["status"] == "failed"
    assert client.get(f"/api/imports/{imported}", headers=acme).json()["failed"] >= 1
    assert client.get(f"/api/exports/{export}/download", headers=acme).status_code == 200
    return {
        "job_id": failed,
        "schedule_id": schedule,
        "batch_id": batch,
        "import_id": imported,
        "export_id": export,
        "queue": "low",
    }


def test_another_tenants_resources_are_not_found_anywhere(
    client: TestClient[Litestar], chronicle: Chronicle
):
    acme = bearer(chronicle, "acme-op", role=OPERATOR, tenant="acme")
    globex = bearer(chronicle, "globex-op", role=OPERATOR, tenant="globex")
    ids = _acme_world(client, chronicle, acme)
    acme_ids = [value for key, value in ids.items() if key != "queue"]
    before = {
        path: client.get(fill(path, ids), headers=acme).json()
        for method, path in operations(client)
        if method == "GET" and "{" in path and not path.endswith((".csv", "/download"))
    }
    head = chronicle.log.head()

    for method, path in operations(client):
        if LEAST_ROLE[(method, path)] is PUBLIC or LEAST_ROLE[(method, path)] is ADMIN:
            continue
        where = f"{method} {path}"
        if "{" in path:
            # The other tenant's id answers exactly like an id that exists nowhere.
            theirs = call(client, method, path, ids, globex)
            nowhere_ids = random_ids()
            nowhere = call(client, method, path, nowhere_ids, globex)
            assert theirs.status_code == 404, f"{where}: {theirs.status_code} {theirs.text}"
            assert nowhere.status_code == 404, f"{where}: {nowhere.text}"
            text = theirs.text
            for key, value in ids.items():
                text = text.replace(value, nowhere_ids[key])
            assert text == nowhere.text, where
            continue
        if method != "GET":
            continue
        # Lists, and their filters given the other tenant's ids, show none of it.
        listed = call(client, method, path, ids, globex)
        assert listed.status_code == 200, f"{where}: {listed.text}"
        assert not any(i in listed.text for i in acme_ids), f"{where}: {listed.text}"
        for name in ("batch_id", "schedule_id"):
            if path == "/api/jobs":
                filtered = client.get(path, params={name: ids[name]}, headers=globex)
                assert filtered.status_code == 200, filtered.text
                assert filtered.json()["items"] == [], f"{where}?{name}"

    # Nothing globex sent changed anything of acme's (globex's own creations aside).
    after = {path: client.get(fill(path, ids), headers=acme).json() for path in before}
    assert after == before
    for logged in chronicle.log.read(head, limit=10_000):
        event = logged.event
        assert str(event.originator_id) not in acme_ids, event
        assert getattr(event, "tenant", "globex") == "globex", event
        assert not any(i in repr(event) for i in acme_ids), event
