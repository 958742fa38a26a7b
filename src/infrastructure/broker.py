"""Dramatiq wiring for Chronicle: brokers from URLs, the job queue, and strict-priority workers.

Public API
----------
- `build_broker(url)` -> a Dramatiq broker (RabbitMQ, Redis or in-process stub) whose only
  middleware is `CurrentMessage` (to hand a message back): Chronicle does its own retries, time
  limits and age checks.
- `ChronicleBroker(broker, prefix=...)` / `ChronicleBroker.from_url(url, prefix=...)` holds the
  broker and the queue-name prefix, declares the three queues (`high`, `default`, `low`) and the
  one actor `chronicle_run_job`. All else takes a `ChronicleBroker`: the prefix is given once.
- `DramatiqJobQueue(setup)` implements the application's `JobQueue` port.
- `start_worker(setup, queues=[...], threads=N, handler=f, paused=g)` -> `RunningWorker`
  (`.stop(timeout)`); `run_worker_forever(...)` blocks until SIGINT/SIGTERM, then stops the same
  way. `paused()`, if given, names the logical queues not to take messages from right now.

Strict priority
---------------
Dramatiq runs one consumer per queue, each prefetching 2 x threads messages, so a worker holds low
messages while high ones wait in the broker (Dramatiq issue #519). Here a worker has exactly one
consumer, registered with Dramatiq's `Worker` under a virtual queue name, serving all its queues:

- It takes a message only while the worker has a free slot (taken-but-unfinished < threads +
  prefetch; prefetch defaults to 0: a message is taken only when a thread is free), and then takes
  exactly one, asking the queues in priority order. A lower queue is asked only after every higher
  queue answered "empty", so a waiting higher-priority job always starts before any lower-priority
  job the worker has not already taken; at most `prefetch` taken lower jobs can start first.
- RabbitMQ: `basic_get` on a connection of its own (pull, one message, no prefetch). Redis: the
  broker's own `fetch` script with a count of 1. Stub: `Queue.get_nowait`.
- Paused queues (`paused()`, asked before each take) are not asked at all: their messages stay
  in the broker, and a lower queue is served as if they were empty. Messages already taken run.
- When nothing is waiting it sleeps with back-off from 1 ms to 50 ms (the idle latency bound);
  a finished job wakes it at once. Delay queues (`<queue>.DQ`) are consumed next to the real queues
  (RabbitMQ: a push consumer with Dramatiq's delay prefetch; Redis/stub: polled every <= 50 ms) and
  Dramatiq's `ConsumerThread` moves due messages to the real queue, as usual.
- Acks stay on the consumer thread for RabbitMQ (pika is not thread-safe): worker threads hand them
  over through a deque and wake the consumer, which sends them on the channel that delivered the
  message. Redis and stub settle from the calling thread, as Dramatiq does.

Limits, stated honestly
-----------------------
- Priority is per worker. A worker that consumes only `low` takes low jobs whatever waits in `high`.
- An idle worker polls: at the 50 ms cap, 20 x (number of queues) pulls a second (on Redis plus
  20 x the delay queues). A pull is one round trip per queue asked: a `low` job costs three, which
  bounds one worker to about 2,400 no-op jobs/s on RabbitMQ here (Dramatiq: about 3,000).
- Redis has no consumer leases: a crashed worker's taken jobs come back only after Dramatiq's 60 s
  heartbeat timeout, appended at the tail of their queue (and a stopped worker's untaken ones too);
  order inside one queue is then not FIFO. Priority across queues is unaffected.
- Delays use the enqueuer's and the worker's wall clocks (Dramatiq's `eta`): keep them in sync.
"""

from __future__ import annotations

import math
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from queue import Empty
from types import FrameType
from typing import Any, Protocol, cast
from urllib.parse import urlsplit
from uuid import UUID

import dramatiq
import pika
import pika.exceptions
import redis
import structlog
from dramatiq.broker import Broker, Consumer, MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage, Middleware
from dramatiq.worker import ConsumerThread, Worker

from application.ports import HandBackError
from domain.job import QUEUES

