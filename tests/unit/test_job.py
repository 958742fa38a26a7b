"""Job aggregate: rules checked by its commands, state rebuilt from its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.job import MAX_LOST_ATTEMPTS, Job, JobStatus, RetryPolicy
from domain.shared import InvalidTransitionError, ValidationError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def dispatch(**overrides: object) -> Job:
    fields: dict[str, object] = {
        "job_id": uuid4(),
        "command": "demo:echo",
        "command_line": "demo:echo hi",
        "arguments": {"message": "hi"},
        "options": {},
        "at": T0,
    }
    fields.update(overrides)
    return Job.dispatch(**fields)  # type: ignore[arg-type]


def names(job: Job) -> list[str]:
    return [type(e).__name__ for e in job.collect_events()]


def test_dispatch_records_who_asked_and_where():
    job = dispatch(queue="high", requested_by="ops@example.com", max_attempts=5)
    events = job.collect_events()
    assert [type(e).__name__ for e in events] == ["Dispatched"]
    dispatched = events[0]
    assert isinstance(dispatched, Job.Dispatched)
    assert dispatched.queue == "high"
    assert dispatched.requested_by == "ops@example.com"
    assert dispatched.tenant == "default"
    assert job.status is JobStatus.WAITING
    assert job.available_at == T0


def test_dispatch_rejects_bad_input_with_the_field_named():
    with pytest.raises(ValidationError, match="unknown queue 'urgent'"):
        dispatch(queue="urgent")
    with pytest.raises(ValidationError, match="max_attempts"):
        dispatch(max_attempts=0)
    with pytest.raises(ValidationError, match="timeout_seconds"):
        dispatch(timeout_seconds=-1)
    with pytest.raises(ValidationError, match="timezone-aware"):
        dispatch(at=datetime(2026, 1, 1))  # noqa: DTZ001


def test_not_before_delays_the_job():
    job = dispatch(not_before=T0 + timedelta(minutes=5))
    assert job.available_at == T0 + timedelta(minutes=5)


def test_success_path_counts_the_attempt():
    job = dispatch()
    job.start(worker_id="w1", at=T0)
    job.succeed(result={"ok": 1}, output="done", duration_ms=3.0, at=T0)
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert names(job) == ["Dispatched", "Started", "Succeeded"]


def test_finished_job_cannot_start_again():
    job = dispatch()
    job.start(worker_id="w1", at=T0)
    job.succeed(result=None, output="", duration_ms=1, at=T0)
    with pytest.raises(InvalidTransitionError, match="succeeded, it cannot start"):
        job.start(worker_id="w2", at=T0)


def test_running_job_cannot_start_twice():
    job = dispatch()
    job.start(worker_id="w1", at=T0)
    with pytest.raises(InvalidTransitionError):
        job.start(worker_id="w2", at=T0)


def test_failures_retry_with_backoff_then_dead_letter():
    job = dispatch(max_attempts=3, backoff_seconds=2.0)
    for attempt in (1, 2):
        job.start(worker_id="w", at=T0)
        job.fail(
            error_type="RuntimeError",
            message="boom",
            traceback="tb",
            output="",
            duration_ms=1,
            at=T0,
            random_unit=0.5,  # no jitter
        )
        assert job.status is JobStatus.WAITING
        assert job.available_at == T0 + timedelta(seconds=2.0 * 2 ** (attempt - 1))
    job.start(worker_id="w", at=T0)
    job.fail(
        error_type="RuntimeError",
        message="boom",
        traceback="tb",
        output="",
        duration_ms=1,
        at=T0,
        random_unit=0.5,
    )
    assert job.status is JobStatus.FAILED
    assert job.attempts == 3
    assert names(job)[-2:] == ["AttemptFailed", "DeadLettered"]


def test_retry_policy_jitter_stays_within_bounds():
    policy = RetryPolicy(base_seconds=10, max_seconds=100, jitter=0.25)
    assert policy.delay(1, 0.0) == timedelta(seconds=7.5)
    assert policy.delay(1, 0.999999).total_seconds() == pytest.approx(12.5, abs=1e-4)
    assert policy.delay(10, 0.5) == timedelta(seconds=100)


def test_cancel_waiting_job_is_immediate_and_final():
    job = dispatch()
    job.cancel(by="op", reason="not needed", at=T0)
    assert job.status is JobStatus.CANCELLED
    with pytest.raises(InvalidTransitionError):
        job.start(worker_id="w", at=T0)
    with pytest.raises(InvalidTransitionError):
        job.retry(by="op", at=T0)


def test_no_success_after_cancel_request():
    job = dispatch()
    job.start(worker_id="w", at=T0)
    job.cancel(by="op", reason="", at=T0)
    assert job.status is JobStatus.RUNNING
    with pytest.raises(InvalidTransitionError, match="cannot succeed"):
        job.succeed(result=None, output="", duration_ms=1, at=T0)
    job.stop_cancelled(at=T0)
    assert job.status is JobStatus.CANCELLED


def test_failure_after_cancel_request_ends_cancelled_not_retried():
    job = dispatch()
    job.start(worker_id="w", at=T0)
    job.cancel(by="op", reason="", at=T0)
    job.fail(
        error_type="X", message="m", traceback="", output="", duration_ms=1, at=T0, random_unit=0
    )
    assert job.status is JobStatus.CANCELLED


def test_operator_retry_gives_a_new_round_of_attempts():
    job = dispatch(max_attempts=1)
    job.start(worker_id="w", at=T0)
    job.fail(
        error_type="X", message="m", traceback="", output="", duration_ms=1, at=T0, random_unit=0
    )
    assert job.status is JobStatus.FAILED
    job.retry(by="op", at=T0 + timedelta(hours=1))
    assert job.status is JobStatus.WAITING
    job.start(worker_id="w", at=T0)
    assert job.attempts == 2
    job.fail(
        error_type="X", message="m", traceback="", output="", duration_ms=1, at=T0, random_unit=0
    )
    assert job.status is JobStatus.FAILED


def test_long_output_is_clipped():
    job = dispatch()
    job.start(worker_id="w", at=T0)
    job.succeed(result=None, output="x" * 100_000, duration_ms=1, at=T0)
    succeeded = job.collect_events()[-1]
    assert isinstance(succeeded, Job.Succeeded)
    assert len(succeeded.output) <= 64_000
    assert "characters cut" in succeeded.output


def test_a_lost_attempt_is_not_counted_and_the_job_runs_again_at_once():
    job = dispatch(max_attempts=1)
    job.start(worker_id="w", at=T0)
    job.collect_events()
    job.lose_attempt(detail="worker w went silent", at=T0 + timedelta(seconds=40))
    assert names(job) == ["AttemptFailed", "AttemptNotCounted", "RetryScheduled"]
    assert job.status is JobStatus.WAITING
    assert job.available_at == T0 + timedelta(seconds=40)
    # Its only attempt was lost, not used: it gets to run (and fail) once more.
    job.start(worker_id="w2", at=T0 + timedelta(seconds=41))
    assert job.attempts == 2
    job.fail(
        error_type="RuntimeError",
        message="boom",
        traceback="",
        output="",
        duration_ms=1,
        at=T0 + timedelta(seconds=42),
        random_unit=0.5,
    )
    assert job.status is JobStatus.FAILED


def test_a_job_that_keeps_losing_its_worker_is_dead_lettered():
    job = dispatch(max_attempts=10)
    for _ in range(MAX_LOST_ATTEMPTS - 1):
        job.start(worker_id="w", at=T0)
        job.lose_attempt(detail="lost", at=T0)
        assert job.status is JobStatus.WAITING
    job.start(worker_id="w", at=T0)
    job.collect_events()
    job.lose_attempt(detail="lost", at=T0)
    assert job.status is JobStatus.FAILED
    assert names(job) == ["AttemptFailed", "DeadLettered"]


def test_a_lost_attempt_of_a_job_asked_to_cancel_ends_it_cancelled():
    job = dispatch()
    job.start(worker_id="w", at=T0)
    job.cancel(by="op", reason="stop", at=T0)
    job.lose_attempt(detail="lost", at=T0)
    assert job.status is JobStatus.CANCELLED
    with pytest.raises(InvalidTransitionError):
        job.lose_attempt(detail="again", at=T0)
