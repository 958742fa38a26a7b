"""Batches on real storage (SQLite files and Postgres): counts derived from job events, the
batch rules, and then/catch/finally dispatched exactly once, also when events are read again."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.batches import BatchRequest
from application.event_log import topic
from application.jobs import DispatchRequest
from application.views.batches import BatchRow
from application.views.jobs import JobFilter
from domain.batch import Batch, CallbackKind, callback_job_id
from domain.job import Job
from domain.shared import InvalidTransitionError, NotFoundError, ValidationError
from interfaces.bootstrap import PROJECTIONS, Chronicle
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

CALLBACKS = {"then": "demo:echo then", "catch": "demo:echo catch", "finally_": "demo:echo finally"}


@dataclass
class Harness:
    """A Chronicle whose jobs run when the test says so, on a fake broker."""

    app: Chronicle
    queue: FakeQueue

    def __post_init__(self) -> None:
        self.executor = self.app.executor(self.queue, worker_id="test-worker")
        self.backlog: list[UUID] = []

    def follow(self) -> list[UUID]:
        """Run every runner (projections, batch process, relay) until none has anything left
        to read; return the jobs sent (they are also kept for `run`)."""
        while True:
            head = self.app.log.head()
            for runner in self.app.runners.values():
                runner.catch_up()
            if self.app.log.head() == head:
                break
        sent = [job_id for job_id, _, _ in self.queue.take()]
        self.backlog += sent
        return sent

    def run(self) -> None:
        """Run every message sent so far (a second one for a job is skipped), until none is
        left and every runner has caught up."""
        self.follow()
        while self.backlog:
            backlog, self.backlog = self.backlog, []
            for job_id in backlog:
                self.executor.process(job_id)
            self.follow()

    def create(self, jobs: list[str], **options) -> UUID:
        return self.app.batches.create(
            BatchRequest(
                **{
                    "name": "nightly",
                    "jobs": [DispatchRequest(command_line=line, max_attempts=1) for line in jobs],
                    **CALLBACKS,
                    **options,
                }
            )
        )

    def row(self, batch_id: UUID) -> BatchRow:
        row = self.app.batch_queries.get_batch("default", batch_id)
        assert row is not None
        return row

    def counts(self, batch_id: UUID) -> tuple[int, ...]:
        row = self.row(batch_id)
        return (row.total, row.pending, row.processed, row.failed, row.cancelled_jobs, row.progress)

    def callbacks(self, batch_id: UUID) -> dict[str, int]:
        """How often each callback's job was dispatched, and recorded on the batch."""
        events = self.app.log.read(0, limit=1_000_000, topics=[topic(Job.Dispatched)])
        dispatched = Counter(logged.event.originator_id for logged in events)
        recorded = Counter(
            event.kind
            for event in self.app.events.events.get(batch_id)
            if isinstance(event, Batch.CallbackDispatched)
        )
        counts = {}
        for kind in CallbackKind:
            times = dispatched[callback_job_id(batch_id, kind)]
            assert recorded[kind.value] == times
            counts[kind.value] = times
        return counts

    def job_statuses(self, batch_id: UUID) -> Counter[str]:
        page = self.app.queries.list(
            JobFilter(tenant="default", batch_id=str(batch_id)),
            limit=500,
            cursor=None,
            now=self.app.clock.now(),
        )
        return Counter(row.status for row in page.items)


@pytest.fixture
def h(chronicle: Chronicle) -> Harness:
    queue = FakeQueue()
    chronicle.add_outbox(queue)
    return Harness(chronicle, queue)


def test_create_saves_the_batch_and_its_jobs_and_counts_them(h: Harness):
    batch_id = h.create(["demo:echo a", "demo:echo b", "demo:noop"])
    h.follow()
    row = h.row(batch_id)
    assert (row.name, row.total, row.pending, row.processed, row.progress) == (
        "nightly",
        3,
        3,
        0,
        0,
    )
    assert (row.finished, row.cancelled, row.allow_failures) == (False, False, False)
    assert (row.then_command, row.catch_command) == ("demo:echo then", "demo:echo catch")
    assert h.job_statuses(batch_id) == {"waiting": 3}
    assert h.app.batch_queries.batch_job_ids(batch_id, "pending") == sorted(
        UUID(str(j.id))
        for j in h.app.queries.list(
            JobFilter(tenant="default", batch_id=str(batch_id)),
            limit=10,
            cursor=None,
            now=h.app.clock.now(),
        ).items
    )
    # Another tenant does not see it.
    assert h.app.batch_queries.get_batch("acme", batch_id) is None
    with pytest.raises(NotFoundError):
        h.app.batches.get(batch_id, tenant="acme")