__all__ = [
    "ACTOR_NAME",
    "DEFAULT_PREFIX",
    "BrokerUnavailableError",
    "ChronicleBroker",
    "DramatiqJobQueue",
    "JobHandler",
    "RunningWorker",
    "build_broker",
    "run_worker_forever",
    "start_worker",
]

log = structlog.get_logger(__name__)

#: The one actor that runs every Chronicle job.
ACTOR_NAME = "chronicle_run_job"
DEFAULT_PREFIX = "chronicle."

JobHandler = Callable[[str], None]

_SCHEMES = ("amqp", "amqps", "redis", "rediss", "memory")
# Dramatiq's own rule for queue names (dramatiq.actor._queue_name_re).
_QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")
# Idle polling: first sleep, and the cap that bounds how late an idle worker sees a new message.
_POLL_FLOOR_S = 0.001
_POLL_CAP_S = 0.05
# How often delay queues are pulled (Redis, stub) or pumped (RabbitMQ; also answers heartbeats).
_DELAY_POLL_S = 0.05
# Dramatiq's worker_timeout: how long idle worker threads block, i.e. how fast stop() is noticed.
_WORKER_TIMEOUT_MS = 100
# Dramatiq holds up to 1000 x threads delayed messages per delay queue; so do we (AMQP max: 65535).
_DELAY_PREFETCH_PER_THREAD = 1000
_MAX_PREFETCH = 65535


class BrokerUnavailableError(Exception):
    """The message broker cannot be reached."""


def build_broker(url: str, *, namespace: str = "chronicle") -> Broker:
    """A Dramatiq broker for `url` (amqp://, redis://, memory://) with only the `CurrentMessage`
    middleware (to hand a message back)."""
    scheme = urlsplit(url).scheme.lower()
    # None of Dramatiq's other middleware: Retries, TimeLimit and AgeLimit would fight
    # Chronicle's own rules, and the rest (callbacks, pipelines) is unused.
    middleware: list[Middleware] = [CurrentMessage()]
    if scheme in ("amqp", "amqps"):
        # confirm_delivery: an enqueue returns only once RabbitMQ holds the message.
        return RabbitmqBroker(url=url, confirm_delivery=True, middleware=middleware)
    if scheme in ("redis", "rediss"):
        return RedisBroker(url=url, namespace=namespace, middleware=middleware)  # type: ignore[no-untyped-call]
    if scheme == "memory":
        return StubBroker(middleware=middleware)
    accepted = ", ".join(f"{s}://" for s in _SCHEMES)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: use one of {accepted}")


