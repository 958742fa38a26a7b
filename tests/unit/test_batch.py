"""The Batch aggregate's rules, and progress rounded half away from zero."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.batch import (
    MAX_JOBS_PER_ADD,
    Batch,
    BatchProgress,
    CallbackKind,
    callback_job_id,
    progress_percent,
)
from domain.shared import InvalidTransitionError, ValidationError

AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def spec(line: str) -> dict[str, object]:
    name = line.split(maxsplit=1)[0]
    return {"command": name, "command_line": line, "arguments": {}, "options": {}}


ALL_CALLBACKS = {kind.value: spec(f"demo:echo {kind.value}") for kind in CallbackKind}


def batch(*, jobs: int = 3, allow_failures: bool = False, callbacks=None) -> Batch:
    created = Batch.create(
        batch_id=uuid4(),
        name="  nightly  ",
        by="alice",
        at=AT,
        allow_failures=allow_failures,
        callbacks=ALL_CALLBACKS if callbacks is None else callbacks,
    )
    created.add_jobs(job_ids=[uuid4() for _ in range(jobs)], by="alice", at=AT)
    created.collect_events()
    return created


def progress(total=3, pending=0, succeeded=0, failed=0, cancelled=0) -> BatchProgress:
    return BatchProgress(
        total=total, pending=pending, succeeded=succeeded, failed=failed, cancelled=cancelled
    )


def names(b: Batch) -> list[str]:
    return [type(e).__name__ for e in b.collect_events()]


@pytest.mark.parametrize(
    ("processed", "total", "percent"),
    [
        (1, 8, 13),  # 12.5 rounds up, where round() would give 12
        (2, 3, 67),
        (1, 3, 33),
        (1, 200, 1),  # 0.5 → 1
        (3, 8, 38),  # 37.5 → 38
        (5, 8, 63),  # 62.5 → 63 (round() gives 62)
        (0, 5, 0),
        (5, 5, 100),
        (0, 0, 0),
    ],
)
def test_progress_rounds_half_away_from_zero(processed, total, percent):
    assert progress_percent(processed, total) == percent


def test_progress_counts_every_final_state():
    p = progress(total=8, pending=7, succeeded=0, failed=1)
    assert (p.processed, p.percent) == (1, 13)


def test_create_checks_name_and_callbacks():
    with pytest.raises(ValidationError) as error:
        Batch.create(batch_id=uuid4(), name=" ", by="a", at=AT)
    assert error.value.field == "name"
    with pytest.raises(ValidationError) as error:
        Batch.create(batch_id=uuid4(), name="x", by="a", at=AT, callbacks={"after": spec("x")})
    assert error.value.field == "after"
    with pytest.raises(ValidationError, match="timezone-aware"):
        Batch.create(batch_id=uuid4(), name="x", by="a", at=datetime(2026, 1, 1))  # noqa: DTZ001
    b = batch()
    assert (b.name, b.job_count, b.is_open) == ("nightly", 3, True)


def test_jobs_are_added_only_while_open():
    b = batch()
    with pytest.raises(ValidationError):
        b.add_jobs(job_ids=[], by="a", at=AT)
    twice = uuid4()
    with pytest.raises(ValidationError, match="twice"):
        b.add_jobs(job_ids=[twice, twice], by="a", at=AT)
    with pytest.raises(ValidationError, match="at most"):
        b.add_jobs(job_ids=[uuid4() for _ in range(MAX_JOBS_PER_ADD + 1)], by="a", at=AT)
    b.add_jobs(job_ids=[uuid4()], by="a", at=AT)
    assert b.job_count == 4
    b.cancel(by="bob", reason="wrong input", at=AT)
    with pytest.raises(InvalidTransitionError, match="cancelled"):
        b.add_jobs(job_ids=[uuid4()], by="a", at=AT)
    finished = batch(jobs=1)
    finished.settle(progress(total=1, succeeded=1), at=AT)
    with pytest.raises(InvalidTransitionError, match="finished"):
        finished.add_jobs(job_ids=[uuid4()], by="a", at=AT)


def test_all_succeeded_fires_then_and_finally_once():
    b = batch()
    assert b.settle(progress(pending=1, succeeded=2), at=AT) == []
    assert names(b) == []
    due = b.settle(progress(succeeded=3), at=AT)
    assert due == [CallbackKind.THEN, CallbackKind.FINALLY]
    assert names(b) == ["Finished", "CallbackDispatched", "CallbackDispatched"]
    assert b.dispatched["then"] == callback_job_id(b.id, CallbackKind.THEN)
    assert b.settle(progress(succeeded=3), at=AT) == []
    assert names(b) == []


def test_first_failure_cancels_the_batch_and_fires_catch_then_finally_when_done():
    b = batch()
    due = b.settle(progress(pending=2, failed=1), at=AT, cause="job x failed")
    assert due == [CallbackKind.CATCH]
    events = b.collect_events()
    assert [type(e).__name__ for e in events] == ["Cancelled", "CallbackDispatched"]
    assert events[0].reason == "job x failed"
    assert events[0].by == "system"
    assert b.cancelled
    assert b.settle(progress(pending=1, failed=2), at=AT) == []
    # Every job final: finished, finally; never then.
    assert b.settle(progress(failed=2, cancelled=1), at=AT) == [CallbackKind.FINALLY]
    assert b.settle(progress(failed=2, cancelled=1), at=AT) == []


def test_with_allow_failures_a_failure_fires_catch_but_does_not_cancel():
    b = batch(allow_failures=True)
    assert b.settle(progress(pending=2, failed=1), at=AT) == [CallbackKind.CATCH]
    assert not b.cancelled
    assert b.settle(progress(succeeded=2, failed=1), at=AT) == [CallbackKind.FINALLY]
    # The failed job retried and succeeded: now every job succeeded, then fires (once).
    assert b.settle(progress(pending=1, succeeded=2), at=AT) == []
    assert b.settle(progress(succeeded=3), at=AT) == [CallbackKind.THEN]
    assert b.settle(progress(succeeded=3), at=AT) == []


def test_cancelled_batch_fires_finally_when_its_running_jobs_are_done():
    b = batch()
    b.cancel(by="bob", reason="", at=AT)
    with pytest.raises(InvalidTransitionError):
        b.cancel(by="bob", reason="", at=AT)
    b.collect_events()
    assert b.settle(progress(pending=1, succeeded=1, cancelled=1), at=AT) == []
    assert b.settle(progress(succeeded=2, cancelled=1), at=AT) == [CallbackKind.FINALLY]
    assert names(b) == ["Finished", "CallbackDispatched"]
    done = batch(jobs=1)
    done.settle(progress(total=1, succeeded=1), at=AT)
    with pytest.raises(InvalidTransitionError, match="finished"):
        done.cancel(by="bob", reason="", at=AT)


def test_progress_that_lags_behind_added_jobs_does_not_finish_the_batch():
    b = batch(jobs=2)
    b.add_jobs(job_ids=[uuid4()], by="a", at=AT)
    b.collect_events()
    assert b.settle(progress(total=2, succeeded=2), at=AT) == []
    assert not b.finished


def test_callbacks_are_optional():
    b = batch(callbacks={})
    assert b.settle(progress(pending=1, failed=2), at=AT) == []
    assert names(b) == ["Cancelled"]
    assert b.settle(progress(failed=2, cancelled=1), at=AT) == []
    assert names(b) == ["Finished"]
