"""`chronicle up|serve|worker|scheduler|projector`: run Chronicle's processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from domain.job import QUEUES
from interfaces import processes
from interfaces.cli.common import cli_settings

F = TypeVar("F", bound=Callable[..., Any])


def host_port(func: F) -> F:
    func = click.option(
        "--port", type=click.IntRange(1, 65535), help="Port (CHRONICLE_PORT, default 8000)."
    )(func)
    return click.option("--host", help="Address to bind (CHRONICLE_HOST, default 127.0.0.1).")(func)


def parse_queues(value: str) -> list[str]:
    queues = [q.strip() for q in value.split(",") if q.strip()]
    unknown = [q for q in queues if q not in QUEUES]
    if unknown or not queues:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(unknown) or '(none)'}: use a comma-separated list"
            f" of {', '.join(QUEUES)}, highest priority first"
        )
    if len(set(queues)) != len(queues):
        raise click.BadParameter("a queue is listed twice")
    return queues


@click.command()
@host_port
@click.option(
    "--threads", type=click.IntRange(1, 256), help="Worker threads (CHRONICLE_WORKER_THREADS)."
)
def up(host: str | None, port: int | None, threads: int | None) -> None:
    """Run everything in one process: API, workers, scheduler, projector."""
    settings = cli_settings(host=host, port=port, worker_threads=threads)
    processes.run_all_in_one(settings)


@click.command()
@host_port
def serve(host: str | None, port: int | None) -> None:
    """Run the REST API server."""
    settings = cli_settings(host=host, port=port)
    processes.run_api(settings)


@click.command()
@click.option(
    "--queues",
    default=",".join(QUEUES),
    show_default=True,
    help="Queues to consume, highest priority first.",
)
@click.option(
    "--processes", "process_count", type=click.IntRange(1, 64), default=1, show_default=True
)
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per process (default 8).")
def worker(queues: str, process_count: int, threads: int | None) -> None:
    """Run a Dramatiq worker that executes jobs from the given queues in strict priority."""
    settings = cli_settings(worker_threads=threads)
    processes.run_workers(settings, parse_queues(queues), process_count)


@click.command()
def scheduler() -> None:
    """Turn active schedules into jobs at their due times (several may run at once)."""
    processes.run_scheduler(cli_settings())


@click.command()
def projector() -> None:
    """Follow the event log: update read models and relay dispatched jobs to the broker."""
    processes.run_projector(cli_settings())