class ChronicleBroker:
    """A Dramatiq broker plus the queue-name prefix; declares Chronicle's queues and actor on it."""

    def __init__(self, broker: Broker, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not _QUEUE_NAME.fullmatch(prefix + QUEUES[0]):
            raise ValueError(f"queue prefix {prefix!r} does not make valid Dramatiq queue names")
        self.broker = broker
        self.prefix = prefix
        self._handler: JobHandler | None = None
        self._handler_lock = threading.Lock()
        # The stub broker refuses messages for undeclared queues; elsewhere this is bookkeeping.
        for queue in QUEUES:
            broker.declare_queue(self.queue_name(queue))
        # One actor for every queue: messages name their real queue, the actor only dispatches.
        dramatiq.Actor(
            self._run,
            broker=broker,
            actor_name=ACTOR_NAME,
            queue_name=self.queue_name("default"),
            priority=0,
            options={},
        )

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX, namespace: str = "chronicle"
    ) -> ChronicleBroker:
        """Build the broker for `url` and wrap it."""
        return cls(build_broker(url, namespace=namespace), prefix=prefix)

    def queue_name(self, queue: str) -> str:
        """The real queue name of a logical queue (`high`, `default`, `low`)."""
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}: use one of {', '.join(QUEUES)}")
        return self.prefix + queue

    def check(self) -> None:
        """Raise `BrokerUnavailableError` unless the broker answers."""
        broker = self.broker
        if isinstance(broker, RabbitmqBroker):
            try:
                # A fresh connection: the broker's cached per-thread one may look alive but be dead.
                connection = pika.BlockingConnection(broker.parameters)
                try:
                    connection.channel()
                finally:
                    connection.close()
            except (pika.exceptions.AMQPError, OSError) as e:
                raise BrokerUnavailableError(f"RabbitMQ is unreachable: {e!r}") from e
        elif isinstance(broker, RedisBroker):
            try:
                broker.client.ping()
            except (redis.RedisError, OSError) as e:
                raise BrokerUnavailableError(f"Redis is unreachable: {e!r}") from e

    def ready_messages(self, queue: str) -> int | None:
        """Messages waiting in a logical queue for a worker (not delayed, not taken)."""
        name = self.queue_name(queue)
        broker = self.broker
        if isinstance(broker, RabbitmqBroker):
            connection = pika.BlockingConnection(broker.parameters)
            try:
                declared = connection.channel().queue_declare(name, passive=True)
            finally:
                connection.close()
            return int(declared.method.message_count)
        if isinstance(broker, RedisBroker):
            return int(broker.client.llen(f"{broker.namespace}:{name}"))
        if isinstance(broker, StubBroker):
            return int(broker.queues[name].qsize())
        return None

    def close(self) -> None:
        """Close the broker's connections."""
        self.broker.close()

    def _attach(self, handler: JobHandler) -> None:
        with self._handler_lock:
            if self._handler is not None:
                raise RuntimeError("a worker is already running on this ChronicleBroker")
            self._handler = handler

    def _detach(self) -> None:
        with self._handler_lock:
            self._handler = None

    def _run(self, job_id: str) -> None:
        handler = self._handler
        if handler is None:
            # Only started workers consume, and they attach their handler first.
            raise RuntimeError("no job handler attached")
        try:
            handler(job_id)
        except HandBackError as exc:
            self._hand_back(job_id, exc.delay_seconds)
        except Exception:
            # Chronicle retries jobs itself: log, and let Dramatiq ack the message.
            log.exception("broker.job_handler_failed", job_id=job_id)

    def _hand_back(self, job_id: str, delay_seconds: float) -> None:
        """Give the message being processed back to the broker, due after the delay: a copy
        is sent (and the original acked); if the broker refuses it, the original is
        requeued instead of acked."""
        # In a worker the current message is the consumer's proxy of it (a `_Delivery`).
        current = cast("MessageProxy | None", CurrentMessage.get_current_message())
        if current is None:  # pragma: no cover - always set while an actor runs
            log.error("broker.hand_back_without_message", job_id=job_id)
            return
        try:
            self.broker.enqueue(current.copy(), delay=math.ceil(delay_seconds * 1000))
        except Exception:
            log.warning("broker.hand_back_requeued", job_id=job_id, exc_info=True)
            current.fail()  # nacked: the priority consumer puts it back in its queue
        else:
            log.info("broker.handed_back", job_id=job_id, delay_seconds=delay_seconds)