def test_all_jobs_succeed_then_and_finally_once(h: Harness):
    batch_id = h.create([f"demo:echo {i}" for i in range(8)])
    sent = h.follow()
    h.executor.process(sent[0])
    h.follow()
    assert h.counts(batch_id) == (8, 7, 1, 0, 0, 13)  # 12.5 % rounds up
    assert h.callbacks(batch_id) == {"then": 0, "catch": 0, "finally": 0}
    for job_id in sent[1:]:
        h.executor.process(job_id)
    h.run()
    row = h.row(batch_id)
    assert h.counts(batch_id) == (8, 0, 8, 0, 0, 100)
    assert row.finished
    assert row.finished_at is not None
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}
    assert row.then_job_id == callback_job_id(batch_id, CallbackKind.THEN)
    assert row.catch_job_id is None
    # The callback jobs ran like any other job (and are not part of the batch).
    then_job = h.app.queries.get("default", callback_job_id(batch_id, CallbackKind.THEN))
    assert then_job is not None
    assert (then_job.status, then_job.output, then_job.batch_id) == ("succeeded", "then\n", None)
    assert then_job.requested_by == f"batch:{batch_id}:then"
    assert h.counts(batch_id) == (8, 0, 8, 0, 0, 100)


def test_a_failure_cancels_the_batch_and_its_pending_jobs(h: Harness):
    batch_id = h.create(["demo:fail --times=5", "demo:echo b", "demo:echo c", "demo:echo d"])
    sent = h.follow()
    failing, running, *waiting = sent
    # One job is running on some worker when the batch fails.
    job = h.app.events.repository.get(running)
    job.start(worker_id="elsewhere", at=h.app.clock.now())
    h.app.events.save(job)
    h.executor.process(failing)
    h.follow()
    row = h.row(batch_id)
    assert row.cancelled
    assert row.cancelled_by == "system"
    assert row.cancel_reason == f"job {failing} failed"
    assert h.job_statuses(batch_id) == {"failed": 1, "running": 1, "cancelled": 2}
    assert h.app.events.repository.get(running).cancellation_requested
    assert h.counts(batch_id) == (4, 1, 3, 1, 2, 75)
    assert h.callbacks(batch_id) == {"then": 0, "catch": 1, "finally": 0}
    # Delivered later, the cancelled jobs' messages are skipped.
    assert [h.executor.process(j).value for j in waiting] == ["skipped", "skipped"]
    # The running one sees the request and stops: every job is done, finally fires.
    job = h.app.events.repository.get(running)
    job.stop_cancelled(at=h.app.clock.now())
    h.app.events.save(job)
    h.run()
    assert h.counts(batch_id) == (4, 0, 4, 1, 3, 100)
    assert h.row(batch_id).finished
    assert h.callbacks(batch_id) == {"then": 0, "catch": 1, "finally": 1}
    catch_job = h.app.queries.get("default", callback_job_id(batch_id, CallbackKind.CATCH))
    assert catch_job is not None
    assert catch_job.status == "succeeded"
    with pytest.raises(InvalidTransitionError, match="cancelled"):
        h.app.batches.retry_failed(batch_id, tenant="default", by="op")


def test_with_allow_failures_failures_fire_catch_and_retry_fires_then(h: Harness):
    batch_id = h.create(
        ["demo:fail --times=1", "demo:fail --times=1", "demo:echo c"], allow_failures=True
    )
    h.run()
    row = h.row(batch_id)
    assert not row.cancelled
    assert h.counts(batch_id) == (3, 0, 3, 2, 0, 100)
    assert row.finished
    assert h.callbacks(batch_id) == {"then": 0, "catch": 1, "finally": 1}
    # Retrying the failed jobs reopens the counts; they now succeed: then fires, once.
    retried = h.app.batches.retry_failed(batch_id, tenant="default", by="operator")
    assert len(retried) == 2
    h.follow()
    assert h.counts(batch_id) == (3, 2, 1, 0, 0, 33)
    assert not h.row(batch_id).finished
    assert h.app.batches.retry_failed(batch_id, tenant="default", by="operator") == []
    h.run()
    assert h.counts(batch_id) == (3, 0, 3, 0, 0, 100)
    assert h.row(batch_id).finished
    assert h.callbacks(batch_id) == {"then": 1, "catch": 1, "finally": 1}
    timeline = h.app.queries.timeline(retried[0])
    assert [e.actor for e in timeline if e.event == "retried"] == ["operator"]


