"""The failed-jobs toolbox on real storage: the failed list, forget, comments and bulk retry."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.views.jobs import FailedJobFilter
from domain.job import Job
from infrastructure.read_models.jobs import SqlJobsQueries
from interfaces.bootstrap import Chronicle
from tests.integration.conftest import api_client, bearer

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
postgres_only = pytest.mark.parametrize("backend", ["postgres"])

ACME = {"X-Chronicle-Tenant": "acme"}


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


def project(app: Chronicle) -> None:
    for runner in app.projection_runners():
        runner.catch_up()


def failed_job(
    *,
    at: datetime,
    queue: str = "default",
    command: str = "demo:fail",
    error_type: str = "RuntimeError",
    tenant: str = "default",
) -> Job:
    """A job driven to failed in memory: one attempt, failed at `at`."""
    job = Job.dispatch(
        job_id=uuid4(),
        command=command,
        command_line=command,
        arguments={},
        options={},
        at=at - timedelta(seconds=1),
        queue=queue,
        tenant=tenant,
        max_attempts=1,
        backoff_seconds=0,
        requested_by="test",
    )
    job.start(worker_id="w-1", at=at - timedelta(seconds=1))
    job.fail(
        error_type=error_type,
        message=f"{error_type} in {command}",
        traceback=f"Traceback (most recent call last):\n{error_type}: boom",
        output="",
        duration_ms=5.0,
        at=at,
        random_unit=0.5,
    )
    return job


def save_failed(app: Chronicle, count: int, *, at: datetime, **kwargs: Any) -> list[UUID]:
    """`count` failed jobs, saved in transactions of 1,000."""
    ids: list[UUID] = []
    for start in range(0, count, 1000):
        jobs = [failed_job(at=at, **kwargs) for _ in range(min(1000, count - start))]
        app.events.save(*jobs)
        ids += [job.id for job in jobs]
    return ids


def failed_ids(client: TestClient[Litestar], **params: Any) -> list[str]:
    response = client.get("/api/jobs/failed", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- the failed list ----------------------------------------------------------------------


def test_failed_list_filters_each_and_pages(client: TestClient[Litestar], chronicle: Chronicle):
    now = chronicle.clock.now()
    early, late = now - timedelta(hours=2), now - timedelta(minutes=5)
    [old] = save_failed(chronicle, 1, at=early)
    [low] = save_failed(chronicle, 1, at=late, queue="low")
    [echo] = save_failed(chronicle, 1, at=late, command="demo:echo")
    [timeout] = save_failed(chronicle, 1, at=late, error_type="TimeoutError")
    [theirs] = save_failed(chronicle, 1, at=late, tenant="acme")
    project(chronicle)
    old, low, echo, timeout = map(str, (old, low, echo, timeout))

    assert failed_ids(client) == [timeout, echo, low, old]
    assert failed_ids(client, queue="low") == [low]
    assert failed_ids(client, command="demo:echo") == [echo]
    assert failed_ids(client, error_type="TimeoutError") == [timeout]
    assert failed_ids(client, error_type="RuntimeError", queue="default") == [echo, old]
    hour_ago = iso(now - timedelta(hours=1))
    assert failed_ids(client, failed_to=hour_ago) == [old]
    assert failed_ids(client, failed_from=hour_ago) == [timeout, echo, low]
    # Half-open: from is inclusive, to exclusive.
    assert failed_ids(client, failed_from=iso(early), failed_to=iso(late)) == [old]
    assert failed_ids(client, failed_from=(early + timedelta(hours=2, minutes=1)).isoformat()) == []
    assert failed_ids(client, queue="high", command="demo:echo") == []
    assert [i["id"] for i in client.get("/api/jobs/failed", headers=ACME).json()["items"]] == [
        str(theirs)
    ]

    item = client.get("/api/jobs/failed", params={"queue": "low"}).json()["items"][0]
    assert item == {
        "id": low,
        "command": "demo:fail",
        "command_line": "demo:fail",
        "queue": "low",
        "attempts": 1,
        "max_attempts": 1,
        "error_type": "RuntimeError",
        "message": "RuntimeError in demo:fail",
        "traceback": "Traceback (most recent call last):\nRuntimeError: boom",
        "failed_at": iso(late),
        "dispatched_at": iso(late - timedelta(seconds=1)),
        "requested_by": "test",
        "batch_id": None,
        "schedule_id": None,
        "links": {"self": f"/api/jobs/{low}"},
    }

    first = client.get("/api/jobs/failed", params={"limit": 3}).json()
    assert [i["id"] for i in first["items"]] == [timeout, echo, low]
    second = client.get("/api/jobs/failed", params={"limit": 3, "cursor": first["next_cursor"]})
    assert [i["id"] for i in second.json()["items"]] == [old]
    assert second.json()["next_cursor"] is None


class RecordingDatabase:
    """The read-model database, recording the statements of `read()` sessions."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.statements: list[tuple[str, Any]] = []

    @contextmanager
    def read(self) -> Iterator[Any]:
        with self.db.read() as session:
            recorded = self.statements

            class Recording:
                def __getattr__(self, name: str) -> Any:
                    return getattr(session, name)

                def fetchall(self, sql: str, params: Any = ()) -> Any:
                    recorded.append((sql, params))
                    return session.fetchall(sql, params)

                def fetchone(self, sql: str, params: Any = ()) -> Any:
                    recorded.append((sql, params))
                    return session.fetchone(sql, params)

            yield Recording()