class DramatiqJobQueue:
    """The application's `JobQueue` on Dramatiq: one message carrying the job id per job."""

    def __init__(self, setup: ChronicleBroker, *, publishers: int = 8) -> None:
        self._setup = setup
        self._pool: ThreadPoolExecutor | None = None
        if isinstance(setup.broker, RabbitmqBroker):
            # RabbitmqBroker opens a connection per calling thread and keeps it until close():
            # callers on short-lived threads (e.g. anyio's pool) would pile up connections, so
            # publishing goes through a few long-lived threads.
            self._pool = ThreadPoolExecutor(publishers, thread_name_prefix="chronicle-publish")

    def enqueue(self, job_id: UUID, queue: str, *, delay_seconds: float = 0.0) -> None:
        """Send one message for `job_id` to `queue`, delivered no sooner than the delay."""
        self.enqueue_many([(job_id, queue, delay_seconds)])

    def enqueue_many(self, messages: Sequence[tuple[UUID, str, float]]) -> None:
        """Send several messages; returns once the broker has every one of them.

        With RabbitMQ each publish waits for its confirm, so they go out on all the publishing
        threads at once.
        """
        built = [self._message(job_id, queue, delay) for job_id, queue, delay in messages]
        if self._pool is None:
            for message, delay_ms in built:
                self._setup.broker.enqueue(message, delay=delay_ms)
            return
        futures = [
            self._pool.submit(self._setup.broker.enqueue, message, delay=delay_ms)
            for message, delay_ms in built
        ]
        for future in futures:
            future.result()

    def _message(
        self, job_id: UUID, queue: str, delay_seconds: float
    ) -> tuple[Message[None], int | None]:
        queue_name = self._setup.queue_name(queue)
        if not (math.isfinite(delay_seconds) and delay_seconds >= 0):
            raise ValueError(f"delay_seconds must be a finite number >= 0, not {delay_seconds!r}")
        # Round up: a message may be late by a millisecond, never early.
        delay_ms = math.ceil(delay_seconds * 1000) if delay_seconds > 0 else None
        message: Message[None] = Message(
            queue_name=queue_name,
            actor_name=ACTOR_NAME,
            args=(str(job_id),),
            kwargs={},
            options={},
        )
        return message, delay_ms

    def check(self) -> None:
        """Raise `BrokerUnavailableError` if the broker cannot be reached."""
        self._setup.check()

    def ready_messages(self, queue: str) -> int | None:
        """Messages in `queue` no worker has taken yet (delayed ones not counted)."""
        return self._setup.ready_messages(queue)

    def close(self) -> None:
        """Stop the publishing threads (the broker's connections close with `ChronicleBroker`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


# --- The strict-priority consumer ----------------------------------------------------------


class _Delivery(MessageProxy):
    """A message plus what is needed to settle it where it came from."""

    def __init__(
        self,
        message: Message[Any],
        *,
        source: _Source,
        queue: str,
        tag: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.queue = queue
        self.tag = tag
        self.delayed = queue.endswith(".DQ")


class _Source(Protocol):
    """One broker connection as the priority consumer sees it."""

    #: True when settle() must run on the consumer thread (pika connections).
    thread_bound: bool

    def get(self, queue: str) -> _Delivery | None:
        """Take one message from a real queue, or None if it is empty."""
        ...

    def poll_delayed(self, budget: int) -> list[_Delivery]:
        """Messages from the delay queues (at most `budget` more where the source decides)."""
        ...

    def settle(self, delivery: _Delivery, *, ok: bool) -> None:
        """Ack (ok) or put back a delivery: Chronicle dead-letters jobs itself, a message
        that was not processed goes back to its queue."""
        ...

    def requeue(self, deliveries: list[_Delivery]) -> None:
        """Give taken, unprocessed deliveries back to their queues."""
        ...

    def close(self) -> None:
        """Release the connection; never raises."""
        ...


class _Slots:
    """Counts messages a worker took from real queues and has not finished, against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken = 0
        self._closed = False
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            if self._closed or self._taken >= self.limit:
                return False
            self._taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._taken = max(0, self._taken - 1)

    def close(self) -> None:
        """Take nothing more (the worker is stopping)."""
        with self._lock:
            self._closed = True


