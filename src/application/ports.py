"""Ports: what the application needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID


class StoreUnavailableError(Exception):
    """The database behind a read model cannot be reached right now (refused or lost
    connection, no connection free in the pool). Retrying later may succeed."""


class HandBackError(Exception):
    """A worker could not process a message now (the database is unreachable): the message
    must go back to the broker, due again after `delay_seconds`, and never be dropped."""

    def __init__(self, message: str, *, delay_seconds: float) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds


class Clock(Protocol):
    """Tells the time (timezone-aware UTC); tests pass a fake one."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class JobQueue(Protocol):
    """The message broker seen from the application: it carries job ids to workers."""

    def enqueue(self, job_id: UUID, queue: str, *, delay_seconds: float = 0.0) -> None:
        """Send one message for `job_id` to `queue`, delivered no sooner than the delay."""
        ...

    def enqueue_many(self, messages: Sequence[tuple[UUID, str, float]]) -> None:
        """Send (job id, queue, delay in seconds) messages; return once all are accepted."""
        ...

    def check(self) -> None:
        """Raise if the broker cannot be reached."""
        ...

    def ready_messages(self, queue: str) -> int | None:
        """Messages waiting in `queue` for a worker to take them (not delayed, not taken);
        None when the broker cannot tell."""
        ...


@dataclass(frozen=True)
class WorkerBeat:
    """A worker process's last sign of life: the jobs it was running then, and the log
    position up to which it acts on queue pauses."""

    worker_id: str
    last_seen: datetime
    running: frozenset[UUID]
    pauses_seen: int = 0


class WorkerHeartbeats(Protocol):
    """Liveness of worker processes: each beats every few seconds while it runs, naming the
    jobs it is running, so a job whose attempt no live worker runs can be told apart."""

    def beat(
        self,
        worker_id: str,
        at: datetime,
        running: frozenset[UUID] = frozenset(),
        pauses_seen: int = 0,
    ) -> None: ...

    def latest(self, worker_id: str) -> WorkerBeat | None: ...

    def live(self, since: datetime) -> list[WorkerBeat]:
        """The workers that beat at or after `since`."""
        ...

    def forget(self, worker_id: str) -> None:
        """Remove the beat of a worker process that stopped."""
        ...


class TimeLimiter(Protocol):
    """Interrupts the calling thread with `JobTimedOutError` once `seconds` have passed."""

    def limit(self, seconds: float | None) -> TimeLimit: ...


class TimeLimit(Protocol):
    def __enter__(self) -> None: ...
    def __exit__(self, *exc: object) -> None: ...


class JobTimedOutError(BaseException):
    """Raised inside a running command when its time limit is reached (a BaseException, so
    a command's own `except Exception` cannot swallow it)."""


class CronCalculator(Protocol):
    """Cron arithmetic on local wall-clock time; the DST rules are applied on top of it."""

    def validate(self, expression: str) -> None:
        """Raise `FrequencyError` (domain.frequency) naming the problem if it is unusable."""
        ...

    def next_local(self, expression: str, after: datetime) -> datetime:
        """The first naive wall-clock time matching `expression` strictly after naive `after`."""
        ...