def test_failed_list_queries_are_indexed(chronicle: Chronicle):
    """The failed list, its count and the bulk-retry walk never scan the whole jobs table."""
    now = chronicle.clock.now()
    cases = {
        "ix_jobs_failed": FailedJobFilter("default"),
        "ix_jobs_failed_queue": FailedJobFilter("default", queue="low"),
        "ix_jobs_failed_command": FailedJobFilter("default", command="demo:fail"),
        "ix_jobs_failed_error": FailedJobFilter("default", error_type="RuntimeError"),
        "ix_jobs_failed_at": FailedJobFilter(
            "default", failed_from=now, failed_to=now + timedelta(seconds=1)
        ),
    }
    recording = RecordingDatabase(chronicle.db)
    queries = SqlJobsQueries(recording)
    for flt in cases.values():
        queries.failed(flt, limit=50, cursor="s1000")
        queries.count_failed(flt)
        queries.failed_ids(flt, after_seq=0, limit=500)
    names = ("page", "count", "walk")
    with chronicle.db.read() as s:
        if s.dialect == "postgres":
            # Tables this small are read sequentially whatever the indexes: ask for the plan
            # the planner chooses when the table is big.
            s.execute("SET LOCAL enable_seqscan = off")
        for i, (sql, params) in enumerate(recording.statements):
            index, name = list(cases)[i // 3], names[i % 3]
            if s.dialect == "sqlite":
                rows = s.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
                plan = " | ".join(row["detail"] for row in rows)
                assert "USING INDEX ix_jobs_" in plan, (name, index, plan)
            else:
                rows = s.fetchall(f"EXPLAIN {sql}", params)
                plan = " | ".join(row["QUERY PLAN"] for row in rows)
                assert "Seq Scan" not in plan, (name, index, plan)
                if name != "count" and index != "ix_jobs_failed_at":
                    # A range of the filter's own partial index, read in seq order.
                    assert f"using {index} on" in plan, (name, index, plan)


def test_forget_takes_a_job_off_the_failed_list_but_keeps_its_history(
    client: TestClient[Litestar], chronicle: Chronicle
):
    [gone, kept] = map(str, save_failed(chronicle, 2, at=chronicle.clock.now()))
    project(chronicle)
    op = bearer(chronicle, "op")

    response = client.delete(f"/api/jobs/failed/{gone}", headers=op)
    assert response.status_code == 204, response.text
    assert response.content == b""
    again = client.delete(f"/api/jobs/failed/{gone}", headers=op)
    assert again.status_code == 409
    assert "already forgotten" in again.json()["message"]

    project(chronicle)
    assert failed_ids(client) == [kept]
    # Still a failed job in the general list, marked as forgotten, with who forgot it.
    listed = {
        i["id"]: i for i in client.get("/api/jobs", params={"status": "failed"}).json()["items"]
    }
    assert (listed[gone]["forgotten"], listed[kept]["forgotten"]) == (True, False)
    timeline = client.get(f"/api/jobs/{gone}").json()["timeline"]
    assert (timeline[-1]["event"], timeline[-1]["actor"]) == ("forgotten", "token:op")
    # Bulk retry passes over it: it is not on the list.
    assert client.post("/api/jobs/failed/retry").json() == {"retried": 1, "skipped": 0}

    # Retrying a forgotten job (one by one) brings it back; a waiting job cannot be forgotten.
    assert client.post(f"/api/jobs/{gone}/retry").status_code == 202
    project(chronicle)
    assert client.get(f"/api/jobs/{gone}").json()["forgotten"] is False
    waiting = client.delete(f"/api/jobs/failed/{gone}")
    assert waiting.status_code == 409
    assert "only failed jobs can be forgotten" in waiting.json()["message"]


def test_retry_one_links_the_failure_and_the_operator(
    client: TestClient[Litestar], chronicle: Chronicle
):
    [job_id] = save_failed(chronicle, 1, at=chronicle.clock.now())
    response = client.post(f"/api/jobs/{job_id}/retry", headers=bearer(chronicle, "op"))
    assert response.status_code == 202
    assert response.json()["status"] == "waiting"
    assert client.post(f"/api/jobs/{job_id}/retry").status_code == 409
    project(chronicle)
    retried = client.get(f"/api/jobs/{job_id}").json()["timeline"][-1]
    assert (retried["event"], retried["actor"]) == ("retried", "token:op")
    # Which failure it retries: the attempts used up before it; the new limit follows from it.
    assert retried["details"]["previous_attempts"] == 1
    assert retried["details"]["attempt_limit"] == 2
    assert retried["details"]["by"] == "token:op"


# -- comments -------------------------------------------------------------------------------


def test_comments_are_listed_oldest_first_before_and_after_projection(
    client: TestClient[Litestar], chronicle: Chronicle
):
    [job_id] = save_failed(chronicle, 1, at=chronicle.clock.now())
    path = f"/api/jobs/{job_id}/comments"
    assert client.get(path).json() == []

    op = bearer(chronicle, "op")
    first = client.post(path, json={"text": "disk was full"}, headers=op)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["author"], body["text"]) == ("token:op", "disk was full")
    assert body["at"].endswith("Z")
    UUID(body["id"])
    second = client.post(path, json={"text": "cleaned up, retrying"}, headers=ACME | op)
    assert second.status_code == 404  # another tenant's job
    second = client.post(path, json={"text": "cleaned up, retrying"})
    assert second.json()["author"] == "token:tester"  # the client's own token

    # Not projected yet: listed anyway, from the job's own events.
    listed = client.get(path).json()
    assert listed == [body, second.json()]
    project(chronicle)
    assert client.get(path).json() == listed
    assert [(c.author, c.text) for c in chronicle.queries.comments(job_id)] == [
        ("token:op", "disk was full"),
        ("token:tester", "cleaned up, retrying"),
    ]
    timeline = client.get(f"/api/jobs/{job_id}").json()["timeline"]
    assert [(e["event"], e["actor"]) for e in timeline[-2:]] == [
        ("comment_added", "token:op"),
        ("comment_added", "token:tester"),
    ]
    # A comment does not take the job off the failed list or change its state.
    assert failed_ids(client) == [str(job_id)]


