"""Fakes for unit tests: a clock you move by hand and a broker that keeps messages in a list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.event_log import ChronicleEvents


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class FakeQueue:
    sent: list[tuple[UUID, str, float]] = field(default_factory=list)
    #: What `ready_messages` answers per queue (None: the broker cannot tell).
    ready: dict[str, int | None] = field(default_factory=dict)

    def enqueue(self, job_id: UUID, queue: str, *, delay_seconds: float = 0.0) -> None:
        self.sent.append((job_id, queue, delay_seconds))

    def enqueue_many(self, messages: Sequence[tuple[UUID, str, float]]) -> None:
        for job_id, queue, delay in messages:
            self.enqueue(job_id, queue, delay_seconds=delay)

    def check(self) -> None:
        return None

    def ready_messages(self, queue: str) -> int | None:
        return self.ready.get(queue, 0)

    def take(self) -> list[tuple[UUID, str, float]]:
        sent, self.sent = self.sent, []
        return sent


class NoTimeLimit:
    class _Nothing:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    def limit(self, seconds: float | None) -> NoTimeLimit._Nothing:
        return NoTimeLimit._Nothing()


def memory_events() -> ChronicleEvents:
    """Chronicle's event store on eventsourcing's in-memory storage."""
    return ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def demo_registry() -> CommandRegistry:
    """A command registry with the built-in demo commands only."""
    registry = CommandRegistry()
    register_builtins(registry)
    return registry
