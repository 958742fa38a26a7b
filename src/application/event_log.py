"""The event store application and the log that projections and the outbox relay follow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic


class ChronicleEvents(Application[UUID]):
    """Every aggregate of Chronicle is saved here; its notification log is the one totally
    ordered log that read models and reactions follow."""

    # Pinned: the name prefixes the tables and the settings, it must never change.
    name = "chronicle"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._save_listeners: list[Callable[[], None]] = []

    def on_save(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every save in this process (wakes in-process followers)."""
        self._save_listeners.append(listener)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        recordings = super().save(*objs, **kwargs)
        for listener in self._save_listeners:
            listener()
        return recordings


def topic(event_class: type) -> str:
    """The stored topic of an event class (`module:Class.Event`)."""
    return get_topic(event_class)


@dataclass(frozen=True)
class LoggedEvent:
    """A domain event with its position in the application log."""

    position: int
    event: Any


class EventLog(Protocol):
    """Read access to the application log, with a way to wait for new events."""

    def head(self) -> int:
        """Position of the last recorded event (0 when empty)."""
        ...

    def read(
        self, after: int, *, limit: int, upto: int | None = None, topics: Sequence[str] = ()
    ) -> list[LoggedEvent]:
        """Events with `after < position <= upto`, oldest first, at most `limit`."""
        ...

    def wait(self, after: int, timeout: float) -> None:
        """Return once the log may hold events past `after`, or after `timeout` seconds."""
        ...
