"""Operator actions from the pages: retry, cancel, comment, forget; pause and resume queues.
Role-aware (a viewer sees no control and a forged post is a 403), CSRF-checked, recorded with
the signed-in account as the actor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from tests.integration.conftest import bearer
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - the test accounts'


@pytest.fixture
def h(chronicle: Chronicle) -> Harness:
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    for name, role in (("ada", Role.OPERATOR), ("vic", Role.VIEWER), ("root", Role.ADMIN)):
        chronicle.accounts.create(name=name, password=PASSWORD, role=role, by="cli:tests")
    return Harness(chronicle, queue)


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(chronicle)) as test_client:
        yield test_client


def sign_in(client: TestClient[Litestar], name: str) -> None:
    client.cookies.clear()
    response = client.post(
        "/login", data={"username": name, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found is not None
    return found.group(1)


def dispatch(client: TestClient[Litestar], chronicle: Chronicle, **body: Any) -> str:
    response = client.post("/api/jobs", json=body, headers=bearer(chronicle, "ci"))
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_an_operator_retries_comments_on_and_forgets_a_failed_job(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    job = dispatch(client, chronicle, command_line="demo:fail --times 9", max_attempts=1)
    h.run()
    sign_in(client, "ada")
    page = client.get(f"/jobs/{job}").text
    for action in ("retry", "forget", "comment"):
        assert f'data-action="{action}"' in page
    token = csrf(page)

    said = client.post(
        f"/jobs/{job}/comments",
        data={"csrf_token": token, "text": "looking into it", "next": f"/jobs/{job}"},
        follow_redirects=False,
    )
    assert said.status_code == 303
    assert said.headers["location"] == f"/jobs/{job}"
    retried = client.post(f"/jobs/{job}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert retried.status_code == 303
    h.run()
    detail = client.get(f"/api/jobs/{job}", headers=bearer(chronicle, "ci")).json()
    events = [(e["event"], e["actor"]) for e in detail["timeline"]]
    assert ("retried", "user:ada") in events
    comments = client.get(f"/api/jobs/{job}/comments", headers=bearer(chronicle, "ci")).json()
    assert [(c["author"], c["text"]) for c in comments] == [("user:ada", "looking into it")]
    assert "looking into it" in client.get(f"/jobs/{job}").text
    assert detail["status"] == "failed"  # it failed again: demo:fail --times 9
    forgot = client.post(
        f"/failed/{job}/forget", data={"csrf_token": token}, follow_redirects=False
    )
    assert forgot.status_code == 303
    assert forgot.headers["location"] == "/failed"
    h.follow()
    assert job not in client.get("/failed").text


def test_a_refused_action_is_a_page_with_the_apis_message(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    job = dispatch(client, chronicle, command_line="demo:echo done")
    h.run()
    sign_in(client, "ada")
    token = csrf(client.get(f"/jobs/{job}").text)
    head = chronicle.log.head()
    refused = client.post(f"/jobs/{job}/retry", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "only failed jobs can be retried" in refused.text
    empty = client.post(f"/jobs/{job}/comments", data={"csrf_token": token, "text": ""})
    assert empty.status_code == 422
    long_reason = client.post(
        f"/jobs/{job}/cancel", data={"csrf_token": token, "reason": "x" * 2001}
    )
    assert long_reason.status_code == 422
    assert "reason" in long_reason.text
    assert chronicle.log.head() == head  # nothing was recorded


def test_a_viewer_sees_no_controls_and_a_forged_post_is_refused(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    job = dispatch(client, chronicle, command_line="demo:fail --times 9", max_attempts=1)
    h.run()
    sign_in(client, "vic")
    page = client.get(f"/jobs/{job}").text
    assert "data-action=" not in page
    assert "data-action=" not in client.get("/queues").text
    head = chronicle.log.head()
    for path, data in (
        (f"/jobs/{job}/retry", {}),
        (f"/jobs/{job}/comments", {"text": "forged"}),
        (f"/failed/{job}/forget", {}),
        ("/queues/low/pause", {"reason": "forged"}),
    ):
        forged = client.post(path, data={"csrf_token": csrf(page), **data}, follow_redirects=False)
        assert forged.status_code == 403, (path, forged.text[:300])
        assert "needs the" in forged.text
    assert chronicle.log.head() == head


def test_without_the_csrf_token_nothing_is_done(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    job = dispatch(client, chronicle, command_line="demo:fail --times 9", max_attempts=1)
    h.run()
    sign_in(client, "ada")
    head = chronicle.log.head()
    assert client.post(f"/jobs/{job}/retry", data={}).status_code == 403
    assert client.post(f"/jobs/{job}/retry", data={"csrf_token": "0" * 64}).status_code == 403
    assert chronicle.log.head() == head


def test_an_admin_pauses_and_resumes_queues_from_the_page(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    sign_in(client, "root")
    page = client.get("/queues").text
    assert 'data-action="pause"' in page
    assert 'data-action="maintenance"' in page
    token = csrf(page)
    paused = client.post(
        "/queues/low/pause",
        data={"csrf_token": token, "reason": "deploy", "next": "/queues#low"},
        follow_redirects=False,
    )
    assert paused.status_code == 303
    assert paused.headers["location"] == "/queues#low"
    h.follow()
    page = client.get("/queues").text
    low = page.split('id="low"', 1)[1].split("</section>", 1)[0]
    assert "user:root" in low
    assert "deploy" in low
    assert 'action="/queues/low/resume"' in low
    assert client.post("/queues/low/resume", data={"csrf_token": token}).status_code == 200
    maintenance = client.post("/queues/pause", data={"csrf_token": token, "reason": "db upgrade"})
    assert maintenance.status_code == 200
    h.follow()
    assert "paused for maintenance by" in client.get("/queues").text
    again = client.post("/queues/pause", data={"csrf_token": token})
    assert again.status_code == 409  # already paused: the API's answer, as a page
    # An operator may not: queue control is an admin's.
    sign_in(client, "ada")
    assert 'data-action="maintenance"' not in client.get("/queues").text
    refused = client.post("/queues/resume", data={"csrf_token": csrf(client.get("/").text)})
    assert refused.status_code == 403
    assert "needs the admin role" in refused.text


def test_bulk_retry_of_what_a_filter_matches_shows_the_count_and_asks_first(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    low = [
        dispatch(client, chronicle, command_line="demo:fail --times 9", max_attempts=1, queue="low")
        for _ in range(2)
    ]
    other = dispatch(client, chronicle, command_line="demo:fail --times 9", max_attempts=1)
    h.run()
    sign_in(client, "vic")
    assert 'data-action="bulk-retry"' not in client.get("/failed").text
    assert client.get("/failed/retry?queue=low").status_code == 403
    sign_in(client, "ada")
    listing = client.get("/failed?queue=low").text
    assert 'href="/failed/retry?queue=low"' in listing
    head = chronicle.log.head()
    confirm = client.get("/failed/retry?queue=low").text
    assert 'data-matching="2"' in confirm
    assert chronicle.log.head() == head  # asking changes nothing
    done = client.post("/failed/retry", data={"csrf_token": csrf(confirm), "queue": "low"})
    assert done.status_code == 200
    assert 'data-retried="2"' in done.text
    h.follow()
    api = bearer(chronicle, "ci")
    for job in low:
        timeline = client.get(f"/api/jobs/{job}", headers=api).json()["timeline"]
        assert ("retried", "user:ada") in [(e["event"], e["actor"]) for e in timeline]
    assert client.get(f"/api/jobs/{other}", headers=api).json()["status"] == "failed"
    nothing = client.get("/failed/retry?queue=high").text
    assert "nothing to retry" in nothing
    assert client.get("/failed/retry?queue=urgent").status_code == 422


def test_an_operator_pauses_runs_comments_on_and_deletes_a_schedule(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    made = client.post(
        "/api/schedules",
        json={"name": "nightly", "command_line": "demo:echo n", "expression": "0 3 * * *"},
        headers=bearer(chronicle, "ci"),
    )
    assert made.status_code == 201, made.text
    schedule = made.json()["id"]
    h.follow()
    sign_in(client, "vic")
    assert "data-action=" not in client.get(f"/schedules/{schedule}").text
    sign_in(client, "ada")
    page = client.get(f"/schedules/{schedule}").text
    for action in ("pause", "run", "delete", "comment"):
        assert f'data-action="{action}"' in page
    token = csrf(page)
    assert (
        client.post(f"/schedules/{schedule}/pause", data={"csrf_token": token}).status_code == 200
    )
    h.follow()
    assert 'data-action="resume"' in client.get(f"/schedules/{schedule}").text
    ran = client.post(f"/schedules/{schedule}/run", data={"csrf_token": token})
    assert ran.status_code == 200
    said = client.post(
        f"/schedules/{schedule}/comments", data={"csrf_token": token, "text": "moved to 3 am"}
    )
    assert said.status_code == 200
    h.run()
    shown = client.get(f"/schedules/{schedule}").text
    assert "moved to 3 am" in shown
    assert "user:ada" in shown
    unconfirmed = client.post(f"/schedules/{schedule}/delete", data={"csrf_token": token})
    assert unconfirmed.status_code == 422
    assert "confirmation" in unconfirmed.text
    deleted = client.post(
        f"/schedules/{schedule}/delete",
        data={"csrf_token": token, "confirm": "delete"},
        follow_redirects=False,
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/schedules"
    h.follow()
    assert client.get(f"/schedules/{schedule}").status_code == 404


def test_an_operator_cancels_a_batch_and_retries_its_failed_jobs(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    api = bearer(chronicle, "ci")

    def batch(**body: Any) -> str:
        response = client.post("/api/batches", json=body, headers=api)
        assert response.status_code == 201, response.text
        batch_id: str = response.json()["id"]
        return batch_id

    failing = batch(name="mixed", jobs=["demo:echo a", "demo:fail --times 9"], allow_failures=True)
    h.run()
    sign_in(client, "vic")
    assert "data-action=" not in client.get(f"/batches/{failing}").text
    sign_in(client, "ada")
    page = client.get(f"/batches/{failing}").text
    assert 'data-action="retry-failed"' in page
    retried = client.post(
        f"/batches/{failing}/retry-failed", data={"csrf_token": csrf(page)}, follow_redirects=False
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/batches/{failing}"
    h.run()
    jobs = client.get(f"/api/batches/{failing}", headers=api).json()
    assert jobs["failed"] == 1  # demo:fail --times 9 failed again
    members = client.get(f"/api/jobs?batch_id={failing}", headers=api).json()["items"]
    failed = next(job for job in members if job["command"] == "demo:fail")
    timeline = client.get(f"/api/jobs/{failed['id']}", headers=api).json()["timeline"]
    assert ("retried", "user:ada") in [(e["event"], e["actor"]) for e in timeline]
    waiting = batch(name="later", jobs=["demo:echo b"])
    h.follow()  # its job is sent, not run
    page = client.get(f"/batches/{waiting}").text
    assert 'data-action="cancel"' in page
    cancelled = client.post(
        f"/batches/{waiting}/cancel", data={"csrf_token": csrf(page), "reason": "wrong day"}
    )
    assert cancelled.status_code == 200
    h.follow()
    shown = client.get(f"/batches/{waiting}").text
    assert "user:ada" in shown
    assert "wrong day" in shown