class _PriorityConsumer(Consumer):
    """Serves several real queues in strict priority order, one message per free slot."""

    def __init__(
        self,
        source: _Source,
        queues: Sequence[str],
        slots: _Slots,
        delay_budget: int,
        paused: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._source = source
        self._queues = tuple(queues)
        self._paused = paused
        self._slots = slots
        self._delay_budget = delay_budget
        self._delayed_held = 0
        self._ready: deque[_Delivery] = deque()
        self._pending: deque[tuple[_Delivery, bool]] = deque()
        self._wake = threading.Event()
        self._misses = 0
        self._next_delay_poll = 0.0

    def __next__(self) -> MessageProxy | None:
        self._wake.clear()
        self._settle_pending()
        now = time.monotonic()
        if now >= self._next_delay_poll:
            self._next_delay_poll = now + _DELAY_POLL_S
            delayed = self._source.poll_delayed(self._delay_budget - self._delayed_held)
            self._delayed_held += len(delayed)
            self._ready.extend(delayed)
        if self._ready:
            # Delayed messages wait in Dramatiq's in-memory delay queue, not in a worker slot.
            return self._ready.popleft()
        if self._slots.try_take():
            try:
                delivery = self._first_waiting()
            except BaseException:
                # A connection error must not leak the slot: the restarted consumer shares it.
                self._slots.give_back()
                raise
            if delivery is not None:
                self._misses = 0
                return delivery
            self._slots.give_back()
            pause = min(_POLL_FLOOR_S * 2**self._misses, _POLL_CAP_S)
            self._misses = min(self._misses + 1, 16)
        else:
            # Every slot is busy: a finishing job sets _wake.
            pause = _POLL_CAP_S
        self._wake.wait(pause)
        # Returning None lets Dramatiq's ConsumerThread move due delayed messages and see stop().
        return None

    def _first_waiting(self) -> _Delivery | None:
        # The heart of strict priority: a lower queue is asked only once every higher one is empty.
        skipped = self._paused() if self._paused is not None else ()
        for queue in self._queues:
            if queue in skipped:
                continue
            delivery = self._source.get(queue)
            if delivery is not None:
                return delivery
        return None

    def ack(self, message: MessageProxy) -> None:
        self._finish(message, ok=True)

    def nack(self, message: MessageProxy) -> None:
        self._finish(message, ok=False)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        by_source: dict[int, tuple[_Source, list[_Delivery]]] = {}
        for message in messages:
            delivery = _as_delivery(message)
            self._release(delivery)
            by_source.setdefault(id(delivery.source), (delivery.source, []))[1].append(delivery)
        for source, deliveries in by_source.values():
            source.requeue(deliveries)

    def close(self) -> None:
        try:
            # Jobs that finished while the worker stopped must be acked, or they would run again.
            self._settle_pending()
        except ConnectionClosed:
            log.warning("broker.acks_lost_on_close", count=len(self._pending))
        self._source.close()

    def _finish(self, message: MessageProxy, *, ok: bool) -> None:
        delivery = _as_delivery(message)
        if delivery.source.thread_bound:
            # Only the consumer thread may touch its pika channel.
            self._pending.append((delivery, ok))
            self._release(delivery)
            self._wake.set()
        else:
            # Raising ConnectionClosed here makes Dramatiq retry the ack: release only on success.
            delivery.source.settle(delivery, ok=ok)
            self._release(delivery)
            self._wake.set()

    def _release(self, delivery: _Delivery) -> None:
        if not delivery.delayed:
            self._slots.give_back()
        elif delivery.source is self._source:
            self._delayed_held -= 1

    def _settle_pending(self) -> None:
        while self._pending:
            delivery, ok = self._pending.popleft()
            delivery.source.settle(delivery, ok=ok)


def _connection_closed(error: Exception) -> ConnectionClosed:
    # Dramatiq's ConsumerThread restarts the consumer (after 3 s) on this error type.
    return ConnectionClosed(error)  # type: ignore[no-untyped-call]


def _as_delivery(message: MessageProxy) -> _Delivery:
    if not isinstance(message, _Delivery):
        raise TypeError(f"not a message from the priority consumer: {message!r}")
    return message


def _decode(body: bytes, queue: str) -> Message[Any] | None:
    try:
        return Message.decode(body)
    except DecodeError:
        log.exception("broker.undecodable_message", queue=queue)
        return None


class _RabbitmqSource:
    """Its own pika connection: `basic_get` on real queues, a push consumer on delay queues."""

    thread_bound = True

    def __init__(self, broker: RabbitmqBroker, queues: Sequence[str], delay_budget: int) -> None:
        self._broker = broker
        self._queues = tuple(queues)
        self._delayed: list[_Delivery] = []
        self._open = False
        for queue in self._queues:
            # Creates the queue, its delay queue and dead-letter queue with Dramatiq's arguments.
            broker.declare_queue(queue, ensure=True)
        with self._errors():
            self._connection = pika.BlockingConnection(broker.parameters)
            self._open = True
            self._channel = self._connection.channel()
            # basic_get ignores QoS; this prefetch applies to each delay-queue consumer only.
            self._channel.basic_qos(prefetch_count=delay_budget)
            for queue in map(dq_name, self._queues):
                self._channel.basic_consume(queue, partial(self._on_delayed, queue))

    def get(self, queue: str) -> _Delivery | None:
        with self._errors():
            while True:
                method, _properties, body = self._channel.basic_get(queue)
                if method is None:
                    return None
                message = _decode(body, queue)
                if message is not None:
                    return _Delivery(message, source=self, queue=queue, tag=method.delivery_tag)
                self._channel.basic_nack(method.delivery_tag, requeue=False)

    def poll_delayed(self, budget: int) -> list[_Delivery]:  # noqa: ARG002 - QoS bounds it
        with self._errors():
            self._connection.process_data_events(0)
        delayed, self._delayed = self._delayed, []
        return delayed

    def settle(self, delivery: _Delivery, *, ok: bool) -> None:
        if not self._open:
            # The channel is gone and RabbitMQ has put the message back already.
            log.debug("broker.settle_after_close", message_id=delivery.message_id)
            return
        with self._errors():
            if ok:
                self._channel.basic_ack(delivery.tag)
            else:
                self._channel.basic_nack(delivery.tag, requeue=True)

    def requeue(self, deliveries: list[_Delivery]) -> None:
        # RabbitMQ returns unacked messages to their queues when the channel closes (in close()).
        pass

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            if self._connection.is_open:
                self._connection.close()
        except Exception as e:
            log.debug("broker.close_failed", error=repr(e))

    def _on_delayed(
        self, queue: str, _channel: Any, method: Any, _properties: Any, body: bytes
    ) -> None:
        message = _decode(body, queue)
        if message is None:
            self._channel.basic_nack(method.delivery_tag, requeue=False)
            return
        self._delayed.append(_Delivery(message, source=self, queue=queue, tag=method.delivery_tag))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (pika.exceptions.AMQPError, AssertionError, OSError) as e:
            if getattr(e, "reply_code", None) == 404:
                # A queue was deleted: have Dramatiq declare it again when the consumer restarts.
                self._broker.queues_pending.update(self._queues)
            self.close()
            raise _connection_closed(e) from None


class _RedisSource:
    """Dramatiq's Redis scripts, called with a count of 1 for real queues."""

    thread_bound = False

    def __init__(self, broker: RedisBroker, queues: Sequence[str]) -> None:
        self._broker = broker
        self._queues = tuple(queues)

    def get(self, queue: str) -> _Delivery | None:
        with _redis_errors():
            for body in self._broker.do_fetch(queue, 1):
                message = _decode(body, queue) if body is not None else None
                if message is not None:
                    return _Delivery(message, source=self, queue=queue)
        return None

    def poll_delayed(self, budget: int) -> list[_Delivery]:
        delayed: list[_Delivery] = []
        with _redis_errors():
            for queue in map(dq_name, self._queues):
                # A count of 0 still refreshes this worker's heartbeat: without one for 60 s,
                # another worker would hand our unfinished jobs out again.
                for body in self._broker.do_fetch(queue, max(0, budget - len(delayed))):
                    message = _decode(body, queue) if body is not None else None
                    if message is not None:
                        delayed.append(_Delivery(message, source=self, queue=queue))
        return delayed

    def settle(self, delivery: _Delivery, *, ok: bool) -> None:
        if not ok:
            self.requeue([delivery])
            return
        with _redis_errors():
            self._broker.do_ack(delivery.queue, delivery.options["redis_message_id"])

    def requeue(self, deliveries: list[_Delivery]) -> None:
        by_queue: dict[str, list[str]] = {}
        for delivery in deliveries:
            by_queue.setdefault(delivery.queue, []).append(delivery.options["redis_message_id"])
        with _redis_errors():
            for queue, ids in by_queue.items():
                self._broker.do_requeue(queue, *ids)

    def close(self) -> None:
        pass


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise _connection_closed(e) from None


class _StubSource:
    """The in-process stub broker's queues, asked in order without blocking."""

    thread_bound = False

    def __init__(self, broker: StubBroker, queues: Sequence[str]) -> None:
        self._broker = broker
        self._queues = tuple(queues)

    def get(self, queue: str) -> _Delivery | None:
        return next(iter(self._take(queue, 1)), None)

    def poll_delayed(self, budget: int) -> list[_Delivery]:
        delayed: list[_Delivery] = []
        for queue in map(dq_name, self._queues):
            delayed += self._take(queue, budget - len(delayed))
        return delayed

    def settle(self, delivery: _Delivery, *, ok: bool) -> None:
        if not ok:
            self.requeue([delivery])
            return
        # task_done keeps StubBroker.join() working.
        self._broker.queues[delivery.queue].task_done()

    def requeue(self, deliveries: list[_Delivery]) -> None:
        for delivery in deliveries:
            queue = self._broker.queues[delivery.queue]
            queue.put(delivery.message.encode())
            queue.task_done()

    def close(self) -> None:
        pass

    def _take(self, queue: str, count: int) -> list[_Delivery]:
        taken: list[_Delivery] = []
        while len(taken) < count:
            try:
                body = self._broker.queues[queue].get_nowait()
            except Empty:
                break
            message = _decode(body, queue)
            if message is None:
                self._broker.queues[queue].task_done()
                continue
            taken.append(_Delivery(message, source=self, queue=queue))
        return taken


# --- The worker -----------------------------------------------------------------------------


class _ConsumeHook:
    """The broker as the single ConsumerThread sees it: `consume()` builds the priority consumer."""

    def __init__(self, broker: Broker, factory: Callable[[], Consumer]) -> None:
        self._broker = broker
        self._factory = factory

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 0) -> Consumer:  # noqa: ARG002
        return self._factory()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)


