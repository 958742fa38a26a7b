"""The Dramatiq broker layer against this machine's RabbitMQ and Redis (and the in-process stub)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from uuid import UUID, uuid4

import pika
import pytest
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from application.ports import HandBackError
from domain.job import QUEUES
from infrastructure.broker import (
    BrokerUnavailableError,
    ChronicleBroker,
    DramatiqJobQueue,
    RunningWorker,
    build_broker,
    start_worker,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

RABBITMQ_URL = os.environ.get("CHRONICLE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("CHRONICLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SRC = Path(__file__).resolve().parents[2] / "src"


# --- Fixtures: one isolated ChronicleBroker per test and broker ------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _unique() -> str:
    return f"test-{uuid4().hex[:8]}"


@pytest.fixture
def rabbitmq() -> Iterator[ChronicleBroker]:
    prefix = f"{_unique()}."
    setup = ChronicleBroker.from_url(RABBITMQ_URL, prefix=prefix)
    try:
        setup.check()
    except BrokerUnavailableError as e:
        _unavailable(str(e))
    try:
        yield setup
    finally:
        setup.close()
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        try:
            channel = connection.channel()
            for queue in QUEUES:
                for suffix in ("", ".DQ", ".XQ"):
                    channel.queue_delete(f"{prefix}{queue}{suffix}")
        finally:
            connection.close()


@pytest.fixture
def redis_broker() -> Iterator[ChronicleBroker]:
    namespace = _unique()
    setup = ChronicleBroker.from_url(REDIS_URL, prefix=f"{_unique()}.", namespace=namespace)
    try:
        setup.check()
    except BrokerUnavailableError as e:
        _unavailable(str(e))
    try:
        yield setup
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        if keys:
            client.delete(*keys)
        client.close()
        setup.close()


@pytest.fixture
def memory() -> ChronicleBroker:
    return ChronicleBroker.from_url("memory://", prefix=f"{_unique()}.")


@pytest.fixture(params=["rabbitmq", "redis_broker", "memory"])
def any_broker(request: pytest.FixtureRequest) -> ChronicleBroker:
    setup: ChronicleBroker = request.getfixturevalue(request.param)
    return setup


@pytest.fixture
def job_queue(any_broker: ChronicleBroker) -> Iterator[DramatiqJobQueue]:
    queue = DramatiqJobQueue(any_broker)
    yield queue
    queue.close()


# --- Helpers -----------------------------------------------------------------------------------


class Recorder:
    """A job handler that records the order in which jobs start (and can fail some of them)."""

    def __init__(self, work_seconds: float = 0.0, fail: frozenset[str] = frozenset()) -> None:
        self.work_seconds = work_seconds
        self.fail = fail
        self.started: list[str] = []
        self.finished: list[str] = []
        self.start_times: dict[str, float] = {}
        self.cond = threading.Condition()

    def __call__(self, job_id: str) -> None:
        with self.cond:
            self.started.append(job_id)
            self.start_times.setdefault(job_id, time.monotonic())
            self.cond.notify_all()
        if self.work_seconds:
            time.sleep(self.work_seconds)
        with self.cond:
            self.finished.append(job_id)
        if job_id in self.fail:
            raise RuntimeError(f"job {job_id} fails on purpose")

    def wait_started(self, count: int, timeout: float = 20.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.started) >= count, timeout)
            assert ok, f"only {len(self.started)} of {count} jobs started within {timeout} s"


@contextmanager
def running(
    setup: ChronicleBroker,
    handler: Callable[[str], None],
    *,
    queues: Sequence[str] = QUEUES,
    threads: int = 2,
    prefetch: int = 0,
) -> Iterator[RunningWorker]:
    worker = start_worker(
        setup, queues=list(queues), threads=threads, handler=handler, prefetch=prefetch
    )
    try:
        yield worker
    finally:
        worker.stop(timeout=10)


def waiting(setup: ChronicleBroker, queue: str) -> int:
    """Messages ready in a queue (not taken by any worker)."""
    count = setup.ready_messages(queue)
    assert count is not None
    return count


def enqueue_many(job_queue: DramatiqJobQueue, queue: str, count: int) -> list[str]:
    ids = [uuid4() for _ in range(count)]
    for job_id in ids:
        job_queue.enqueue(job_id, queue)
    return [str(job_id) for job_id in ids]


def starts_before_last(order: list[str], earlier: set[str], later: set[str]) -> int:
    """How many `later` jobs started before the last of the `earlier` jobs."""
    last = max(i for i, job in enumerate(order) if job in earlier)
    return sum(1 for job in order[:last] if job in later)


# --- Basics on every broker -------------------------------------------------------------------


def test_enqueue_runs_the_handler_with_the_job_id(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
) -> None:
    recorder = Recorder()
    job_id = uuid4()
    with running(any_broker, recorder):
        job_queue.enqueue(job_id, "default")
        recorder.wait_started(1)
    assert recorder.started == [str(job_id)]


def test_delayed_job_is_not_early_and_arrives(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
) -> None:
    recorder = Recorder()
    delayed, prompt = uuid4(), uuid4()
    with running(any_broker, recorder):
        sent = time.monotonic()
        job_queue.enqueue(delayed, "high", delay_seconds=0.5)
        job_queue.enqueue(prompt, "low")
        recorder.wait_started(2, timeout=10)
    waited = recorder.start_times[str(delayed)] - sent
    print(f"\n{type(any_broker.broker).__name__}: 0.5 s delay delivered after {waited:.3f} s")
    # Dramatiq's eta is in whole milliseconds of wall-clock time: allow 1 ms of truncation.
    assert waited >= 0.499
    assert waited < 2.0
    assert recorder.started == [str(prompt), str(delayed)]


def test_failing_handler_is_not_retried_and_the_worker_goes_on(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
) -> None:
    bad, good, later = uuid4(), uuid4(), uuid4()
    recorder = Recorder(fail=frozenset({str(bad)}))
    with running(any_broker, recorder, threads=1):
        job_queue.enqueue(bad, "default")
        job_queue.enqueue(good, "default")
        # With one thread and no prefetch, `good` is taken only once `bad` was settled: a
        # retry (a requeue) of `bad` is in the queue by now, ahead of `later`.
        recorder.wait_started(2)
        job_queue.enqueue(later, "default")
        recorder.wait_started(3)
    # The worker stopped once `later` finished; each message was settled by then.
    assert recorder.started == [str(bad), str(good), str(later)]
    # Acked, not dead-lettered nor handed back when the worker stopped.
    assert waiting(any_broker, "default") == 0
    if isinstance(any_broker.broker, RabbitmqBroker):
        counts = any_broker.broker.get_queue_message_counts(any_broker.queue_name("default"))
        assert counts == (0, 0, 0)


def test_a_handed_back_message_comes_back_after_its_delay(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
) -> None:
    """A handler that cannot process a message now (the database is down) hands it back:
    it is neither dropped nor dead-lettered, and runs again after the delay."""
    recorder = Recorder()
    handed_back: list[float] = []

    def handler(job_id: str) -> None:
        if not handed_back:
            handed_back.append(time.monotonic())
            raise HandBackError("database unreachable", delay_seconds=0.3)
        recorder(job_id)

    job_id = uuid4()
    with running(any_broker, handler, threads=1):
        job_queue.enqueue(job_id, "default")
        recorder.wait_started(1, timeout=10)
    assert recorder.started == [str(job_id)]
    assert recorder.start_times[str(job_id)] - handed_back[0] >= 0.29
    assert waiting(any_broker, "default") == 0
    if isinstance(any_broker.broker, RabbitmqBroker):
        counts = any_broker.broker.get_queue_message_counts(any_broker.queue_name("default"))
        assert counts == (0, 0, 0)


def test_check_passes(any_broker: ChronicleBroker, job_queue: DramatiqJobQueue) -> None:
    job_queue.check()


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:1/", "redis://127.0.0.1:1/0"])
def test_check_fails_when_the_broker_is_unreachable(url: str) -> None:
    setup = ChronicleBroker.from_url(url, prefix=f"{_unique()}.")
    job_queue = DramatiqJobQueue(setup)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        job_queue.check()
    assert time.monotonic() - started < 10
    job_queue.close()


def test_enqueue_is_thread_safe(any_broker: ChronicleBroker, job_queue: DramatiqJobQueue) -> None:
    errors: list[BaseException] = []

    def send() -> None:
        try:
            enqueue_many(job_queue, "low", 50)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert waiting(any_broker, "low") == 400
    if isinstance(any_broker.broker, RabbitmqBroker):
        # Publishing goes through the queue's few threads, not one connection per caller.
        assert len(any_broker.broker.connections) <= 8


def test_stop_finishes_running_jobs_and_hands_back_the_rest(
    any_broker: ChronicleBroker, job_queue: DramatiqJobQueue
) -> None:
    recorder = Recorder(work_seconds=0.5)
    enqueue_many(job_queue, "low", 6)
    worker = start_worker(any_broker, queues=["low"], threads=1, handler=recorder, prefetch=3)
    try:
        recorder.wait_started(1)
        # The consumer took its prefetch: one running and three taken, two left in the broker.
        wait_until(lambda: waiting(any_broker, "low") <= 2, what="the prefetch to be taken")
    finally:
        worker.stop(timeout=5)
    assert recorder.finished == recorder.started
    assert len(recorder.started) == 1
    wait_until(lambda: waiting(any_broker, "low") == 5, 5, "five messages handed back")


# --- Validation ------------------------------------------------------------------------------


def test_build_broker_rejects_unknown_schemes() -> None:
    with pytest.raises(ValueError, match=r"'kafka'.*amqp://.*redis://.*memory://"):
        build_broker("kafka://localhost:9092")


def test_queue_names_are_validated(memory: ChronicleBroker) -> None:
    job_queue = DramatiqJobQueue(memory)
    with pytest.raises(ValueError, match="unknown queue 'urgent'"):
        job_queue.enqueue(uuid4(), "urgent")
    with pytest.raises(ValueError, match="delay_seconds"):
        job_queue.enqueue(uuid4(), "low", delay_seconds=-1)
    handler = Recorder()
    with pytest.raises(ValueError, match="unknown queue"):
        start_worker(memory, queues=["high", "urgent"], threads=1, handler=handler)
    with pytest.raises(ValueError, match="duplicate queues: low"):
        start_worker(memory, queues=["low", "high", "low"], threads=1, handler=handler)
    with pytest.raises(ValueError, match="at least one queue"):
        start_worker(memory, queues=[], threads=1, handler=handler)
    with pytest.raises(ValueError, match="not make valid"):
        ChronicleBroker.from_url("memory://", prefix="9 bad prefix ")
    # A rejected start leaves the broker free for a real one.
    with running(memory, handler, queues=["low"]):
        pass


# --- Strict priority -------------------------------------------------------------------------


@pytest.mark.parametrize(("threads", "prefetch"), [(1, 0), (2, 0), (2, 2)])
def test_rabbitmq_waiting_high_jobs_start_before_waiting_low_jobs(
    rabbitmq: ChronicleBroker, threads: int, prefetch: int
) -> None:
    job_queue = DramatiqJobQueue(rabbitmq)
    lows = set(enqueue_many(job_queue, "low", 500))
    highs = set(enqueue_many(job_queue, "high", 20))
    job_queue.close()
    recorder = Recorder(work_seconds=0.002)
    with running(rabbitmq, recorder, threads=threads, prefetch=prefetch):
        recorder.wait_started(520, timeout=25)
    lows_first = starts_before_last(recorder.started, highs, lows)
    print(
        f"\nRabbitMQ, threads={threads}, prefetch={prefetch}: "
        f"{lows_first} of 500 waiting low jobs started before the last of 20 high jobs"
    )
    assert lows_first <= prefetch
    assert set(recorder.started) == lows | highs


@pytest.mark.parametrize("broker_fixture", ["redis_broker", "memory"])
def test_other_brokers_start_waiting_high_jobs_first(
    request: pytest.FixtureRequest, broker_fixture: str
) -> None:
    setup: ChronicleBroker = request.getfixturevalue(broker_fixture)
    job_queue = DramatiqJobQueue(setup)
    lows = set(enqueue_many(job_queue, "low", 500))
    highs = set(enqueue_many(job_queue, "high", 20))
    recorder = Recorder(work_seconds=0.002)
    with running(setup, recorder, threads=2):
        recorder.wait_started(520, timeout=25)
    lows_first = starts_before_last(recorder.started, highs, lows)
    print(f"\n{broker_fixture}: {lows_first} low jobs started before the last high job")
    assert lows_first == 0


def test_rabbitmq_default_jobs_start_before_low_jobs(rabbitmq: ChronicleBroker) -> None:
    job_queue = DramatiqJobQueue(rabbitmq)
    lows = set(enqueue_many(job_queue, "low", 300))
    defaults = set(enqueue_many(job_queue, "default", 30))
    job_queue.close()
    recorder = Recorder(work_seconds=0.002)
    with running(rabbitmq, recorder, queues=["default", "low"], threads=2):
        recorder.wait_started(330, timeout=25)
    lows_first = starts_before_last(recorder.started, defaults, lows)
    print(f"\nRabbitMQ default vs low: {lows_first} low jobs started before the last default")
    assert lows_first == 0


def test_rabbitmq_three_queues_start_in_priority_order(rabbitmq: ChronicleBroker) -> None:
    job_queue = DramatiqJobQueue(rabbitmq)
    lows = set(enqueue_many(job_queue, "low", 200))
    defaults = set(enqueue_many(job_queue, "default", 50))
    highs = set(enqueue_many(job_queue, "high", 20))
    job_queue.close()
    recorder = Recorder(work_seconds=0.002)
    with running(rabbitmq, recorder, threads=2):
        recorder.wait_started(270, timeout=25)
    order = recorder.started
    figures = {
        "default before last high": starts_before_last(order, highs, defaults),
        "low before last high": starts_before_last(order, highs, lows),
        "low before last default": starts_before_last(order, defaults, lows),
    }
    print(f"\nRabbitMQ three queues: {figures}")
    assert figures == dict.fromkeys(figures, 0)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_rabbitmq_high_jobs_overtake_low_jobs_while_the_worker_is_busy(
    rabbitmq: ChronicleBroker, prefetch: int
) -> None:
    threads = 2
    job_queue = DramatiqJobQueue(rabbitmq)
    lows = set(enqueue_many(job_queue, "low", 200))
    recorder = Recorder(work_seconds=0.005)
    with running(rabbitmq, recorder, threads=threads, prefetch=prefetch):
        recorder.wait_started(20)
        highs = set(enqueue_many(job_queue, "high", 10))
        with recorder.cond:
            seen = len(recorder.started)
        recorder.wait_started(210, timeout=25)
    job_queue.close()
    # On a busy machine a high job may start before `seen` is read: count from it then.
    seen = min(seen, *(recorder.started.index(job) for job in highs))
    after = recorder.started[seen:]
    lows_first = starts_before_last(after, highs, lows)
    print(
        f"\nRabbitMQ live, prefetch={prefetch}: {lows_first} low jobs started after the high "
        "jobs were sent and before the last of them"
    )
    # Only jobs the worker had already taken (running or prefetched) may go first.
    assert lows_first <= threads + prefetch


# --- Signals ---------------------------------------------------------------------------------


WORKER_SCRIPT = """
import sys
from uuid import uuid4
from infrastructure.broker import ChronicleBroker, DramatiqJobQueue, run_worker_forever

