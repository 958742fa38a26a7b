"""The job timeline read model: every event of a job, in order, readable by an operator."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent, topic
from application.views.jobs import JOB_EVENTS
from domain.job import Job

# Fields every event has or that the row stores in its own columns.
_SKIPPED_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic", "at"}


def event_name(event_class: type) -> str:
    """`RetryScheduled` → `retry_scheduled`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_class.__name__).lower()


def _actor(event: Any) -> str | None:
    if isinstance(event, Job.Dispatched):
        return event.requested_by
    if isinstance(event, Job.Started):
        return event.worker_id
    if isinstance(event, Job.CommentAdded):
        return event.author
    by = getattr(event, "by", None)
    return str(by) if by is not None else None


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a job's life."""

    job_id: UUID
    position: int
    version: int
    event: str
    at: datetime
    actor: str | None
    details: dict[str, Any]


class TimelineWriter(Protocol):
    def insert_entries(self, entries: Sequence[TimelineEntry]) -> None: ...


class JobTimelineProjection:
    """Appends one timeline entry per job event."""

    name = "job_timeline"
    topics = tuple(topic(cls) for cls in JOB_EVENTS)

    def process(self, events: Sequence[LoggedEvent], writer: TimelineWriter) -> None:
        entries = []
        for logged in events:
            event = logged.event
            details = {
                key: value for key, value in event.__dict__.items() if key not in _SKIPPED_FIELDS
            }
            entries.append(
                TimelineEntry(
                    job_id=event.originator_id,
                    position=logged.position,
                    version=event.originator_version,
                    event=event_name(type(event)),
                    at=event.at,
                    actor=_actor(event),
                    details=details,
                )
            )
        writer.insert_entries(entries)


class TimelineQueries(Protocol):
    def timeline(self, job_id: UUID) -> list[TimelineEntry]: ...