class _ConsumerRoutes(dict[str, ConsumerThread]):
    """`Worker.consumers` where every served queue name resolves to the one consumer thread."""

    def __init__(self, virtual: str, served: Iterable[str]) -> None:
        super().__init__()
        self._virtual = virtual
        self._served = frozenset(served)

    def __missing__(self, key: str) -> ConsumerThread:
        # WorkerThread acks through consumers[message.queue_name]; Worker.stop requeues likewise.
        if key in self._served:
            return self[self._virtual]
        raise KeyError(key)


class _StrictPriorityWorker(Worker):
    """A Dramatiq `Worker` with one consumer serving all its queues in priority order."""

    def __init__(
        self,
        broker: Broker,
        queue_names: Sequence[str],
        *,
        threads: int,
        prefetch: int,
        paused: Callable[[], Collection[str]] | None = None,
    ) -> None:
        super().__init__(broker, worker_threads=threads, worker_timeout=_WORKER_TIMEOUT_MS)
        self._queue_names = tuple(queue_names)
        self._paused = paused
        self._slots = _Slots(threads + prefetch)
        self._delay_budget = min(threads * _DELAY_PREFETCH_PER_THREAD, _MAX_PREFETCH)
        self._virtual = "+".join(queue_names)
        served = [*queue_names, *map(dq_name, queue_names)]
        self.consumers = _ConsumerRoutes(self._virtual, served)

    def _add_consumer(self, queue_name: str, *, delay: bool = False) -> None:  # noqa: ARG002
        # Dramatiq calls this for each declared queue (dramatiq 2.2.1 worker.py). A consumer per
        # queue is what breaks priority, so start() adds the single one instead.
        return

    def start(self) -> None:
        super().start()
        thread = ConsumerThread(
            broker=cast("Broker", _ConsumeHook(self.broker, self._new_consumer)),
            queue_name=self._virtual,
            prefetch=self._slots.limit,
            work_queue=self.work_queue,
            worker_timeout=self.worker_timeout,
        )
        self.consumers[self._virtual] = thread
        thread.start()

    def stop(self, timeout: int = 600_000) -> None:
        # Take no new message while running jobs finish: it would only be handed back.
        self._slots.close()
        super().stop(timeout)

    def _new_consumer(self) -> Consumer:
        source = _make_source(self.broker, self._queue_names, self._delay_budget)
        return _PriorityConsumer(
            source, self._queue_names, self._slots, self._delay_budget, self._paused
        )