def test_operator_cancel_cancels_pending_jobs_and_fires_finally(h: Harness):
    batch_id = h.create(["demo:echo a", "demo:echo b", "demo:echo c"])
    sent = h.follow()
    h.executor.process(sent[0])
    cancelled = h.app.batches.cancel(batch_id, tenant="default", by="bob", reason="bad input")
    assert cancelled.cancelled
    h.run()
    row = h.row(batch_id)
    assert (row.cancelled, row.cancelled_by, row.cancel_reason) == (True, "bob", "bad input")
    assert h.counts(batch_id) == (3, 0, 3, 0, 2, 100)
    assert h.job_statuses(batch_id) == {"succeeded": 1, "cancelled": 2}
    assert h.callbacks(batch_id) == {"then": 0, "catch": 0, "finally": 1}
    with pytest.raises(InvalidTransitionError, match="already cancelled"):
        h.app.batches.cancel(batch_id, tenant="default", by="bob")
    with pytest.raises(InvalidTransitionError, match="cancelled"):
        h.app.batches.add_jobs(
            batch_id, [DispatchRequest(command_line="demo:noop")], tenant="default", by="bob"
        )


def test_jobs_added_to_an_open_batch_are_counted_and_a_finished_batch_takes_none(h: Harness):
    batch_id = h.create(["demo:echo a"])
    sent = h.follow()
    added = h.app.batches.add_jobs(
        batch_id,
        [DispatchRequest(command_line="demo:echo b"), DispatchRequest(command="demo:noop")],
        tenant="default",
        by="carol",
    )
    # The first job finishing does not finish the batch: the added ones are pending.
    h.executor.process(sent[0])
    h.follow()
    assert h.counts(batch_id) == (3, 2, 1, 0, 0, 33)
    assert h.callbacks(batch_id) == {"then": 0, "catch": 0, "finally": 0}
    h.run()
    assert h.counts(batch_id) == (3, 0, 3, 0, 0, 100)
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}
    job = h.app.queries.get("default", added[0])
    assert job is not None
    assert (job.batch_id, job.requested_by) == (str(batch_id), "carol")
    with pytest.raises(InvalidTransitionError, match="finished"):
        h.app.batches.add_jobs(
            batch_id, [DispatchRequest(command_line="demo:noop")], tenant="default", by="carol"
        )
    with pytest.raises(InvalidTransitionError, match="finished"):
        h.app.batches.cancel(batch_id, tenant="default", by="carol")


def test_bad_jobs_and_callbacks_are_named_and_nothing_is_saved(h: Harness):
    head = h.app.log.head()
    with pytest.raises(ValidationError) as error:
        h.create(["demo:echo ok", "demo:nope"])
    assert error.value.field == "jobs[1].command"
    assert str(error.value).startswith("jobs[1]: ")
    with pytest.raises(ValidationError) as error:
        h.create(["demo:echo ok", "demo:echo ok", "demo:echo 'unbalanced"])
    assert error.value.field == "jobs[2].command_line"
    with pytest.raises(ValidationError) as error:
        h.app.batches.create(
            BatchRequest(
                name="x",
                jobs=[
                    DispatchRequest(command="demo:echo", arguments={"message": "m"}),
                    DispatchRequest(command="demo:echo", options={"times": "many"}),
                ],
            )
        )
    assert error.value.field == "jobs[1].options.times"
    with pytest.raises(ValidationError) as error:
        h.create(["demo:echo ok"], catch="demo:echo 'unbalanced")
    assert error.value.field == "catch"
    with pytest.raises(ValidationError) as error:
        h.create([])
    assert error.value.field == "jobs"
    with pytest.raises(ValidationError) as error:
        h.create(["demo:echo ok"], name="")
    assert error.value.field == "name"
    assert h.app.log.head() == head
    with pytest.raises(NotFoundError):
        h.app.batches.cancel(uuid4(), tenant="default", by="x")
    # A job id is not a batch id.
    job_id = h.app.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
    with pytest.raises(NotFoundError):
        h.app.batches.get(job_id, tenant="default")


def _process_tracking(app: Chronicle, position: int) -> None:
    with app.db.transaction() as s:
        s.execute(
            "UPDATE projection_tracking SET position = ? WHERE name = ?",
            (position, "batch_process"),
        )


def test_reading_the_log_again_dispatches_no_callback_twice(h: Harness):
    ok = h.create(["demo:echo a", "demo:echo b"])
    failing = h.create(["demo:fail --times=9", "demo:echo b"], allow_failures=True)
    cancelled = h.create(["demo:fail --times=9", "demo:echo b", "demo:echo c"])
    h.run()
    ids = (ok, failing, cancelled)
    before = {b: (h.counts(b), h.callbacks(b)) for b in ids}
    assert before[ok][1] == {"then": 1, "catch": 0, "finally": 1}
    assert before[failing][1] == {"then": 0, "catch": 1, "finally": 1}
    assert before[cancelled][1] == {"then": 0, "catch": 1, "finally": 1}
    head = h.app.log.head()
    state = _process_state(h.app)
    _process_tracking(h.app, 0)
    h.app.runners["batch_process"].catch_up()
    assert h.app.log.head() == head  # nothing new was saved
    assert _process_state(h.app) == state
    h.run()
    assert {b: (h.counts(b), h.callbacks(b)) for b in ids} == before


