"""Web dashboard: page response times with few and many jobs, home-page weight, live latency.

    uv run python benchmarks/dashboard.py [--jobs 100000] [--requests 50] [--postgres URL]

Runs on the embedded SQLite store (files in a temporary folder, removed at the end), or with
`--postgres URL` on PostgreSQL (a fresh schema per case, dropped at the end). For each case
(`--small` jobs, default 10, then `--jobs`), the jobs are made through Chronicle's own path:
dispatched through the job service (`--group` jobs per transaction, some in batches), the
read models caught up, then a share run by an in-process executor on a collecting queue (as
the integration tests' `Harness` does): `--run` jobs succeed, `--failed` fail for good with one
of three error messages; the rest wait (some delayed, over the three queues).

Then, for an admin signed in through `POST /login` (the cookie kept), each dashboard page is
requested `--requests` times through Litestar's TestClient (in-process ASGI, no socket) after
one unmeasured warm-up request, and p50 / p99 / mean and the body size are printed. Also:
the bytes of the home page (its HTML plus every `/static/…` file it references, asked for
uncompressed), and the time from a dispatch call's return to its `dispatched` event on
`GET /api/events`, streamed with httpx from a uvicorn server on a free port in this process.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway account's
ERRORS = (
    "connection refused by the billing gateway",
    "timed out waiting for the ledger lock",
    "invalid invoice record",
)
SEARCH = "invoice-1234"


@dataclass
class CollectingQueue:
    """A job queue that keeps what the outbox relay sends, for the executor to run here."""

    sent: list[UUID] = field(default_factory=list)

    def enqueue(self, job_id: UUID, queue: str, *, delay_seconds: float = 0.0) -> None:  # noqa: ARG002
        self.sent.append(job_id)

    def enqueue_many(self, messages: Sequence[tuple[UUID, str, float]]) -> None:
        self.sent.extend(job_id for job_id, _, _ in messages)

    def check(self) -> None:
        return None

    def ready_messages(self, queue: str) -> int | None:  # noqa: ARG002
        return None

    def take(self) -> list[UUID]:
        sent, self.sent = self.sent, []
        return sent


@dataclass
class Setup:
    dispatch_s: float = 0.0
    project_s: float = 0.0
    run_s: float = 0.0
    total_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    ran: int = 0
    failed_job: UUID | None = None


def settings_for(data_dir: Path, postgres: str | None, schema: str | None) -> Any:
    from infrastructure.settings import Settings  # noqa: PLC0415

    common = {
        "data_dir": data_dir,
        "default_backoff_seconds": 0.0,
        "log_level": "warning",
        "projection_batch_size": 2000,
    }
    if postgres is None:
        return Settings(**common)
    return Settings(database_url=postgres, database_schema=schema or "public", **common)


def follow(chronicle: Any) -> None:
    """Run every runner (projections, reactions, relay) until the log head stops moving."""
    while True:
        head = chronicle.log.head()
        for runner in chronicle.runners.values():
            runner.catch_up()
        if chronicle.log.head() == head:
            return


def populate(chronicle: Any, n: int, args: argparse.Namespace) -> Setup:
    from application.batches import BatchRequest  # noqa: PLC0415
    from application.jobs import DispatchRequest  # noqa: PLC0415
    from application.schedules import ScheduleRequest  # noqa: PLC0415

    setup = Setup()
    started = time.perf_counter()
    queue = CollectingQueue()
    chronicle.add_outbox(queue)
    failed = min(args.failed, max(3, n // 10))
    run = min(args.run if args.run is not None else min(10_000, n // 2), n - failed)
    waiting = n - failed - run
    in_batches = min(waiting // 2, 20 * 50) if n >= 1000 else 0
    loose = waiting - in_batches

    requests = [
        DispatchRequest(
            command="demo:fail",
            options={"times": 5, "message": ERRORS[i % len(ERRORS)]},
            max_attempts=1,
            job_id=uuid.uuid4(),
        )
        for i in range(failed)
    ]
    requests += [
        DispatchRequest(command_line=f"demo:echo report-{i}", job_id=uuid.uuid4())
        for i in range(run)
    ]
    to_run = {r.job_id for r in requests}
    for i in range(loose):
        kind = i % 20
        requests.append(
            DispatchRequest(
                command_line=f"demo:echo invoice-{i}",
                queue="high" if kind < 3 else "low" if kind < 5 else "default",
                delay_seconds=3600.0 if kind == 19 else 0.0,
            )
        )
    setup.failed_job = requests[0].job_id

    t0 = time.perf_counter()
    for start in range(0, len(requests), args.group):
        chronicle.jobs.dispatch_many(requests[start : start + args.group])
    for b in range(0, in_batches, 50):
        size = min(50, in_batches - b)
        chronicle.batches.create(
            BatchRequest(
                name=f"nightly-{b // 50}",
                jobs=[
                    DispatchRequest(command_line=f"demo:echo batch-{b + k}") for k in range(size)
                ],
                then="demo:echo done",
                finally_="demo:noop",
            )
        )
    for s in range(5):
        chronicle.schedules.create(
            ScheduleRequest(
                name=f"report-{s}", command_line="demo:echo tick", expression=f"{s} 3 * * *"
            )
        )
    setup.dispatch_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    follow(chronicle)
    setup.project_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    executor = chronicle.executor(queue, worker_id="bench-worker")
    ran = 0
    for job_id in queue.take():
        if job_id in to_run:
            executor.process(job_id)
            ran += 1
    run_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    follow(chronicle)
    setup.project_s += time.perf_counter() - t0
    setup.run_s = run_s
    setup.ran = ran
    setup.total_s = time.perf_counter() - started
    setup.counts = {
        "jobs": n,
        "in batches": in_batches,
        "run by the executor (to success or failure)": ran,
        "meant to fail": failed,
        "waiting (5 % of them delayed 1 h)": waiting,
    }
    return setup


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def pages(job_id: UUID | None) -> list[str]:
    return [
        "/",
        "/partials/stats",
        "/jobs",
        "/jobs?status=failed",
        f"/jobs?q={SEARCH}",
        f"/jobs/{job_id}",
        "/waiting",
        "/failed",
        "/failed?group=error",
        "/queues",
        "/batches",
        "/schedules",
        "/imports",
        "/exports",
    ]


@dataclass
class PageFigures:
    path: str
    p50: float
    p99: float
    mean: float
    size: int
    statuses: str


def signed_in_client(chronicle: Any) -> Any:
    from litestar.testing import TestClient  # noqa: PLC0415

    from interfaces.http.app import create_app  # noqa: PLC0415

    client = TestClient(create_app(chronicle))
    client.headers["Accept-Encoding"] = "identity"
    return client


def sign_in(client: Any) -> None:
    response = client.post(
        "/login",
        data={"username": "bench", "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    if response.status_code != 303:
        raise RuntimeError(f"sign-in answered {response.status_code}: {response.text[:300]}")


def measure_pages(client: Any, paths: list[str], n: int) -> list[PageFigures]:
    figures = []
    for path in paths:
        client.get(path)  # warm-up: template compiled, caches filled
        times: list[float] = []
        statuses: set[int] = set()
        size = 0
        for _ in range(n):
            t0 = time.perf_counter()
            response = client.get(path, follow_redirects=False)
            times.append((time.perf_counter() - t0) * 1000)
            statuses.add(response.status_code)
            size = len(response.content)
        figures.append(
            PageFigures(
                path=path,
                p50=percentile(times, 0.50),
                p99=percentile(times, 0.99),
                mean=statistics.fmean(times),
                size=size,
                statuses=",".join(str(s) for s in sorted(statuses)),
            )
        )
    return figures


def home_bytes(client: Any) -> tuple[int, list[tuple[str, int]]]:
    html = client.get("/").content
    parts = [("/ (HTML)", len(html))]
    seen: set[str] = set()
    for ref in re.findall(rb'(?:href|src)="(/static/[^"?#]+)', html):
        path = ref.decode()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        parts.append((f"{path} ({response.status_code})", len(response.content)))
    return sum(size for _, size in parts), parts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(chronicle: Any) -> Iterator[str]:
    import uvicorn  # noqa: PLC0415

    from interfaces.http.app import create_app  # noqa: PLC0415

    port = free_port()
    config = uvicorn.Config(
        create_app(chronicle),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class StreamReader:
    """Reads `GET /api/events` on a thread and notes when each job's `dispatched` arrives."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.arrived: dict[str, float] = {}
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._arrival = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="bench-stream", daemon=True)

    def _run(self) -> None:
        import httpx  # noqa: PLC0415

        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as http,
                http.stream("GET", f"{self.base}/api/events", headers=headers) as response,
            ):
                if response.status_code != 200:
                    self.errors.append(RuntimeError(f"/api/events: {response.status_code}"))
                    return
                self._read(response.iter_lines())
        except Exception as exc:
            if not self.stop.is_set():
                self.errors.append(exc)
        finally:
            self.connected.set()

    def _read(self, lines: Iterator[str]) -> None:
        event = data = ""
        for line in lines:
            now = time.perf_counter()
            if line.startswith(":"):
                self.connected.set()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif not line:
                if event == "job":
                    self._note(data, now)
                event = data = ""
            if self.stop.is_set():
                return

    def _note(self, data: str, now: float) -> None:
        message = json.loads(data)
        if message.get("event") == "dispatched":
            with self._arrival:
                self.arrived.setdefault(message["job_id"], now)
                self._arrival.notify_all()

    def wait_for(self, job_id: str, timeout: float) -> float | None:
        with self._arrival:
            self._arrival.wait_for(lambda: job_id in self.arrived, timeout=timeout)
            return self.arrived.get(job_id)


