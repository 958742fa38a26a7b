"""Ends the import or export whose system job stopped without it: dead-lettered or cancelled.

No import or export stays "processing" forever when its job gives up or an operator cancels
it. The watcher follows the log like a projection (tracking only); these events are rare, so
loading the job to see its command costs nothing worth a table. Reading an event again is
harmless: the handlers leave an import or export that already ended alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents, LoggedEvent, topic
from domain.job import Job

#: A system command's reaction to its job stopping: (the job's arguments, why it stopped).
StoppedHandler = Callable[[Mapping[str, Any], str], object]


def stopped_reason(job: Job, event: object) -> str:
    """Why a job stopped, for the failure of what it was running."""
    if isinstance(event, Job.Cancelled):
        why = f": {event.reason}" if event.reason else ""
        return f"its job {job.id} was cancelled by {event.by}{why}"
    if isinstance(event, Job.DeadLettered):
        return f"its job {job.id} gave up after {event.attempts} attempts: {event.reason}"
    return f"its job {job.id} stopped"  # pragma: no cover - only the two topics are followed


class StoppedJobWatcher:
    """Calls the handler of a stopped job's command, for the commands it is given."""

    name = "system_jobs"
    topics = (topic(Job.DeadLettered), topic(Job.Cancelled))

    def __init__(self, events: ChronicleEvents, handlers: Mapping[str, StoppedHandler]) -> None:
        self._events = events
        self._handlers = dict(handlers)

    def process(self, events: Sequence[LoggedEvent], writer: object) -> None:  # noqa: ARG002 - tracking only
        for logged in events:
            try:
                job: object = self._events.repository.get(logged.event.originator_id)
            except AggregateNotFoundError:  # pragma: no cover - the event is the job's own
                continue
            if not isinstance(job, Job):  # pragma: no cover - topics are Job events
                continue
            handler = self._handlers.get(job.command)
            if handler is not None:
                handler(job.arguments, stopped_reason(job, logged.event))