def _make_source(broker: Broker, queues: Sequence[str], delay_budget: int) -> _Source:
    if isinstance(broker, RabbitmqBroker):
        return _RabbitmqSource(broker, queues, delay_budget)
    if isinstance(broker, RedisBroker):
        return _RedisSource(broker, queues)
    if isinstance(broker, StubBroker):
        return _StubSource(broker, queues)
    raise TypeError(f"unsupported Dramatiq broker {type(broker).__name__}")


class RunningWorker:
    """A started worker; `stop()` lets running jobs finish and hands untouched ones back."""

    def __init__(
        self,
        worker: _StrictPriorityWorker,
        setup: ChronicleBroker,
        stopping: threading.Event | None = None,
    ) -> None:
        self._worker = worker
        self._setup = setup
        self._stopping = stopping
        self._stopped = False

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs, wait up to `timeout` s for running ones, hand the rest back.

        Sets `stopping` first: handlers waiting out a database outage give up then.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._stopping is not None:
            self._stopping.set()
        try:
            self._worker.stop(timeout=int(timeout * 1000))
        finally:
            self._setup._detach()  # noqa: SLF001 - the worker's own half of attach/detach


def start_worker(
    setup: ChronicleBroker,
    *,
    queues: Sequence[str],
    threads: int,
    handler: JobHandler,
    prefetch: int = 0,
    paused: Callable[[], Collection[str]] | None = None,
    stopping: threading.Event | None = None,
) -> RunningWorker:
    """Start a worker on `queues` (highest priority first) calling `handler(job_id)` per job.

    `paused()` names the logical queues to take no message from: it is called before each take,
    so it must be fast and must not raise (e.g. `PauseWatcher.skipped`, a cached set).
    """
    queue_names = _queue_names(setup, queues)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, not {threads}")
    if prefetch < 0:
        raise ValueError(f"prefetch must be >= 0, not {prefetch}")
    if not isinstance(setup.broker, RabbitmqBroker | RedisBroker | StubBroker):
        raise TypeError(f"unsupported Dramatiq broker {type(setup.broker).__name__}")
    setup._attach(handler)  # noqa: SLF001 - the worker's own half of attach/detach
    try:
        worker = _StrictPriorityWorker(
            setup.broker,
            queue_names,
            threads=threads,
            prefetch=prefetch,
            paused=None if paused is None else _real_names(setup, paused),
        )
        worker.start()
    except BaseException:
        setup._detach()  # noqa: SLF001
        raise
    log.info("broker.worker_started", queues=list(queues), threads=threads, prefetch=prefetch)
    return RunningWorker(worker, setup, stopping)


