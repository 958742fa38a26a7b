"""Chronicle's processes: API server, workers, projector, and all of them in one (`up`)."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from types import FrameType
from uuid import UUID

import click
import structlog
import uvicorn

from application.execution import JobExecutor
from application.principals import create_first_admin
from domain.job import QUEUES
from infrastructure.broker import (
    ChronicleBroker,
    DramatiqJobQueue,
    run_worker_forever,
    start_worker,
)
from infrastructure.scheduler_presence import process_started_at
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, RunnerThreads, bootstrap
from interfaces.http.app import create_app
from interfaces.supervisor import Supervisor

log = structlog.get_logger(__name__)

#: How often `projector` and `up` remove export files past the retention.
RETENTION_SWEEP_SECONDS = 60.0


def _require_shared_broker(settings: Settings, process: str) -> None:
    if settings.effective_broker_url.startswith("memory://"):
        raise click.UsageError(
            f"`chronicle {process}` needs CHRONICLE_BROKER_URL (amqp://… or redis://…): the"
            " in-process broker only exists inside `chronicle up`"
        )


def _broker(settings: Settings) -> ChronicleBroker:
    try:
        return ChronicleBroker.from_url(settings.effective_broker_url, prefix=settings.queue_prefix)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _on_signal(stop: threading.Event) -> None:
    """Set `stop` on SIGINT or SIGTERM."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)


def _wait_for_signal() -> None:
    stop = threading.Event()
    _on_signal(stop)
    while not stop.wait(0.5):
        pass


def _serve(chronicle: Chronicle, checks: dict[str, object], settings: Settings) -> None:
    app = create_app(chronicle, checks=checks)  # type: ignore[arg-type]
    log.info("api listening", url=f"http://{settings.host}:{settings.port}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


def run_api(settings: Settings) -> None:
    """`chronicle serve`: the REST API and dashboard."""
    chronicle = bootstrap(settings, connect_timeout=None)
    checks: dict[str, object] = {}
    setup = None
    if not settings.effective_broker_url.startswith("memory://"):
        setup = _broker(settings)
        checks["broker"] = setup.check
    try:
        _serve(chronicle, checks, settings)
    finally:
        if setup is not None:
            setup.close()
        chronicle.close()


def run_projector(settings: Settings) -> None:
    """`chronicle projector`: read models and the outbox relay, following the log."""
    _require_shared_broker(settings, "projector")
    chronicle = bootstrap(settings, connect_timeout=None)
    setup = _broker(settings)
    queue = DramatiqJobQueue(setup)
    chronicle.add_outbox(queue)
    threads = RunnerThreads(list(chronicle.runners.values())).start()
    # Export files past the retention are removed (and their exports say so) every minute.
    retention = chronicle.exports.sweeper(RETENTION_SWEEP_SECONDS).start()
    # Lost attempts and due jobs without a message are set going again.
    recovery = chronicle.recovery_sweeper(chronicle.recovery(queue)).start()
    log.info("projector running", projections=sorted(chronicle.runners))
    try:
        _wait_for_signal()
    finally:
        recovery.stop()
        retention.stop()
        threads.stop()
        queue.close()
        setup.close()
        chronicle.close()


def _handler(executor: JobExecutor) -> Callable[[str], None]:
    def handle(job_id: str) -> None:
        executor.process(UUID(job_id))

    return handle


def run_scheduler(settings: Settings) -> None:
    """`chronicle scheduler`: turn schedules into jobs at their due times."""
    # When the OS started this process: ticks due since then (during a slow start-up too)
    # are late, never missed.
    started_at = process_started_at()
    chronicle = bootstrap(settings, connect_timeout=None)
    scheduler = chronicle.scheduler(started_at=started_at)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), name="chronicle-scheduler")
    thread.start()
    try:
        _wait_for_signal()
    finally:
        stop.set()
        thread.join(10)
        chronicle.close()