def _process_state(app: Chronicle) -> tuple[list[dict], list[dict]]:
    with app.db.read() as s:
        return (
            s.fetchall("SELECT * FROM batch_process_batches ORDER BY id"),
            s.fetchall("SELECT * FROM batch_process_jobs ORDER BY job_id"),
        )


@dataclass
class LaggingLog:
    """The log as a process that has not yet seen events past `upto` reads it."""

    log: Any
    upto: int

    def head(self) -> int:
        return self.upto

    def read(self, after: int, **kwargs: Any) -> Any:
        return self.log.read(after, **kwargs)


def test_a_process_that_has_not_seen_added_jobs_does_not_finish_the_batch(
    h: Harness, monkeypatch: pytest.MonkeyPatch
):
    batch_id = h.create(["demo:echo a"])
    sent = h.follow()
    h.executor.process(sent[0])
    seen = h.app.log.head()
    h.app.batches.add_jobs(
        batch_id, [DispatchRequest(command_line="demo:noop")] * 2, tenant="default", by="x"
    )
    runner = h.app.runners["batch_process"]
    monkeypatch.setattr(runner, "log", LaggingLog(runner.log, seen))
    runner.catch_up()
    # Its counts say every job it knows of succeeded; the batch has more: nothing is decided.
    assert h.callbacks(batch_id) == {"then": 0, "catch": 0, "finally": 0}
    assert not h.app.batches.get(batch_id, tenant="default").finished
    monkeypatch.undo()
    h.run()
    assert h.counts(batch_id) == (3, 0, 3, 0, 0, 100)
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}


def test_a_crash_after_saving_a_decision_and_before_its_position_is_harmless(
    h: Harness, monkeypatch: pytest.MonkeyPatch
):
    batch_id = h.create(["demo:echo a"])
    sent = h.follow()
    h.executor.process(sent[0])
    store = h.app.runners["batch_process"].store
    original = store.transaction

    @contextmanager
    def crashing_transaction():
        with original() as tracked:
            real_advance = tracked.advance

            def advance(position: int) -> None:
                real_advance(position)
                raise RuntimeError("killed after the callbacks were saved, before commit")

            tracked.advance = advance  # type: ignore[method-assign]
            yield tracked

    monkeypatch.setattr(store, "transaction", crashing_transaction)
    with pytest.raises(RuntimeError):
        h.app.runners["batch_process"].catch_up()
    monkeypatch.setattr(store, "transaction", original)
    # The decision is in the event store; the process's state and position are not.
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}
    h.run()
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}
    assert h.counts(batch_id) == (1, 0, 1, 0, 0, 100)


def test_rebuilding_the_batches_read_model_gives_the_same_rows(h: Harness):
    assert "batches" in PROJECTIONS
    ids = [
        h.create(["demo:echo a", "demo:fail --times=3"], allow_failures=True),
        h.create(["demo:fail --times=3", "demo:echo b"]),
        h.create(["demo:echo a"]),
    ]
    h.run()
    h.app.batches.retry_failed(ids[0], tenant="default", by="op")
    h.run()
    before, cursor = h.app.batch_queries.list_batches("default", limit=2, cursor=None)
    assert [row.id for row in before] == [ids[2], ids[1]]
    rest, end = h.app.batch_queries.list_batches("default", limit=2, cursor=cursor)
    assert ([row.id for row in rest], end) == ([ids[0]], None)
    h.app.runners["batches"].rebuild()
    h.app.runners["batches"].rebuild()
    after, _ = h.app.batch_queries.list_batches("default", limit=10, cursor=None)
    assert after == before + rest


def test_a_decision_another_process_saved_first_is_not_saved_again(
    h: Harness, monkeypatch: pytest.MonkeyPatch
):
    """Two batch processes decide at once (or one replays after a crash with a stale view):
    the event store rejects the second save and the loser learns what the winner did."""
    batch_id = h.create(["demo:echo a"])
    sent = h.follow()
    stale = h.app.events.repository.get(batch_id)
    h.executor.process(sent[0])
    h.follow()
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}
    # Replay with empty state and, on its first load, the batch as it was before the decision.
    with h.app.db.transaction() as s:
        s.execute("DELETE FROM batch_process_batches")
        s.execute("DELETE FROM batch_process_jobs")
    _process_tracking(h.app, 0)
    real_get = h.app.events.repository.get
    handed = []

    def get(aggregate_id, *args, **kwargs):
        if aggregate_id == batch_id and not handed:
            handed.append(stale)
            return stale
        return real_get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(h.app.events.repository, "get", get)
    head = h.app.log.head()
    h.app.runners["batch_process"].catch_up()
    assert handed == [stale]
    assert h.app.log.head() == head
    assert h.callbacks(batch_id) == {"then": 1, "catch": 0, "finally": 1}