def test_comments_errors(client: TestClient[Litestar], chronicle: Chronicle):
    [job_id] = save_failed(chronicle, 1, at=chronicle.clock.now(), tenant="acme")
    missing = uuid4()
    for response in (
        client.get(f"/api/jobs/{missing}/comments"),
        client.post(f"/api/jobs/{missing}/comments", json={"text": "x"}),
        client.get(f"/api/jobs/{job_id}/comments"),
        client.post(f"/api/jobs/{job_id}/comments", json={"text": "x"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
    blank = client.post(f"/api/jobs/{job_id}/comments", json={"text": "  "}, headers=ACME)
    assert (blank.status_code, blank.json()["field"]) == (422, "text")
    long = client.post(f"/api/jobs/{job_id}/comments", json={"text": "x" * 10_001}, headers=ACME)
    assert (long.status_code, long.json()["field"]) == (422, "text")
    unknown = client.post(f"/api/jobs/{job_id}/comments", json={"txt": "x"}, headers=ACME)
    assert unknown.status_code == 400
    bad_id = client.get("/api/jobs/nope/comments")
    assert (bad_id.status_code, bad_id.json()["field"]) == (422, "id")


# -- bulk retry ---------------------------------------------------------------------------


def test_bulk_retry_retries_what_matches_and_records_the_operator(
    client: TestClient[Litestar], chronicle: Chronicle
):
    now = chronicle.clock.now()
    low = save_failed(chronicle, 3, at=now, queue="low")
    timeouts = save_failed(chronicle, 2, at=now, error_type="TimeoutError")
    old = save_failed(chronicle, 2, at=now - timedelta(days=2))
    [theirs] = save_failed(chronicle, 1, at=now, tenant="acme")
    project(chronicle)
    op = bearer(chronicle, "op")

    def retry(body: dict[str, Any] | None) -> dict[str, int]:
        response = client.post("/api/jobs/failed/retry", json=body, headers=op)
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert retry({"queue": "low"}) == {"retried": 3, "skipped": 0}
    assert retry({"error_type": "TimeoutError", "command": "demo:fail"}) == {
        "retried": 2,
        "skipped": 0,
    }
    assert retry({"failed_to": iso(now - timedelta(days=1))}) == {"retried": 2, "skipped": 0}
    project(chronicle)
    assert failed_ids(client) == []
    for job_id in (*low, *timeouts, *old):
        entry = chronicle.queries.timeline(job_id)[-1]
        assert (entry.event, entry.actor, entry.details["previous_attempts"]) == (
            "retried",
            "token:op",
            1,
        )
    # Another tenant's failed jobs are not touched; with no filter, all of its own are retried.
    assert chronicle.jobs.get(theirs, tenant="acme").status.value == "failed"
    assert client.post("/api/jobs/failed/retry", headers=ACME).json() == {
        "retried": 1,
        "skipped": 0,
    }


def test_bulk_retry_skips_jobs_that_stopped_being_failed(chronicle: Chronicle):
    ids = save_failed(chronicle, 7, at=chronicle.clock.now())
    project(chronicle)
    # After the read model saw them failed, another operator retries one and forgets one, and
    # comments on a third (which changes it, but it is still failed).
    chronicle.jobs.retry(ids[1], tenant="default", by="bob")
    chronicle.jobs.forget(ids[4], tenant="default", by="bob")
    chronicle.jobs.comment(ids[5], tenant="default", author="bob", text="still failed")

    outcome = chronicle.jobs.retry_failed(FailedJobFilter("default"), by="op", page_size=3)
    assert (outcome.retried, outcome.skipped) == (5, 2)
    statuses = [chronicle.jobs.get(job_id, tenant="default").status.value for job_id in ids]
    assert statuses == ["waiting"] * 4 + ["failed"] + ["waiting"] * 2
    project(chronicle)
    actors = {job_id: chronicle.queries.timeline(job_id)[-1].actor for job_id in ids}
    assert actors[ids[1]] == "bob"
    assert actors[ids[4]] == "bob"
    assert [actors[i] for i in ids if i not in {ids[1], ids[4]}] == ["op"] * 5


@sqlite_only
def test_bulk_retry_with_nothing_to_do(client: TestClient[Litestar]):
    assert client.post("/api/jobs/failed/retry").json() == {"retried": 0, "skipped": 0}
    assert client.post("/api/jobs/failed/retry", json={}).json() == {"retried": 0, "skipped": 0}


@dataclass(frozen=True)
class BadFilter:
    """A bad filter of the failed list (GET) or of bulk retry (POST), and the error it gets."""

    method: str
    values: dict[str, str]
    status: int
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.method} {self.values}"


BACKWARDS = {"failed_from": "2026-01-02T00:00:00Z", "failed_to": "2026-01-01T00:00:00+00:00"}
BAD_FILTERS = [
    BadFilter("GET", {"queue": "urgent"}, 422, "queue", "choose one of"),
    BadFilter("GET", {"failed_from": "yesterday"}, 422, "failed_from", "not an ISO-8601 time"),
    BadFilter("GET", {"failed_to": "2026-01-01T00:00:00"}, 422, "failed_to", "timezone-aware"),
    # An unencoded `+` arrives as a space: the message says how to write it.
    BadFilter("GET", {"failed_to": "2026-01-01T00:00:00 01:00"}, 422, "failed_to", "%2B"),
    BadFilter("GET", BACKWARDS, 422, "failed_from", "before failed_to"),
    BadFilter("GET", {"cursor": "x"}, 422, "cursor", "invalid cursor"),
    BadFilter("GET", {"limit": "0"}, 400, "limit", ">= 1"),
    BadFilter("POST", {"queue": "urgent"}, 422, "queue", "choose one of"),
    BadFilter("POST", {"failed_from": "2026-01-01T00:00:00"}, 422, "failed_from", "aware"),
    BadFilter("POST", {"failed_to": "soon"}, 400, "failed_to", "datetime"),
    BadFilter("POST", {"error": "x"}, 400, None, "`error`"),
    BadFilter("POST", BACKWARDS, 422, "failed_from", "before failed_to"),
]


@sqlite_only
@pytest.mark.parametrize("bad", BAD_FILTERS, ids=str)
def test_bad_filters_name_the_field(client: TestClient[Litestar], bad: BadFilter):
    if bad.method == "GET":
        response = client.get("/api/jobs/failed", params=bad.values)
    else:
        response = client.post("/api/jobs/failed/retry", json=bad.values)
    assert response.status_code == bad.status, response.text
    assert response.json().get("field") == bad.field
    assert bad.message in response.json()["message"]


@sqlite_only
def test_forget_errors(client: TestClient[Litestar], chronicle: Chronicle):
    missing = uuid4()
    response = client.delete(f"/api/jobs/failed/{missing}")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": f"job {missing} not found"}
    bad = client.delete("/api/jobs/failed/nope")
    assert (bad.status_code, bad.json()["field"]) == (422, "id")
    [theirs] = save_failed(chronicle, 1, at=chronicle.clock.now(), tenant="acme")
    assert client.delete(f"/api/jobs/failed/{theirs}").status_code == 404
    assert client.delete(f"/api/jobs/failed/{theirs}", headers=ACME).status_code == 204


# -- 20,000 failed jobs, bounded memory ------------------------------------------------------

BULK = 20_000
PAGE = 500
#: The bound on the bulk retry's peak traced memory. One loaded job takes ~2.5 KB (measured
#: below), so holding all 20,000 at once needs ~50 MB, and their ids and events more. A page
#: holds 500 ids and 500 Retried events, and one aggregate at a time: ~1-2 MB. 10 MB leaves
#: room for driver buffers and interpreter noise and is a fifth of the all-at-once figure.
PEAK_BOUND_MB = 10


@postgres_only
def test_bulk_retry_of_20000_failed_jobs_keeps_memory_bounded(chronicle: Chronicle):
    started = time.perf_counter()
    ids = save_failed(chronicle, BULK, at=chronicle.clock.now())
    chronicle.runners["jobs"].catch_up()
    assert chronicle.queries.count_failed(FailedJobFilter("default")) == BULK
    prepared = time.perf_counter()

    # What holding every job at once would cost: 1,000 aggregates measured, times 20.
    gc.collect()
    tracemalloc.start()
    sample = [chronicle.events.repository.get(job_id) for job_id in ids[:1000]]
    per_thousand = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del sample
    all_at_once_mb = per_thousand * (BULK / 1000) / 2**20

    gc.collect()
    tracemalloc.start()
    outcome = chronicle.jobs.retry_failed(FailedJobFilter("default"), by="op", page_size=PAGE)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    retried = time.perf_counter()

    print(
        f"\nbulk retry of {BULK} failed jobs: peak traced memory {peak_mb:.1f} MB with pages of"
        f" {PAGE} (all at once: ~{all_at_once_mb:.0f} MB); setup {prepared - started:.1f}s,"
        f" retry {retried - prepared:.1f}s"
    )
    assert (outcome.retried, outcome.skipped) == (BULK, 0)
    assert peak_mb < PEAK_BOUND_MB
    assert peak_mb < all_at_once_mb / 5

    chronicle.runners["jobs"].catch_up()
    assert chronicle.queries.count_failed(FailedJobFilter("default")) == 0
    stats = chronicle.queries.queue_stats("default", chronicle.clock.now())
    assert (stats.totals["waiting"], stats.totals["failed"]) == (BULK, 0)
