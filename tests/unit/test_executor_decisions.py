"""The job executor's decisions on in-memory storage with a fake clock: start, succeed or
fail; retry with back-off or dead-letter; time limits; cancellation while running; messages
deferred (early, paused queue) or skipped (unknown job, not waiting, a lost race); and the
outcome saved after a conflict. Outages are in test_execution_outages.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.commands import CommandContext, CommandRegistry
from application.execution import PAUSED_RECHECK_SECONDS, JobExecutor, Outcome
from application.jobs import DispatchRequest, JobService
from application.ports import JobTimedOutError
from application.queue_control import PauseWatcher, QueueControlService
from application.views.queue_pauses import QueuePause
from domain.job import Job, JobStatus
from tests.unit.fakes import (
    FakeClock,
    FakePauses,
    FakeQueue,
    MemoryEventLog,
    demo_registry,
    memory_events,
)


class FakeTimeLimiter:
    """TimeLimiter that records each limit; with `expire`, a limited command is interrupted
    at once, as the real limiter interrupts one that runs past its limit."""

    def __init__(self) -> None:
        self.limits: list[float | None] = []
        self.expire = False

    def limit(self, seconds: float | None) -> FakeTimeLimit:
        self.limits.append(seconds)
        return FakeTimeLimit(expired=self.expire and seconds is not None)


class FakeTimeLimit:
    def __init__(self, *, expired: bool) -> None:
        self.expired = expired

    def __enter__(self) -> None:
        if self.expired:
            raise JobTimedOutError

    def __exit__(self, *exc: object) -> None:
        return None


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        self.clock = FakeClock()
        self.registry = demo_registry()
        #: What a running `test:operator` command does meanwhile (an operator's action).
        self.meanwhile: Callable[[CommandContext], Any] = lambda ctx: None
        self.registry.register("test:operator", self._operator)
        self.jobs = JobService(self.events, self.registry, self.clock)
        self.queue = FakeQueue()
        self.limiter = FakeTimeLimiter()
        self.pauses = FakePauses()
        self.random_unit = 0.5  # no jitter
        self.executor = self.make_executor()

    def _operator(self, ctx: CommandContext) -> dict[str, str]:
        """A command during which an operator acts (`meanwhile`)."""
        self.meanwhile(ctx)
        ctx.write("done")
        return {"done": "yes"}

    def make_executor(self, registry: CommandRegistry | None = None, **options: Any) -> JobExecutor:
        return JobExecutor(
            self.events,
            registry or self.registry,
            self.clock,
            self.queue,
            self.limiter,
            worker_id="w-1",
            random_unit=lambda: self.random_unit,
            **{"pauses": self.pauses, **options},
        )

    def dispatch(self, command_line: str, **fields: Any) -> UUID:
        return self.jobs.dispatch(DispatchRequest(command_line=command_line, **fields))

    def job(self, job_id: UUID) -> Job:
        job: Job = self.events.repository.get(job_id)
        return job

    def history(self, job_id: UUID) -> list[str]:
        return [type(e).__name__ for e in self.events.events.get(job_id)]


@pytest.fixture
def world() -> World:
    return World()


# -- started, succeeded, failed -------------------------------------------------------------------


def test_a_due_waiting_job_is_started_run_and_its_success_recorded(world: World):
    job_id = world.dispatch("demo:echo hello --upper")
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    assert world.history(job_id) == ["Dispatched", "Started", "Succeeded"]
    started, succeeded = list(world.events.events.get(job_id))[1:]
    assert (started.attempt, started.worker_id, started.at) == (1, "w-1", world.clock.now())
    assert (succeeded.result, succeeded.output, succeeded.at) == (
        {"echoed": "hello"},
        "HELLO\n",
        world.clock.now(),
    )
    assert succeeded.duration_ms >= 0
    assert world.job(job_id).status is JobStatus.SUCCEEDED
    assert world.executor.running() == frozenset()


def test_a_result_that_is_not_json_is_stored_as_its_repr(world: World):
    def returns_a_class(ctx: CommandContext) -> object:
        return object

    world.registry.register("test:object", returns_a_class)
    job_id = world.dispatch("test:object")
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    succeeded = list(world.events.events.get(job_id))[-1]
    assert succeeded.result == repr(object)


def test_a_failed_attempt_is_recorded_and_retried_with_exponential_backoff(world: World):
    job_id = world.dispatch("demo:fail --times=2", max_attempts=3, backoff_seconds=10)
    assert world.executor.process(job_id) is Outcome.FAILED
    assert world.history(job_id) == ["Dispatched", "Started", "AttemptFailed", "RetryScheduled"]
    failed, retry = list(world.events.events.get(job_id))[2:]
    assert (failed.attempt, failed.error_type, failed.message, failed.timed_out) == (
        1,
        "RuntimeError",
        "demo failure",
        False,
    )
    assert "Traceback" in failed.traceback
    assert "RuntimeError: demo failure" in failed.traceback
    assert (retry.next_attempt, retry.delay_seconds) == (2, 10.0)
    assert retry.retry_at == world.clock.now() + timedelta(seconds=10)
    assert world.job(job_id).status is JobStatus.WAITING

    # The second failure waits twice as long; the jitter spreads it by up to 25 %.
    world.clock.current = retry.retry_at
    world.random_unit = 1.0
    assert world.executor.process(job_id) is Outcome.FAILED
    retry = list(world.events.events.get(job_id))[-1]
    assert (retry.next_attempt, retry.delay_seconds) == (3, 25.0)

    world.clock.current = retry.retry_at
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    job = world.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 3)


def test_the_last_attempt_failing_dead_letters_the_job(world: World):
    job_id = world.dispatch("demo:fail --times=5", max_attempts=2, backoff_seconds=0)
    assert world.executor.process(job_id) is Outcome.FAILED
    assert world.executor.process(job_id) is Outcome.FAILED
    assert world.history(job_id)[-3:] == ["Started", "AttemptFailed", "DeadLettered"]
    dead = list(world.events.events.get(job_id))[-1]
    assert (dead.attempts, dead.reason) == (2, "RuntimeError: demo failure")
    job = world.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2)
    # A message that comes again for it is skipped: it does not run a third time.
    assert world.executor.process(job_id) is Outcome.SKIPPED
    assert world.history(job_id).count("Started") == 2


def test_a_command_past_its_time_limit_fails_the_attempt_as_timed_out(world: World):
    job_id = world.dispatch("demo:sleep --seconds=20", timeout_seconds=0.3, max_attempts=1)
    world.limiter.expire = True
    assert world.executor.process(job_id) is Outcome.FAILED
    assert world.limiter.limits == [0.3]
    failed = next(e for e in world.events.events.get(job_id) if isinstance(e, Job.AttemptFailed))
    assert (failed.error_type, failed.message, failed.timed_out) == (
        "JobTimedOutError",
        "time limit of 0.3 s exceeded",
        True,
    )
    assert world.job(job_id).status is JobStatus.FAILED


def test_a_job_without_a_time_limit_runs_unlimited(world: World):
    job_id = world.dispatch("demo:noop")
    world.limiter.expire = True
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    assert world.limiter.limits == [None]


def test_a_command_this_worker_does_not_know_fails_the_attempt(world: World):
    """Dispatched where `demo:noop` is registered, run by a worker that lacks it (its
    command modules were not loaded): a failed attempt, retried, not a lost message."""
    job_id = world.dispatch("demo:noop")
    executor = world.make_executor(registry=CommandRegistry())
    assert executor.process(job_id) is Outcome.FAILED
    failed = next(e for e in world.events.events.get(job_id) if isinstance(e, Job.AttemptFailed))
    assert failed.error_type == "CommandLineError"
    assert "unknown command 'demo:noop'" in failed.message
    assert world.job(job_id).status is JobStatus.WAITING


# -- messages skipped or deferred -----------------------------------------------------------------


def test_a_message_for_an_unknown_job_is_skipped(world: World):
    assert world.executor.process(uuid4()) is Outcome.SKIPPED
    assert world.queue.sent == []


def test_a_redelivered_message_runs_the_job_once(world: World):
    job_id = world.dispatch("demo:echo once")
    first = world.executor.process(job_id)
    second = world.executor.process(job_id)
    assert (first.value, second.value) == ("succeeded", "skipped")
    assert world.history(job_id).count("Started") == 1


def test_cancelled_job_never_runs_even_if_its_message_arrives(world: World):
    job_id = world.dispatch("demo:echo late")
    world.jobs.cancel(job_id, tenant="default", by="op", reason="not needed")
    assert world.executor.process(job_id).value == "skipped"
    assert world.executor.process(job_id).value == "skipped"  # and a later redelivery too
    job = world.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.CANCELLED, 0)
    assert world.history(job_id) == ["Dispatched", "Cancelled"]
    assert list(world.events.events.get(job_id))[-1].by == "op"


def test_a_message_that_arrives_before_the_job_is_due_is_deferred_until_then(world: World):
    job_id = world.dispatch("demo:noop", delay_seconds=30)
    world.clock.advance(10)
    assert world.executor.process(job_id) is Outcome.DEFERRED
    assert world.queue.take() == [(job_id, "default", 20.0)]
    assert world.history(job_id) == ["Dispatched"]
    # Within the tolerance for clock skew, it runs.
    world.clock.advance(19.96)
    assert world.executor.process(job_id) is Outcome.SUCCEEDED


def test_of_two_workers_starting_one_job_one_runs_it_and_the_other_skips(world: World):
    job_id = world.dispatch("demo:noop")
    save = world.events.save

    def other_worker_first(*events: Any) -> Any:
        if any(isinstance(e, Job.Started) for e in events):
            job = world.job(job_id)
            job.start(worker_id="w-2", at=world.clock.now())
            save(job)
        return save(*events)

    executor = world.make_executor(save=other_worker_first)
    assert executor.process(job_id) is Outcome.SKIPPED
    assert executor.running() == frozenset()
    job = world.job(job_id)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "w-2", 1)


# -- paused queues --------------------------------------------------------------------------------


def test_a_job_of_a_paused_queue_is_deferred_and_stays_waiting(world: World):
    job_id = world.dispatch("demo:noop", queue="low")
    world.pauses.paused.add(("default", "low"))
    assert world.executor.process(job_id) is Outcome.DEFERRED
    assert world.queue.take() == [(job_id, "low", PAUSED_RECHECK_SECONDS)]
    assert world.history(job_id) == ["Dispatched"]
    assert world.executor.running() == frozenset()
    # The message comes back after the resume: the job runs.
    world.pauses.paused.clear()
    assert world.executor.process(job_id) is Outcome.SUCCEEDED


def test_the_pause_check_and_the_start_are_made_inside_the_start_gate(world: World):
    """A pause the worker reports acting on cannot slip between the check and `Started`."""
    job_id = world.dispatch("demo:noop")
    holding_at_start: list[bool] = []
    save = world.events.save

    def observed(*events: Any) -> Any:
        if any(isinstance(e, Job.Started) for e in events):
            holding_at_start.append(world.pauses.holding)
        return save(*events)

    executor = world.make_executor(save=observed)
    assert executor.process(job_id) is Outcome.SUCCEEDED
    assert world.pauses.checks == [("default", "default", True)]
    assert holding_at_start == [True]


class NoPausesProjected:
    """QueuePausesQueries of a read model the projector has not filled yet."""

    def pauses(self, tenant: str | None = None) -> list[QueuePause]:
        return []

    def waiting(self) -> set[tuple[str, str]]:
        return {("default", "default"), ("acme", "default")}

    def position(self) -> int:
        return 0


def test_a_pause_in_the_log_defers_only_its_tenants_jobs_once_the_watcher_acts_on_it(
    world: World,
):
    """The watcher follows the log itself: no projector is needed for a pause to hold."""
    log = MemoryEventLog(world.events)
    watcher = PauseWatcher(
        NoPausesProjected(), ("high", "default", "low"), events=world.events, log=log
    )
    watcher.refresh()
    control = QueueControlService(world.events, world.clock)
    control.pause(tenant="acme", queue="default", by="alice")
    assert watcher.position < log.head()
    watcher.refresh()
    assert watcher.position == log.head()
    executor = world.make_executor(pauses=watcher)
    theirs = world.dispatch("demo:noop", tenant="acme")
    ours = world.dispatch("demo:noop")
    assert executor.process(theirs) is Outcome.DEFERRED
    assert executor.process(ours) is Outcome.SUCCEEDED
    # Another tenant waits in `default`: the worker keeps taking its messages.
    assert watcher.skipped() == frozenset()
    control.resume(tenant="acme", queue="default", by="alice")
    watcher.refresh()
    assert executor.process(theirs) is Outcome.SUCCEEDED


# -- cancellation while running, and the outcome saved after a conflict ----------------------------


def test_a_job_cancelled_while_it_runs_ends_cancelled_when_the_command_stops(world: World):
    def operator_cancels_then_command_checks(ctx: CommandContext) -> None:
        world.jobs.cancel(ctx.job_id, tenant="default", by="op", reason="wrong input")
        ctx.raise_if_cancelled()

    world.meanwhile = operator_cancels_then_command_checks
    job_id = world.dispatch("test:operator")
    assert world.executor.process(job_id) is Outcome.CANCELLED
    assert world.history(job_id) == [
        "Dispatched",
        "Started",
        "CancellationRequested",
        "Cancelled",
    ]
    cancelled = list(world.events.events.get(job_id))[-1]
    assert (cancelled.by, cancelled.reason) == ("op", "wrong input")
    assert world.executor.running() == frozenset()


def test_a_job_asked_to_cancel_ends_cancelled_even_if_its_command_finishes(world: World):
    world.meanwhile = lambda ctx: world.jobs.cancel(ctx.job_id, tenant="default", by="op")
    job_id = world.dispatch("test:operator")
    assert world.executor.process(job_id) is Outcome.CANCELLED
    assert "Succeeded" not in world.history(job_id)
    assert world.job(job_id).status is JobStatus.CANCELLED


def test_a_job_asked_to_cancel_whose_command_fails_ends_cancelled_not_retried(world: World):
    def cancel_then_fail(ctx: CommandContext) -> None:
        world.jobs.cancel(ctx.job_id, tenant="default", by="op")
        raise RuntimeError("broken")

    world.meanwhile = cancel_then_fail
    job_id = world.dispatch("test:operator", max_attempts=3)
    assert world.executor.process(job_id) is Outcome.CANCELLED
    # However the command ended, the request decides: no failed attempt, no retry.
    assert world.history(job_id) == [
        "Dispatched",
        "Started",
        "CancellationRequested",
        "Cancelled",
    ]


def test_the_outcome_is_decided_again_and_saved_after_a_conflicting_save(world: World):
    """An operator's comment saved while the job runs makes the outcome's save conflict:
    the executor reloads the job and saves its outcome after the comment."""
    world.meanwhile = lambda ctx: world.jobs.comment(
        ctx.job_id, tenant="default", author="op", text="looking at it"
    )
    job_id = world.dispatch("test:operator")
    assert world.executor.process(job_id) is Outcome.SUCCEEDED
    assert world.history(job_id) == ["Dispatched", "Started", "CommentAdded", "Succeeded"]
    succeeded = list(world.events.events.get(job_id))[-1]
    assert (succeeded.result, succeeded.output) == ({"done": "yes"}, "done\n")