def stream_latency(chronicle: Any, jobs: int) -> list[float]:
    """Milliseconds from each dispatch call's return to its `dispatched` event on the stream."""
    from application.jobs import DispatchRequest  # noqa: PLC0415
    from domain.principals import Role  # noqa: PLC0415

    name = f"bench-{uuid.uuid4().hex[:6]}"
    token = chronicle.tokens.create(name=name, role=Role.ADMIN, by="bench").token
    latencies: list[float] = []
    with live_server(chronicle) as base:
        reader = StreamReader(base, token)
        reader.thread.start()
        if not reader.connected.wait(10) or reader.errors:
            raise RuntimeError(f"the live stream did not open: {reader.errors}")
        time.sleep(0.5)  # the feed's follower thread starts with the first stream
        for i in range(jobs):
            job_id = chronicle.jobs.dispatch(DispatchRequest(command_line=f"demo:echo live-{i}"))
            returned = time.perf_counter()
            got = reader.wait_for(str(job_id), timeout=10)
            if got is None:
                print(f"  job {job_id}: no dispatched event within 10 s", file=sys.stderr)
                continue
            latencies.append(max(0.0, got - returned) * 1000)
            time.sleep(0.05)
        # One more event wakes the reader, which then closes its connection.
        reader.stop.set()
        chronicle.jobs.dispatch(DispatchRequest(command_line="demo:noop"))
        reader.thread.join(10)
    if reader.errors:
        print(f"  stream errors: {reader.errors}", file=sys.stderr)
    return latencies