def _worker_main(settings: Settings, queues: Sequence[str]) -> None:
    chronicle = bootstrap(settings, connect_timeout=None)
    setup = _broker(settings)
    queue = DramatiqJobQueue(setup)
    pauses = chronicle.pause_watcher()
    stopping = threading.Event()
    executor = chronicle.executor(queue, pauses=pauses, stopping=stopping)
    heartbeat = chronicle.heartbeat(executor, pauses)
    try:
        run_worker_forever(
            setup,
            queues=queues,
            threads=settings.worker_threads,
            handler=_handler(executor),
            paused=pauses.skipped,
            stopping=stopping,
        )
    finally:
        pauses.stop()
        heartbeat.stop()
        queue.close()
        setup.close()
        chronicle.close()


def _worker_child(settings: Settings, queues: Sequence[str]) -> None:
    from infrastructure.logging import configure_logging  # noqa: PLC0415 - child process

    configure_logging(settings.log_format, settings.log_level)
    _worker_main(settings, queues)


def run_workers(settings: Settings, queues: Sequence[str], processes: int) -> None:
    """`chronicle worker`: one process, or a parent that keeps `processes` children running
    (a child that dies is replaced, with a back-off)."""
    _require_shared_broker(settings, "worker")
    if processes == 1:
        _worker_main(settings, queues)
        return
    context = multiprocessing.get_context("spawn")

    def start(index: int) -> BaseProcess:
        child = context.Process(
            target=_worker_child, args=(settings, list(queues)), name=f"worker-{index}"
        )
        child.start()
        return child

    stop = threading.Event()
    _on_signal(stop)
    Supervisor(start, processes).run(stop)


def _first_admin(chronicle: Chronicle, settings: Settings) -> None:
    """On a store with no account, make `admin` and say how to sign in, once, on the
    terminal: never in a log line (the password is in no event either, only its hash)."""
    chronicle.runners["principals"].catch_up()
    password = create_first_admin(chronicle.accounts, chronicle.principals, settings.admin_password)
    if password is None:
        return
    url = f"http://{settings.host}:{settings.port}/"
    if settings.admin_password is not None:
        click.echo(
            f"Chronicle at {url}: account admin created (CHRONICLE_ADMIN_PASSWORD).", err=True
        )
        return
    click.echo(
        f"Chronicle at {url}: account admin created, password {password}\n"
        "  (shown this once; change it with `chronicle accounts passwd admin`)",
        err=True,
    )


def run_all_in_one(settings: Settings) -> None:
    """`chronicle up`: API, workers (threads), projector and relay in one process."""
    started_at = process_started_at()
    chronicle = bootstrap(settings, connect_timeout=None)
    _first_admin(chronicle, settings)
    setup = _broker(settings)
    queue = DramatiqJobQueue(setup)
    chronicle.add_outbox(queue)
    threads = RunnerThreads(list(chronicle.runners.values())).start()
    retention = chronicle.exports.sweeper(RETENTION_SWEEP_SECONDS).start()
    scheduler_stop = threading.Event()
    scheduler = threading.Thread(
        target=chronicle.scheduler(started_at=started_at).run,
        args=(scheduler_stop,),
        name="chronicle-scheduler",
    )
    scheduler.start()
    pauses = chronicle.pause_watcher()
    stopping = threading.Event()
    executor = chronicle.executor(queue, pauses=pauses, stopping=stopping)
    heartbeat = chronicle.heartbeat(executor, pauses)
    recovery = chronicle.recovery(queue)
    if settings.effective_broker_url.startswith("memory://"):
        # The in-process broker starts empty: every waiting job needs its message again.
        recovery.resend_waiting()
    sweeper = chronicle.recovery_sweeper(recovery).start()
    worker = start_worker(
        setup,
        queues=list(QUEUES),
        threads=settings.worker_threads,
        handler=_handler(executor),
        paused=pauses.skipped,
        stopping=stopping,
    )
    where = (
        f"embedded store in {settings.data_dir}"
        if settings.embedded
        else f"PostgreSQL schema {settings.database_schema}"
    )
    log.info("chronicle up", store=where, broker=settings.effective_broker_url.split("://")[0])
    checks: dict[str, object] = {"broker": setup.check}
    try:
        _serve(chronicle, checks, settings)
    finally:
        worker.stop(10)
        sweeper.stop()
        pauses.stop()
        heartbeat.stop()
        scheduler_stop.set()
        scheduler.join(10)
        retention.stop()
        threads.stop()
        queue.close()
        setup.close()
        chronicle.close()
