"""Queue control and queue statistics on real storage (SQLite files and Postgres), through the
use cases, the REST API and the CLI. Times come from a fake clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.jobs import DispatchRequest
from application.views.jobs import JobFilter
from application.views.queue_metrics import MinuteStats, minute_of
from domain.job import Job
from domain.queue_control import QueueControl, queue_control_id
from domain.shared import InvalidTransitionError
from infrastructure.read_models.queue_metrics import queue_metrics_store
from interfaces.bootstrap import Chronicle, bootstrap
from interfaces.cli.main import cli
from tests.integration.conftest import api_client, bearer, make_settings
from tests.unit.fakes import FakeClock, FakeQueue

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ACME = {"X-Chronicle-Tenant": "acme"}
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Chronicle]:
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    chronicle = bootstrap(make_settings(backend, tmp_path, schema), registry=registry, clock=clock)
    yield chronicle
    chronicle.close()


@pytest.fixture
def client(app: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(app) as test_client:
        yield test_client


def project(app: Chronicle) -> None:
    for runner in app.projection_runners():
        runner.catch_up()


# -- queue control ----------------------------------------------------------------------------


def test_pause_and_resume_are_events_with_who_and_why(app: Chronicle):
    app.queue_control.pause(tenant="default", queue="default", by="alice", reason="deploy")
    app.queue_control.pause(tenant="default", queue=None, by="bob", reason="db upgrade")
    app.queue_control.pause(tenant="acme", queue="low", by="carol")
    project(app)
    pauses = {(p.tenant, p.queue): p for p in app.queue_pauses.pauses()}
    assert set(pauses) == {("default", "default"), ("default", None), ("acme", "low")}
    assert (pauses["default", "default"].by, pauses["default", "default"].reason) == (
        "alice",
        "deploy",
    )
    assert pauses["default", None].at == T0
    assert [p.queue for p in app.queue_pauses.pauses("acme")] == ["low"]

    app.queue_control.resume(tenant="default", queue="default", by="dave")
    project(app)
    assert {(p.tenant, p.queue) for p in app.queue_pauses.pauses()} == {
        ("default", None),
        ("acme", "low"),
    }
    events = list(app.events.events.get(queue_control_id("default")))
    assert [type(e).__name__ for e in events] == ["Opened", "Paused", "Paused", "Resumed"]
    assert [getattr(e, "by", None) for e in events] == [None, "alice", "bob", "dave"]


def test_a_racing_operator_is_seen_before_deciding(app: Chronicle, monkeypatch):
    """Another process creates the control and pauses `low` between our load and our save."""
    original = app.events.save
    raced: list[bool] = []

    def racing_save(*objs: Any, **kwargs: Any) -> Any:
        if not raced:
            raced.append(True)
            other = QueueControl.open(tenant="default", at=T0)
            other.pause(queue="low", by="other", reason="", at=T0)
            original(other)
        return original(*objs, **kwargs)

    monkeypatch.setattr(app.events, "save", racing_save)
    control = app.queue_control.pause(tenant="default", queue="high", by="me")
    assert control.is_paused("low")
    assert control.is_paused("high")
    with pytest.raises(InvalidTransitionError, match="already paused"):
        app.queue_control.pause(tenant="default", queue="low", by="me")


# -- queue statistics -------------------------------------------------------------------------


def run_queued(app: Chronicle, queue: FakeQueue, clock: FakeClock, step: float) -> None:
    """Relay, then run each message once; the clock moves `step` seconds before each job."""
    executor = app.executor(queue, worker_id="test-worker")
    app.runners["outbox"].catch_up()
    for job_id, _, _ in queue.take():
        clock.advance(step)
        executor.process(job_id)


def test_stats_from_a_known_set_of_jobs(app: Chronicle, clock: FakeClock):
    queue = FakeQueue()
    app.add_outbox(queue)
    # 12:00:00 — ten jobs on `default`, started 1 s, 2 s, … 10 s after they were dispatched.
    app.jobs.dispatch_many([DispatchRequest(command_line="demo:noop") for _ in range(10)])
    run_queued(app, queue, clock, step=1.0)
    # 12:02:00 — five jobs on `high`, started 0.1 s, 0.2 s, … 0.5 s after dispatch.
    clock.current = T0 + timedelta(minutes=2)
    app.jobs.dispatch_many(
        [DispatchRequest(command_line="demo:noop", queue="high") for _ in range(5)]
    )
    run_queued(app, queue, clock, step=0.1)
    # 12:03:00 — one job dead-lettered on `low`, one waiting job cancelled on `default`.
    clock.current = T0 + timedelta(minutes=3)
    app.jobs.dispatch(
        DispatchRequest(command_line="demo:fail --times=5", queue="low", max_attempts=1)
    )
    cancelled = app.jobs.dispatch(DispatchRequest(command_line="demo:noop", delay_seconds=600))
    app.jobs.cancel(cancelled, tenant="default", by="ops")
    app.runners["outbox"].catch_up()
    executor = app.executor(queue, worker_id="test-worker")
    for job_id, _, _ in queue.take():
        executor.process(job_id)
    project(app)

    clock.current = T0 + timedelta(minutes=3, seconds=30)
    activity = {a.queue: a for a in app.queue_metrics.activity("default", clock.now())}
    default, high, low = activity["default"], activity["high"], activity["low"]
    # The window ends with the current minute (12:03): 12:00 is 3 minutes before it.
    assert len(default.processed_per_minute) == 60
    assert default.processed_per_minute[-4:] == [10, 0, 0, 1]
    assert sum(default.processed_per_minute) == 11
    assert high.processed_per_minute[-4:] == [0, 0, 5, 0]
    assert low.processed_per_minute[-4:] == [0, 0, 0, 1]
    # Waits of 1..10 s: mean 5.5 s; p95 is 95% through the (5 s, 10 s] bucket's 5 values.
    assert default.wait_ms.avg == pytest.approx(5500)
    assert default.wait_ms.p95 == pytest.approx(9500)
    # 100 ms, 200 ms, then three in (200, 500]: rank 4.75 is 2.75/3 of the way through it.
    assert high.wait_ms.avg == pytest.approx(300)
    assert high.wait_ms.p95 == pytest.approx(200 + 300 * 2.75 / 3)
    assert low.wait_ms.avg == pytest.approx(0)
    # Run times are the measured durations of the attempts.
    rows = [r for r in (app.queries.get("default", j) for j in _job_ids(app)) if r]
    durations = [r.duration_ms for r in rows if r.queue == "default" and r.duration_ms]
    assert default.run_ms.avg == pytest.approx(sum(durations) / len(durations))
    assert default.run_ms.p95 is not None
    assert high.run_ms.avg is not None


def _job_ids(app: Chronicle) -> list[UUID]:
    page = app.queries.list(JobFilter(tenant="default"), limit=100, cursor=None, now=T0)
    return [row.id for row in page.items]


def save_job(app: Chronicle, *, queue: str, at: datetime, wait_s: float, run_ms: float) -> None:
    job = Job.dispatch(
        job_id=uuid4(), command="demo:noop", command_line="demo:noop", arguments={},
        options={}, at=at, queue=queue,
    )  # fmt: skip
    started = at + timedelta(seconds=wait_s)
    job.start(worker_id="w", at=started)
    job.succeed(result=None, output="", duration_ms=run_ms, at=started)
    app.events.save(job)


def test_run_time_average_and_p95(app: Chronicle):
    for i in range(1, 21):  # 10, 20, … 200 ms
        save_job(app, queue="low", at=T0, wait_s=0, run_ms=10.0 * i)
    project(app)
    [low] = [a for a in app.queue_metrics.activity("default", T0) if a.queue == "low"]
    assert low.run_ms.avg == pytest.approx(105)
    # 10 values in (100, 200]: rank 19 is the 9th of them → 100 + 100 x 9/10.
    assert low.run_ms.p95 == pytest.approx(190)
    assert low.processed_per_minute[-1] == 20


def count_rows(app: Chronicle, table: str) -> int:
    with app.db.read() as s:
        row = s.fetchone(f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - a constant
    return int(row["n"]) if row else 0


def test_old_minutes_are_pruned_and_finished_jobs_forgotten(app: Chronicle):
    save_job(app, queue="default", at=T0, wait_s=1, run_ms=5)
    project(app)
    assert count_rows(app, "queue_metrics") == 1
    assert count_rows(app, "queue_metric_jobs") == 0  # succeeded: nothing left to measure
    save_job(app, queue="default", at=T0 + timedelta(hours=25), wait_s=1, run_ms=5)
    project(app)
    assert count_rows(app, "queue_metrics") == 1  # the minute from 25 h before is gone


def test_a_query_reads_at_most_60_rows_per_queue(app: Chronicle, monkeypatch):
    # A full day of minutes for every queue, written as the projection would.
    store = queue_metrics_store(app.db)
    last = minute_of(T0)
    with store.transaction() as tracked:
        tracked.writer.add_minutes(
            {
                ("default", queue, minute): MinuteStats(processed=1)
                for queue in ("high", "default", "low")
                for minute in range(last - 24 * 60 + 1, last + 1)
            }
        )
    fetched: list[int] = []
    read = app.db.read

    @contextmanager
    def counting_read() -> Iterator[Any]:
        with read() as session:

            class Counting:
                def __getattr__(self, name: str) -> Any:
                    return getattr(session, name)

                def fetchall(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
                    rows = session.fetchall(sql, params)
                    fetched.append(len(rows))
                    return rows

            yield Counting()

    monkeypatch.setattr(app.db, "read", counting_read)
    activity = app.queue_metrics.activity("default", T0)
    assert fetched == [60, 60, 60]
    assert all(sum(a.processed_per_minute) == 60 for a in activity)


# -- REST API ---------------------------------------------------------------------------------


def test_get_queues_keeps_the_counts_and_adds_pauses_and_activity(
    client: TestClient[Litestar], app: Chronicle, clock: FakeClock
):
    save_job(app, queue="high", at=T0, wait_s=2, run_ms=30)
    app.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
    project(app)
    body = client.get("/api/queues").json()
    assert set(body) == {"queues", "totals", "failed", "paused", "pause"}
    assert body["paused"] is False
    assert body["pause"] is None
    high = body["queues"]["high"]
    assert {k: high[k] for k in ("waiting", "running", "succeeded", "failed")} == {
        "waiting": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
    }
    assert body["queues"]["default"]["waiting"] == 1
    assert high["paused"] is False
    assert high["processed_per_minute"] == [0] * 59 + [1]
    assert high["wait_ms"] == {"avg": 2000.0, "p95": pytest.approx(1950.0)}
    assert high["run_ms"]["avg"] == 30.0
    assert body["queues"]["low"]["wait_ms"] == {"avg": None, "p95": None}
    assert body["totals"]["waiting"] == 1


def test_pause_and_resume_over_http(client: TestClient[Litestar], app: Chronicle):
    headers = bearer(app, "alice")
    paused = client.post("/api/queues/default/pause", json={"reason": "deploy"}, headers=headers)
    assert paused.status_code == 200, paused.text
    assert paused.json() == {
        "queue": "default",
        "paused": True,
        "pause": {"by": "token:alice", "reason": "deploy", "at": "2026-01-05T12:00:00Z"},
        # No worker runs in this test: none has to act on the pause first.
        "held": True,
        "pending_workers": [],
    }
    again = client.post("/api/queues/default/pause")
    assert again.status_code == 409
    assert again.json()["message"] == "queue 'default' is already paused"
    maintenance = client.post("/api/queues/pause", headers=bearer(app, "bob"))
    assert maintenance.status_code == 200
    assert maintenance.json()["queue"] is None
    project(app)
    body = client.get("/api/queues").json()
    assert body["paused"] is True
    assert body["pause"]["by"] == "token:bob"
    assert body["queues"]["default"]["paused"] is True
    assert body["queues"]["default"]["pause"]["reason"] == "deploy"
    assert body["queues"]["high"]["paused"] is False

    resumed = client.post("/api/queues/default/resume", headers=bearer(app, "carol"))
    assert resumed.json() == {"queue": "default", "paused": False, "pause": None}
    assert client.post("/api/queues/resume").json()["paused"] is False
    assert client.post("/api/queues/resume").status_code == 409
    assert client.post("/api/queues/low/resume").status_code == 409
    project(app)
    body = client.get("/api/queues").json()
    assert body["paused"] is False
    assert not any(q["paused"] for q in body["queues"].values())
    events = list(app.events.events.get(queue_control_id("default")))
    assert [(type(e).__name__, e.queue, e.by) for e in events[1:]] == [
        ("Paused", "default", "token:alice"),
        ("Paused", None, "token:bob"),
        ("Resumed", "default", "token:carol"),
        ("Resumed", None, "token:tester"),
    ]


@sqlite_only
def test_pause_is_per_tenant(client: TestClient[Litestar], app: Chronicle):
    assert client.post("/api/queues/low/pause", headers=ACME).status_code == 200
    project(app)
    assert client.get("/api/queues", headers=ACME).json()["queues"]["low"]["paused"] is True
    assert client.get("/api/queues").json()["queues"]["low"]["paused"] is False
    assert client.post("/api/queues/low/pause").status_code == 200  # not paused for `default`


@sqlite_only
@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/queues/urgent/pause", None, 422, "queue"),
        ("/api/queues/urgent/resume", None, 422, "queue"),
        ("/api/queues/default/pause", {"reason": "x" * 501}, 400, "reason"),
        ("/api/queues/default/pause", {"why": "x"}, 400, None),
        ("/api/queues/default/pause", [], 400, None),
    ],
)
def test_bad_pause_requests_are_4xx(
    client: TestClient[Litestar], path: str, body: Any, status: int, field: str | None
):
    response = client.post(path, json=body) if body is not None else client.post(path)
    assert response.status_code == status, response.text
    assert response.json().get("field") == field


@sqlite_only
def test_openapi_lists_the_queue_operations(client: TestClient[Litestar]):
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert paths["/api/queues/pause"]["post"]["operationId"] == "pauseAllQueues"
    assert paths["/api/queues/resume"]["post"]["operationId"] == "resumeAllQueues"
    assert paths["/api/queues/{queue}/pause"]["post"]["operationId"] == "pauseQueue"
    assert paths["/api/queues/{queue}/resume"]["post"]["operationId"] == "resumeQueue"


# -- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_cli_queues_pause_resume_and_stats(run):
    run("dispatch", "demo:noop", "--queue", "low")
    assert run("queues", "pause", "low", "--reason", "nightly load").strip() == "paused low"
    assert "already paused" in run("queues", "pause", "low", code=1)
    assert run("queues", "pause").strip() == "paused every queue (maintenance)"
    stats = json.loads(run("queues", "stats", "--json"))
    assert stats["paused"] is True
    assert stats["pause"]["by"].startswith("cli:")
    assert stats["queues"]["low"]["paused"] is True
    assert stats["queues"]["low"]["pause"]["reason"] == "nightly load"
    assert stats["queues"]["low"]["waiting"] == 1
    assert len(stats["queues"]["low"]["processed_per_minute"]) == 60
    table = run("queues", "stats")
    assert table.splitlines()[0].split()[:3] == ["queue", "state", "waiting"]
    low_line = next(line for line in table.splitlines() if line.startswith("low"))
    assert low_line.split()[1:3] == ["paused", "1"]
    assert "maintenance pause: paused by cli:" in table
    assert "low: paused by cli:" in table
    assert run("queues", "resume", "low").strip() == "resumed low"
    assert run("queues", "resume").strip() == "lifted the maintenance pause"
    assert "is not paused" in run("queues", "resume", code=1)
    assert "urgent" in run("queues", "pause", "urgent", code=2)
    stats = json.loads(run("queues", "stats", "--json"))
    assert stats["paused"] is False
    assert stats["queues"]["low"]["paused"] is False


def test_rebuilt_read_models_give_the_same_answers(app: Chronicle):
    for i in range(1, 6):
        save_job(app, queue="default", at=T0, wait_s=i, run_ms=10.0 * i)
    app.queue_control.pause(tenant="default", queue="low", by="ops")
    project(app)
    before = (app.queue_metrics.activity("default", T0), app.queue_pauses.pauses())
    for name in ("queue_metrics", "queue_pauses"):
        app.runners[name].rebuild()
        app.runners[name].rebuild()  # twice: the shadow's indexes must not clash with live ones
    assert (app.queue_metrics.activity("default", T0), app.queue_pauses.pauses()) == before
