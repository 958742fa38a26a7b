"""The outbox relay: every committed Dispatched / RetryScheduled / Retried event becomes a
broker message, even if the process that saved it died before sending anything.

The log is the outbox. The relay follows it like a projection whose "rows" are messages: it
sends the messages of a batch, then commits its tracking position. A crash between the two
sends those messages again on restart, which is harmless because workers run a job only
while it is waiting (a second message for a started or finished job is skipped).
"""

from __future__ import annotations

from collections.abc import Sequence

from application.event_log import LoggedEvent, topic
from application.ports import Clock, JobQueue
from domain.job import Job


class OutboxRelay:
    """Sends one broker message per job that became ready to run, at the time it is due."""

    name = "outbox"
    topics = (topic(Job.Dispatched), topic(Job.RetryScheduled), topic(Job.Retried))

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def process(self, events: Sequence[LoggedEvent], writer: JobQueue) -> None:
        now = self._clock.now()
        messages = []
        for logged in events:
            event = logged.event
            if isinstance(event, Job.Dispatched):
                due = max(event.at, event.not_before) if event.not_before else event.at
            elif isinstance(event, Job.RetryScheduled):
                due = event.retry_at
            else:
                due = event.at
            delay = max(0.0, (due - now).total_seconds())
            messages.append((event.originator_id, event.queue, delay))
        writer.enqueue_many(messages)
