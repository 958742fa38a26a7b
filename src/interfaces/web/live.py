"""The live stream: job events as they are committed, for the dashboard's widgets and pages.

One `LiveFeed` per API process follows the event log (one reader, whatever the number of open
pages), turns each job event into a small `LiveEvent` and keeps the last `KEEP` of them. Each
open page holds one Server-Sent Events connection (`GET /api/events`), which sends the events
of its tenant, with the log position as the event id: a browser that reconnects sends
`Last-Event-ID` and gets what it missed, as long as the feed still keeps it. At most
`MAX_CONNECTIONS` streams are open per process; one more is a 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC
from typing import Annotated, Any
from uuid import UUID

import structlog
from litestar import Controller, Request, get
from litestar.exceptions import HTTPException
from litestar.params import HeaderParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from application.event_log import EventLog, LoggedEvent, topic
from application.views.jobs import JobOwner, JobsQueries
from domain.job import Job

log = structlog.get_logger("chronicle.live")

#: Events the feed keeps for reconnecting pages.
KEEP = 5_000
MAX_CONNECTIONS = 100
#: A comment line every this many seconds keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
#: A stream ends after this long; the browser reconnects at once with `Last-Event-ID` and
#: misses nothing (connections do not live for ever behind proxies and balancers).
STREAM_SECONDS = 300.0
#: How long the follower waits for new events before it looks again.
POLL_SECONDS = 0.5
_OWNERS_KEPT = 100_000

#: The job events the stream carries, by their log topic, with the name a page sees.
_EVENTS = {
    topic(Job.Dispatched): "dispatched",
    topic(Job.Started): "started",
    topic(Job.Succeeded): "succeeded",
    topic(Job.AttemptFailed): "attempt_failed",
    topic(Job.AttemptNotCounted): "attempt_not_counted",
    topic(Job.RetryScheduled): "retry_scheduled",
    topic(Job.DeadLettered): "failed",
    topic(Job.CancellationRequested): "cancellation_requested",
    topic(Job.Cancelled): "cancelled",
    topic(Job.Retried): "retried",
    topic(Job.Forgotten): "forgotten",
    topic(Job.CommentAdded): "commented",
}


@dataclass(frozen=True)
class LiveEvent:
    """One job event as a page shows it."""

    position: int
    event: str
    job_id: str
    tenant: str
    queue: str
    command: str
    at: str

    def json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "tenant"})


class LiveFeed:
    """Follows the event log in a thread and wakes the open streams of this process."""

    def __init__(
        self, log_: EventLog, jobs: JobsQueries, *, stream_seconds: float = STREAM_SECONDS
    ) -> None:
        self._log = log_
        self._jobs = jobs
        self._kept: deque[LiveEvent] = deque(maxlen=KEEP)
        self._owners: OrderedDict[UUID, JobOwner] = OrderedDict()
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._position = 0
        self.connections = 0
        self.stream_seconds = stream_seconds

    @property
    def position(self) -> int:
        return self._position

    def start(self) -> None:
        """Follows from the log's head (older events are the read models' business)."""
        if self._thread is not None:
            return
        self._position = self._log.head()
        self._thread = threading.Thread(target=self._follow, name="live-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _follow(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self._log.wait(self._position, timeout=POLL_SECONDS)
                batch = self._log.read(self._position, limit=1000, topics=list(_EVENTS))
                head = batch[-1].position if batch else self._log.head()
            except Exception as exc:
                if not failing:
                    log.warning("live feed cannot read the event log", error=str(exc)[:300])
                failing = True
                self._stop.wait(POLL_SECONDS)
                continue
            failing = False
            if batch:
                self._publish(self._events(batch))
            # Positions of other events are skipped too, so the stream never re-reads them.
            self._position = max(self._position, head)

    def _events(self, batch: list[LoggedEvent]) -> list[LiveEvent]:
        for logged in batch:
            event = logged.event
            if isinstance(event, Job.Dispatched):
                self._remember(
                    event.originator_id, JobOwner(event.tenant, event.queue, event.command)
                )
        unknown = {
            logged.event.originator_id
            for logged in batch
            if logged.event.originator_id not in self._owners
        }
        if unknown:
            for job_id, owner in self._jobs.owners(unknown).items():
                self._remember(job_id, owner)
        out = []
        for logged in batch:
            event = logged.event
            known = self._owners.get(event.originator_id)
            if known is None:  # a job the read model does not hold yet: its Dispatched came first
                continue
            at = getattr(event, "at", None) or event.timestamp
            out.append(
                LiveEvent(
                    position=logged.position,
                    event=_EVENTS[topic(type(event))],
                    job_id=str(event.originator_id),
                    tenant=known.tenant,
                    queue=known.queue,
                    command=known.command,
                    at=at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                )
            )
        return out

    def _remember(self, job_id: UUID, owner: JobOwner) -> None:
        self._owners[job_id] = owner
        self._owners.move_to_end(job_id)
        while len(self._owners) > _OWNERS_KEPT:
            self._owners.popitem(last=False)

    def _publish(self, events: list[LiveEvent]) -> None:
        with self._lock:
            self._kept.extend(events)
            waiters = list(self._waiters)
        for loop, ready in waiters:
            loop.call_soon_threadsafe(ready.set)

    def since(self, position: int, tenant: str) -> list[LiveEvent]:
        """The kept events of `tenant` after `position`, oldest first."""
        with self._lock:
            return [e for e in self._kept if e.position > position and e.tenant == tenant]

    async def wait(self, seconds: float) -> None:
        """Until the feed publishes something (or `seconds` pass)."""
        ready = asyncio.Event()
        waiter = (asyncio.get_running_loop(), ready)
        with self._lock:
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(ready.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)


#: A new stream (no `Last-Event-ID`) starts with the tenant's last events this process kept.
BACKLOG = 20


def _resume_from(last_event_id: str | None, feed: LiveFeed, tenant: str) -> int:
    if last_event_id is None:
        recent = feed.since(0, tenant)[-BACKLOG:]
        return recent[0].position - 1 if recent else feed.position
    try:
        return max(0, int(last_event_id.strip()))
    except ValueError:
        return feed.position


class LiveController(Controller):
    """`GET /api/events`: the tenant's job events, live, as Server-Sent Events."""

    path = "/api/events"
    tags = ["jobs"]

    @get(
        operation_id="streamJobEvents",
        summary="Live job events (Server-Sent Events)",
        description=(
            "A `text/event-stream` of the tenant's job events as they are committed: each "
            "message is `event: job` with JSON data (`position`, `event`, `job_id`, `queue`, "
            "`command`, `at`) and the log position as its id; a reconnecting client sends "
            f"`Last-Event-ID` and gets what it missed, a new one the last {BACKLOG} events of its "
            "tenant (the last 5,000 events of the process are "
            "kept). A stream ends after `CHRONICLE_LIVE_STREAM_SECONDS` (300 s; browsers "
            f"reconnect by themselves). At most {MAX_CONNECTIONS} streams per API process "
            "(503 beyond)."
        ),
        media_type="text/event-stream",
    )
    async def stream(
        self,
        request: Request[Any, Any, Any],
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID",
                required=False,
                description="The id of the last event received, to resume after it.",
                schema_extra={"max_length": 20},
            ),
        ] = None,
    ) -> ServerSentEvent:
        feed: LiveFeed = request.app.state.live
        if feed.connections >= MAX_CONNECTIONS:
            raise HTTPException(
                status_code=503,
                detail=f"too many live streams on this process (at most {MAX_CONNECTIONS})",
                headers={"Retry-After": "5"},
            )
        feed.start()
        tenant: str = request.state.tenant
        position = _resume_from(last_event_id, feed, tenant)

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            nonlocal position
            feed.connections += 1
            loop = asyncio.get_running_loop()
            ends = loop.time() + feed.stream_seconds
            try:
                yield ServerSentEventMessage(data=None, comment="connected", retry=2000)
                while loop.time() < ends:
                    sent = False
                    for item in feed.since(position, tenant):
                        position = item.position
                        sent = True
                        yield ServerSentEventMessage(
                            data=item.json(), event="job", id=str(item.position)
                        )
                    if not sent:
                        await feed.wait(min(KEEPALIVE_SECONDS, max(0.0, ends - loop.time())))
                        if not feed.since(position, tenant):
                            yield ServerSentEventMessage(data=None, comment="keepalive")
            finally:
                feed.connections -= 1

        return ServerSentEvent(events(), headers={"Cache-Control": "no-store"})
