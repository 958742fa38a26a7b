"""The job pipeline on real storage (SQLite files and Postgres): dispatch → outbox → worker →
projections, with the crash cases the design promises to survive."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest

from application.jobs import DispatchRequest
from application.views.jobs import JobFilter
from infrastructure.worker_heartbeats import SqlWorkerHeartbeats
from interfaces.bootstrap import Chronicle
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration


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


def test_dispatched_job_runs_and_is_projected(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    job_id = chronicle.jobs.dispatch(DispatchRequest(command_line="demo:echo hello --upper"))
    # Nothing is sent before the relay reads the committed event.
    assert queue.sent == []
    chronicle.runners["outbox"].catch_up()
    assert [(j, q) for j, q, _ in queue.sent] == [(job_id, "default")]
    executor = chronicle.executor(queue, worker_id="w-1")
    for sent_id, _, _ in queue.take():
        executor.process(sent_id)
    project(chronicle)
    row = chronicle.queries.get("default", job_id)
    assert row is not None
    assert row.status == "succeeded"
    assert row.attempts == 1
    assert row.output == "HELLO\n"
    assert row.result == {"echoed": "hello"}
    assert row.worker_id == "w-1"
    timeline = [entry.event for entry in chronicle.queries.timeline(job_id)]
    assert timeline == ["dispatched", "started", "succeeded"]
    stats = {
        q.queue: q for q in chronicle.queries.queue_stats("default", chronicle.clock.now()).queues
    }
    assert stats["default"].succeeded == 1
    assert stats["default"].waiting == 0


def test_failing_job_retries_then_succeeds(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    job_id = chronicle.jobs.dispatch(
        DispatchRequest(command_line="demo:fail --times=2", max_attempts=3, backoff_seconds=0)
    )
    run_all(chronicle, queue)
    project(chronicle)
    row = chronicle.queries.get("default", job_id)
    assert row is not None
    assert (row.status, row.attempts) == ("succeeded", 3)
    events = [e.event for e in chronicle.queries.timeline(job_id)]
    assert events.count("attempt_failed") == 2
    assert events.count("retry_scheduled") == 2


def test_exhausted_attempts_dead_letter_the_job(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    job_id = chronicle.jobs.dispatch(
        DispatchRequest(command_line="demo:fail --times=5", max_attempts=2, backoff_seconds=0)
    )
    run_all(chronicle, queue)
    project(chronicle)
    row = chronicle.queries.get("default", job_id)
    assert row is not None
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.last_error_type == "RuntimeError"
    assert "demo failure" in (row.last_error_message or "")
    assert "Traceback" in (row.last_error_traceback or "")
    failed = chronicle.queries.list(
        JobFilter(tenant="default", status="failed"),
        limit=10,
        cursor=None,
        now=chronicle.clock.now(),
    )
    assert [j.id for j in failed.items] == [job_id]


def test_crash_between_commit_and_enqueue_still_enqueues(chronicle: Chronicle):
    """The dispatching process dies right after its commit: the relay still sends."""
    job_id = chronicle.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
    # No relay ran in this "process". A new one starts later, from its committed position.
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    chronicle.runners["outbox"].catch_up()
    assert [j for j, _, _ in queue.sent] == [job_id]


def test_relay_crash_after_send_before_commit_resends_harmlessly(chronicle: Chronicle):
    class DyingQueue(FakeQueue):
        def enqueue(self, job_id, queue, *, delay_seconds=0.0):
            super().enqueue(job_id, queue, delay_seconds=delay_seconds)
            raise SystemExit("relay process killed after sending")

    dying = DyingQueue()
    chronicle.add_outbox(dying)
    job_id = chronicle.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
    with pytest.raises(SystemExit):
        chronicle.runners["outbox"].catch_up()
    assert [j for j, _, _ in dying.sent] == [job_id]
    # The position was not committed: a restarted relay sends again; the worker runs it once.
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    chronicle.runners["outbox"].catch_up()
    assert [j for j, _, _ in queue.sent] == [job_id]
    executor = chronicle.executor(queue)
    outcomes = [executor.process(j).value for j in (job_id, job_id)]
    assert outcomes == ["succeeded", "skipped"]


def test_projection_crash_between_rows_and_position_is_exactly_once(
    chronicle: Chronicle, monkeypatch
):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    ids = chronicle.jobs.dispatch_many(
        [DispatchRequest(command_line=f"demo:echo n{i}") for i in range(5)]
    )
    runner = chronicle.runners["jobs"]
    store = runner.store

    original = store.transaction

    @contextmanager
    def crashing_transaction():
        with original() as tracked:
            real_advance = tracked.advance

            def advance(position: int) -> None:
                real_advance(position)
                raise RuntimeError("killed after rows and position, before commit")

            tracked.advance = advance  # type: ignore[method-assign]
            yield tracked

    monkeypatch.setattr(store, "transaction", crashing_transaction)
    with pytest.raises(RuntimeError):
        runner.step()
    monkeypatch.setattr(store, "transaction", original)
    assert store.position() == 0
    assert chronicle.queries.get("default", ids[0]) is None
    runner.catch_up()
    stats = {
        q.queue: q for q in chronicle.queries.queue_stats("default", chronicle.clock.now()).queues
    }
    assert stats["default"].waiting == 5
    page = chronicle.queries.list(
        JobFilter(tenant="default"), limit=10, cursor=None, now=chronicle.clock.now()
    )
    assert sorted(j.id for j in page.items) == sorted(ids)


def test_rebuild_replaces_the_read_model_with_the_same_rows(chronicle: Chronicle):
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    chronicle.jobs.dispatch_many(
        [DispatchRequest(command_line=f"demo:echo r{i}") for i in range(30)]
    )
    run_all(chronicle, queue)
    project(chronicle)
    now = chronicle.clock.now()
    before = chronicle.queries.queue_stats("default", now)
    page_before = chronicle.queries.list(
        JobFilter(tenant="default"), limit=100, cursor=None, now=now
    )
    seen: list[tuple[int, int]] = []
    for name in ("jobs", "job_timeline"):
        chronicle.runners[name].rebuild(progress=lambda done, total: seen.append((done, total)))
    assert chronicle.queries.queue_stats("default", now) == before
    page_after = chronicle.queries.list(
        JobFilter(tenant="default"), limit=100, cursor=None, now=now
    )
    assert page_after == page_before
    assert seen
    assert seen[-1][0] == seen[-1][1]
    # A second rebuild works too (index names were handed back to the live tables).
    chronicle.runners["jobs"].rebuild()
    assert chronicle.queries.queue_stats("default", now) == before


def test_cursor_pagination_walks_every_job_once(chronicle: Chronicle):
    ids = chronicle.jobs.dispatch_many(
        [DispatchRequest(command_line=f"demo:echo p{i}") for i in range(25)]
    )
    project(chronicle)
    seen = []
    cursor = None
    while True:
        page = chronicle.queries.list(
            JobFilter(tenant="default"), limit=10, cursor=cursor, now=chronicle.clock.now()
        )
        seen += [j.id for j in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))


def test_job_of_a_dead_worker_is_retried_after_redelivery(chronicle: Chronicle):
    """A worker dies mid-job: its message comes back; once the worker is silent long enough,
    the lost attempt is recorded as failed and the job runs again."""
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    job_id = chronicle.jobs.dispatch(DispatchRequest(command_line="demo:noop", backoff_seconds=0))
    chronicle.runners["outbox"].catch_up()
    heartbeats = SqlWorkerHeartbeats(chronicle.db)
    dead = "dead-host:1"
    heartbeats.beat(dead, chronicle.clock.now() - timedelta(seconds=5))
    job = chronicle.events.repository.get(job_id)
    job.start(worker_id=dead, at=chronicle.clock.now())
    chronicle.events.save(job)  # ... and the process is killed before it records an outcome
    queue.take()

    executor = chronicle.executor(queue, worker_id="live:2")
    # While the dead worker's last beat is recent, the redelivered message is deferred.
    assert executor.process(job_id).value == "deferred"
    assert queue.take()[0][2] == 30.0
    heartbeats.beat(dead, chronicle.clock.now() - timedelta(seconds=60))
    assert executor.process(job_id).value == "failed"
    run_all(chronicle, queue)
    project(chronicle)
    row = chronicle.queries.get("default", job_id)
    assert row is not None
    assert (row.status, row.attempts, row.last_error_type) == ("succeeded", 2, "WorkerLost")


def test_a_changed_read_model_definition_is_rebuilt_from_the_log(chronicle: Chronicle):
    from dataclasses import replace  # noqa: PLC0415

    from application.projections import ProjectionRunner  # noqa: PLC0415
    from application.views.job_timeline import JobTimelineProjection  # noqa: PLC0415
    from infrastructure.read_models.jobs import JOB_TIMELINE, SqlTimelineWriter  # noqa: PLC0415
    from infrastructure.read_models.store import SqlProjectionStore  # noqa: PLC0415

    job_id = chronicle.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
    project(chronicle)
    assert len(chronicle.queries.timeline(job_id)) == 1
    # A new release adds a column: the store sees the definition changed.
    widened = replace(JOB_TIMELINE, columns="note TEXT, " + JOB_TIMELINE.columns)
    store = SqlProjectionStore(chronicle.db, "job_timeline", [widened], SqlTimelineWriter)
    store.create()
    assert store.position() == 0
    assert chronicle.queries.timeline(job_id) == []
    ProjectionRunner(JobTimelineProjection(), store, chronicle.log).catch_up()
    assert [e.event for e in chronicle.queries.timeline(job_id)] == ["dispatched"]
    store.create()  # unchanged now: nothing is dropped
    assert store.position() == chronicle.log.head()


def test_a_read_model_whose_revision_goes_up_is_rebuilt_from_the_log(chronicle: Chronicle):
    from dataclasses import replace  # noqa: PLC0415

    from infrastructure.read_models.jobs import JOB_TIMELINE, SqlTimelineWriter  # noqa: PLC0415
    from infrastructure.read_models.store import SqlProjectionStore  # noqa: PLC0415

    job_id = chronicle.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
    project(chronicle)
    # Revision 0 is the fingerprint of a table that never had one: nothing is dropped.
    same = SqlProjectionStore(chronicle.db, "job_timeline", [JOB_TIMELINE], SqlTimelineWriter)
    same.create()
    assert same.position() == chronicle.log.head()
    # Same columns, but the projection now writes them differently: revision 1.
    revised = replace(JOB_TIMELINE, revision=1)
    store = SqlProjectionStore(chronicle.db, "job_timeline", [revised], SqlTimelineWriter)
    store.create()
    assert store.position() == 0
    assert chronicle.queries.timeline(job_id) == []
    store.create()  # the same revision again: nothing is dropped
    assert store.position() == 0
