"""End-to-end durable jobs/s against raw Dramatiq no-op messages/s, same broker, same run.

    uv run python benchmarks/throughput.py [--jobs 3000] [--threads 8]

Raw Dramatiq: one worker process (N threads) drains N no-op messages enqueued beforehand.
Chronicle: jobs are dispatched (events committed, in batches of 100 per transaction), relayed
by `chronicle projector`, run by `chronicle worker` (one process, N threads), and counted as
done only when the read model shows every one succeeded. Both use RabbitMQ on this machine
and a fresh Postgres schema; the printed ratio is Chronicle / raw.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "CHRONICLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BROKER_URL = os.environ.get("CHRONICLE_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")

RAW_WORKER = """
import sys, threading, time
import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq import Worker
prefix, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
broker = RabbitmqBroker(url=sys.argv[4], middleware=[])
done = [0]
lock = threading.Lock()
finished = threading.Event()
@dramatiq.actor(broker=broker, queue_name=prefix + "raw", actor_name="noop")
def noop(i):
    with lock:
        done[0] += 1
        if done[0] == n:
            finished.set()
worker = Worker(broker, worker_threads=threads)
start = time.perf_counter()
worker.start()
finished.wait()
elapsed = time.perf_counter() - start
worker.stop()
print(elapsed)
"""


def raw_dramatiq(n: int, threads: int) -> float:
    import dramatiq  # noqa: PLC0415
    from dramatiq.brokers.rabbitmq import RabbitmqBroker  # noqa: PLC0415

    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    broker = RabbitmqBroker(url=BROKER_URL, middleware=[])
    actor = dramatiq.actor(broker=broker, queue_name=prefix + "raw", actor_name="noop")(
        lambda _i: None
    )
    for i in range(n):
        actor.send(i)
    proc = subprocess.run(
        [sys.executable, "-c", RAW_WORKER, prefix, str(n), str(threads), BROKER_URL],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = float(proc.stdout.strip().splitlines()[-1])
    broker.channel.queue_delete(prefix + "raw")
    broker.close()
    return n / elapsed


def chronicle(n: int, threads: int) -> tuple[float, float]:
    from application.jobs import DispatchRequest  # noqa: PLC0415
    from infrastructure.settings import load_settings  # noqa: PLC0415
    from interfaces.bootstrap import bootstrap  # noqa: PLC0415

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "CHRONICLE_DATABASE_URL": DATABASE_URL,
        "CHRONICLE_DATABASE_SCHEMA": schema,
        "CHRONICLE_BROKER_URL": BROKER_URL,
        "CHRONICLE_QUEUE_PREFIX": prefix,
        "CHRONICLE_WORKER_THREADS": str(threads),
        "CHRONICLE_LOG_LEVEL": "warning",
    }
    app = bootstrap(load_settings(env))
    chronicle_cmd = [sys.executable, "-m", "interfaces.cli"]
    procs = [
        subprocess.Popen([*chronicle_cmd, "projector"], env=env, cwd=ROOT),
        subprocess.Popen([*chronicle_cmd, "worker", "--threads", str(threads)], env=env, cwd=ROOT),
    ]
    try:
        time.sleep(3)  # let both processes connect
        start = time.perf_counter()
        requests = [DispatchRequest(command_line="demo:noop") for _ in range(n)]
        for i in range(0, n, 100):
            app.jobs.dispatch_many(requests[i : i + 100])
        dispatched = time.perf_counter() - start
        while True:
            stats = app.queries.queue_stats("default", app.clock.now())
            if stats.totals["succeeded"] >= n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        app.close()
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        delete_queues(prefix)
    return n / elapsed, n / dispatched


def delete_queues(prefix: str) -> None:
    import pika  # noqa: PLC0415

    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        for queue in ("high", "default", "low"):
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(f"{prefix}{queue}{suffix}")
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    raw = raw_dramatiq(args.jobs, args.threads)
    durable, dispatch_rate = chronicle(args.jobs, args.threads)
    print(
        f"raw Dramatiq no-op messages/s (RabbitMQ, 1 process, {args.threads} threads): {raw:,.0f}"
    )
    print(f"Chronicle durable no-op jobs/s (dispatch → succeeded in read model): {durable:,.0f}")
    print(f"  dispatch alone (100 jobs per transaction): {dispatch_rate:,.0f}/s")
    print(f"ratio Chronicle / raw Dramatiq: {durable / raw:.2f} (target ≥ 0.5)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