setup = ChronicleBroker.from_url("memory://")
DramatiqJobQueue(setup).enqueue(uuid4(), "default")

def handler(job_id):
    print("job started", flush=True)
    sys.stdin.readline()  # the job runs until the test lets it finish
    print("job finished", flush=True)

run_worker_forever(setup, queues=["high", "default", "low"], threads=1, handler=handler)
print("worker stopped", flush=True)
"""


def test_run_worker_forever_finishes_the_running_job_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    output: list[str] = []
    job_started, stopping = threading.Event(), threading.Event()

    def read(stream: IO[str]) -> None:
        # Log lines and the job's prints share the pipe and may interleave: match substrings.
        for line in stream:
            output.append(line.rstrip())
            if "job started" in line:
                job_started.set()
            if "broker.worker_stopping" in line:
                stopping.set()

    reader = threading.Thread(target=read, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        # Generous: imports compile from source here (PYTHONDONTWRITEBYTECODE) on a busy machine.
        assert job_started.wait(30), output
        process.send_signal(signal.SIGTERM)
        # The worker took the signal while the job ran; only then does the job finish.
        assert stopping.wait(15), output
        process.stdin.write("finish\n")
        process.stdin.close()
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
    text = "\n".join(output)
    assert process.returncode == 0, text
    assert "job finished" in text
    assert text.index("broker.worker_stopping") < text.index("job finished")
    assert text.index("job finished") < text.index("worker stopped")


def test_ids_are_sent_as_text(memory: ChronicleBroker) -> None:
    recorder = Recorder()
    job_id = UUID("12345678-1234-5678-1234-567812345678")
    with running(memory, recorder):
        DramatiqJobQueue(memory).enqueue(job_id, "low")
        recorder.wait_started(1)
    assert recorder.started == ["12345678-1234-5678-1234-567812345678"]
