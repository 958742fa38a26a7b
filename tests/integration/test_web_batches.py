"""The dashboard's batches pages: the list (newest first, in pages, a progress bar and the
counts per batch) and one batch's page (progress, counts, callbacks and what became of them,
allow-failures, who created it, its jobs), scoped to the signed-in tenant, on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.batches import BatchRequest
from application.jobs import DispatchRequest
from application.views.batches import BatchRow
from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from interfaces.web import batches as batch_pages
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    chronicle.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:tests")
    with TestClient(create_app(chronicle)) as test_client:
        response = test_client.post(
            "/login",
            data={"username": "ada", "password": PASSWORD, "next": "/batches"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        yield test_client


@pytest.fixture
def harness(chronicle: Chronicle) -> Harness:
    h = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(h.queue)
    return h


def page(client: TestClient[Litestar], path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.text
    html = response.text
    assert "style=" not in html
    assert "<script>" not in html
    return html


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def counts(html: str) -> dict[str, int]:
    return {key: int(value) for key, value in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def row(html: str, batch_id: UUID) -> str:
    found = re.search(rf'<tr data-batch="{batch_id}">(.*?)</tr>', html, re.DOTALL)
    assert found is not None, batch_id
    return found.group(1)


def status_of(html: str) -> str:
    found = re.search(r"data-status>(\w+)<", html)
    assert found is not None
    return found.group(1)


def check_callbacks(detail: str, row_model: BatchRow) -> None:
    """Callbacks: catch and finally ran (their jobs linked, succeeded), then never will."""
    callbacks = {
        kind: text_of(body)
        for kind, body in re.findall(r'<tr data-callback="(\w+)">(.*?)</tr>', detail, re.DOTALL)
    }
    assert set(callbacks) == {"then", "catch", "finally"}
    assert "will not run: not every job succeeded" in callbacks["then"]
    for kind, job_id in (("catch", row_model.catch_job_id), ("finally", row_model.finally_job_id)):
        assert job_id is not None
        assert f'href="/jobs/{job_id}"' in detail
        assert "succeeded" in callbacks[kind]


def test_list_and_detail_with_progress_counts_callbacks_and_jobs(
    client: TestClient[Litestar], chronicle: Chronicle, harness: Harness
):
    done = harness.create(
        ["demo:echo one", "demo:fail --times 3"], allow_failures=True, by="user:grace"
    )
    harness.run()
    waiting = harness.create(["demo:echo a", "demo:echo b", "demo:echo c"], name="later")
    harness.follow()
    harness.backlog.clear()  # its jobs stay waiting

    html = page(client, "/batches")
    # Newest first.
    assert html.index(f'data-batch="{waiting}"') < html.index(f'data-batch="{done}"')
    first = row(html, done)
    assert counts(first) == {"total": 2, "pending": 0, "succeeded": 1, "failed": 1, "cancelled": 0}
    assert '<progress max="2" value="2"' in first
    assert "100%" in first
    assert status_of(first) == "failed"
    assert "allows failures" in first
    later = row(html, waiting)
    assert counts(later) == {"total": 3, "pending": 3, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert '<progress max="3" value="0"' in later
    assert "0%" in later
    assert status_of(later) == "pending"
    assert re.search(
        r'<div id="live-batches" data-live-refresh hx-get="/batches" hx-select="#live-batches"',
        html,
    )

    detail = page(client, f"/batches/{done}")
    text = text_of(detail)
    assert counts(detail) == {
        "total": 2, "pending": 0, "processed": 2, "succeeded": 1, "failed": 1, "cancelled": 0
    }  # fmt: skip
    assert '<progress max="2" value="2"' in detail
    assert "Created by user:grace" in text
    assert "yes: a failed job does not cancel the batch" in text
    assert re.search(rf'<div id="live-batch" data-live-refresh hx-get="/batches/{done}"', detail)
    check_callbacks(detail, harness.row(done))
    # Its jobs, each linked to its page, and no other batch's.
    jobs = re.findall(r'<tr data-job="([0-9a-f-]+)">(.*?)</tr>', detail, re.DOTALL)
    assert len(jobs) == 2
    statuses = sorted(re.search(r"badge status-(\w+)", body).group(1) for _, body in jobs)  # type: ignore[union-attr]
    assert statuses == ["failed", "succeeded"]
    for job_id, body in jobs:
        assert f'href="/jobs/{job_id}"' in body

    # The pending batch: no job finished, callbacks wait; after its jobs ran, the same page
    # (what the live refresh fetches) shows them done and `then` dispatched.
    pending = page(client, f"/batches/{waiting}")
    assert counts(pending)["pending"] == 3
    assert '<progress max="3" value="0"' in pending
    assert "runs once every job succeeded" in text_of(pending)
    harness.backlog = [UUID(job_id) for job_id, _ in re.findall(
        r'<tr data-job="([0-9a-f-]+)">(.*?)</tr>', pending, re.DOTALL
    )]  # fmt: skip
    harness.run()
    after = page(client, f"/batches/{waiting}")
    assert counts(after)["succeeded"] == 3
    assert '<progress max="3" value="3"' in after
    assert status_of(after) == "succeeded"
    then_job = harness.row(waiting).then_job_id
    assert then_job is not None
    assert f'href="/jobs/{then_job}"' in after


def test_pages_of_the_list(
    client: TestClient[Litestar], harness: Harness, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(batch_pages, "PAGE_SIZE", 1)
    older = harness.create(["demo:echo a"], name="older")
    newer = harness.create(["demo:echo b"], name="newer")
    harness.follow()
    first = page(client, "/batches")
    assert f'data-batch="{newer}"' in first
    assert f'data-batch="{older}"' not in first
    link = re.search(r'href="(/batches\?cursor=[^"]+)" rel="next"', first)
    assert link is not None
    second = page(client, link.group(1).replace("&amp;", "&"))
    assert f'data-batch="{older}"' in second
    assert f'data-batch="{newer}"' not in second
    assert "First page" in second
    assert page(client, "/batches?cursor=nonsense", status=422)


def test_another_tenants_batch_is_not_found(
    client: TestClient[Litestar], chronicle: Chronicle, harness: Harness
):
    theirs = chronicle.batches.create(
        BatchRequest(
            name="acme-batch",
            jobs=[DispatchRequest(command_line="demo:echo acme", tenant="acme")],
            tenant="acme",
            by="user:wile",
        )
    )
    harness.follow()
    assert chronicle.batch_queries.get_batch("acme", theirs) is not None
    html = page(client, f"/batches/{theirs}", status=404)
    assert f"batch {theirs} not found" in html
    assert "acme-batch" not in html
    assert page(client, f"/batches/{uuid4()}", status=404)
    assert "acme-batch" not in page(client, "/batches")
    assert "not a batch id" in page(client, "/batches/not-an-id", status=422)