def print_table(title: str, figures: list[PageFigures]) -> None:
    print(f"\n{title}")
    width = max(len(f.path) for f in figures)
    print(
        f"  {'page':<{width}}  {'p50 ms':>8}  {'p99 ms':>8}  {'mean ms':>8}  {'bytes':>9}  status"
    )
    for f in figures:
        times = f"{f.p50:8.1f}  {f.p99:8.1f}  {f.mean:8.1f}"
        print(f"  {f.path:<{width}}  {times}  {f.size:9,}  {f.statuses}")


def run_case(
    n: int,
    args: argparse.Namespace,
    scratch: Path,
    after: Callable[[Any, Any], None] | None = None,
) -> None:
    from domain.principals import Role  # noqa: PLC0415
    from interfaces.bootstrap import bootstrap  # noqa: PLC0415

    schema = f"bench_dash_{uuid.uuid4().hex[:8]}" if args.postgres else None
    data_dir = scratch / f"case-{n}"
    chronicle = bootstrap(settings_for(data_dir, args.postgres, schema))
    try:
        chronicle.accounts.create(name="bench", password=PASSWORD, role=Role.ADMIN, by="bench")
        setup = populate(chronicle, n, args)
        store = "PostgreSQL" if args.postgres else "SQLite (embedded)"
        made = n / setup.total_s if setup.total_s else 0.0
        ran = setup.ran
        print(f"\n=== {n:,} jobs, {store} ===")
        print(
            f"setup {setup.total_s:.1f} s ({made:,.0f} jobs/s overall): dispatch "
            f"{setup.dispatch_s:.1f} s ({n / max(setup.dispatch_s, 1e-9):,.0f}/s, {args.group} "
            f"per transaction), projections caught up {setup.project_s:.1f} s, executor "
            f"{setup.run_s:.1f} s ({ran:,} jobs, "
            f"{ran / max(setup.run_s, 1e-9):,.0f}/s)"
        )
        print("  " + ", ".join(f"{k}: {v:,}" for k, v in setup.counts.items()))
        stats = chronicle.queries.queue_stats("default", chronicle.clock.now()).totals
        print("  read model, queue default: " + ", ".join(f"{k} {v:,}" for k, v in stats.items()))
        with signed_in_client(chronicle) as client:
            sign_in(client)
            figures = measure_pages(client, pages(setup.failed_job), args.requests)
            print_table(
                f"pages, {n:,} jobs, {args.requests} requests each after 1 warm-up "
                "(Litestar TestClient, in-process ASGI, signed-in admin):",
                figures,
            )
            if after is not None:
                after(chronicle, client)
    finally:
        chronicle.close()
        if schema is not None:
            import psycopg  # noqa: PLC0415

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs in the big case")
    parser.add_argument("--small", type=int, default=10, help="jobs in the small case")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL instead of SQLite")
    parser.add_argument("--group", type=int, default=1000, help="jobs per dispatch transaction")
    parser.add_argument(
        "--run", type=int, default=None, help="jobs run to success (default min(10000, jobs/2))"
    )
    parser.add_argument("--failed", type=int, default=600, help="jobs that fail (3 errors)")
    parser.add_argument("--stream-jobs", type=int, default=50, help="jobs timed on the stream")
    args = parser.parse_args()

    from infrastructure.logging import configure_logging  # noqa: PLC0415

    configure_logging("console", "warning")
    scratch = Path(tempfile.mkdtemp(prefix="chronicle-dashboard-bench-"))
    began = time.perf_counter()

    def extras(chronicle: Any, client: Any) -> None:
        total, parts = home_bytes(client)
        print(f"\nhome page bytes (uncompressed, HTML + referenced static files): {total:,}")
        for name, size in parts:
            print(f"  {name:<40} {size:9,}")
        latencies = stream_latency(chronicle, args.stream_jobs)
        if latencies:
            print(
                f"\nlive stream (uvicorn on 127.0.0.1, httpx streaming GET /api/events): "
                f"dispatch return → 'dispatched' event, {len(latencies)} jobs: "
                f"p50 {percentile(latencies, 0.5):.1f} ms, "
                f"p99 {percentile(latencies, 0.99):.1f} ms, "
                f"mean {statistics.fmean(latencies):.1f} ms, max {max(latencies):.1f} ms"
            )
        else:
            print("\nlive stream: no event arrived")

    try:
        run_case(args.small, args, scratch)
        run_case(args.jobs, args, scratch, after=extras)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nwhole run {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