def run_worker_forever(
    setup: ChronicleBroker,
    *,
    queues: Sequence[str],
    threads: int,
    handler: JobHandler,
    prefetch: int = 0,
    stop_timeout: float = 30.0,
    paused: Callable[[], Collection[str]] | None = None,
    stopping: threading.Event | None = None,
) -> None:
    """Run a worker until SIGINT or SIGTERM, then stop it as `RunningWorker.stop` does."""
    signals = (signal.SIGINT, signal.SIGTERM)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Only plain assignments here: the handler runs between two bytecodes of the main thread,
        # which may hold a lock (a logger's, an Event's) that the handler would then wait for.
        received.append(signum)
        # A second signal gets the previous action (the default one ends the process at once):
        # a way out if a job never finishes.
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)

    # Saved before installing: a signal may arrive as soon as the first handler is in place.
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, on_signal)
    try:
        running = start_worker(
            setup,
            queues=queues,
            threads=threads,
            handler=handler,
            prefetch=prefetch,
            paused=paused,
            stopping=stopping,
        )
        try:
            while not received:
                time.sleep(0.2)
            log.info("broker.worker_stopping", signal=signal.Signals(received[0]).name)
        finally:
            running.stop(stop_timeout)
        log.info("broker.worker_stopped")
    finally:
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)


def _real_names(
    setup: ChronicleBroker, paused: Callable[[], Collection[str]]
) -> Callable[[], Collection[str]]:
    """`paused` with real queue names, as the consumer knows its queues."""

    def skipped() -> Collection[str]:
        logical = paused()
        return {setup.prefix + queue for queue in logical} if logical else ()

    return skipped


def _queue_names(setup: ChronicleBroker, queues: Sequence[str]) -> list[str]:
    if isinstance(queues, str):
        raise TypeError("queues must be a sequence of queue names, not a string")
    if not queues:
        raise ValueError("a worker needs at least one queue")
    duplicates = sorted({q for q in queues if list(queues).count(q) > 1})
    if duplicates:
        raise ValueError(f"duplicate queues: {', '.join(duplicates)}")
    return [setup.queue_name(queue) for queue in queues]
