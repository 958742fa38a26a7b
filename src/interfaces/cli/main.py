"""The `chronicle` command: run the processes, inspect jobs, rebuild read models."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from application.jobs import DispatchRequest
from domain.job import QUEUES
from domain.shared import DomainError
from infrastructure.logging import configure_logging
from infrastructure.settings import Settings, SettingsError, load_settings
from interfaces import processes
from interfaces.bootstrap import PROJECTIONS, Chronicle, bootstrap
from interfaces.cli.batches import batches
from interfaces.cli.exports import export, exports
from interfaces.cli.imports import import_file, imports
from interfaces.cli.jobs import jobs
from interfaces.cli.queues import queues
from interfaces.cli.schedules import schedules

F = TypeVar("F", bound=Callable[..., Any])


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings().with_overrides(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


@contextmanager
def _chronicle(settings: Settings) -> Iterator[Chronicle]:
    try:
        app = bootstrap(settings)
    except Exception as exc:
        raise click.ClickException(f"cannot open the Chronicle store: {exc}") from None
    try:
        yield app
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        app.close()


def _catch_up_if_embedded(app: Chronicle) -> None:
    # With the embedded store there may be no projector running: bring the read models
    # up to date before reading them (safe: projections are exactly-once and serialised).
    if app.settings.embedded:
        for runner in app.projection_runners():
            runner.catch_up()


def _host_port(func: F) -> F:
    func = click.option(
        "--port", type=click.IntRange(1, 65535), help="Port (CHRONICLE_PORT, default 8000)."
    )(func)
    return click.option("--host", help="Address to bind (CHRONICLE_HOST, default 127.0.0.1).")(func)


def _parse_queues(value: str) -> list[str]:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chronicle")
def cli() -> None:
    """Chronicle: event-sourced jobs and schedules.

    Configuration comes from CHRONICLE_* environment variables (see the README); with none
    set, everything runs on the embedded store in ./.chronicle.
    """


@cli.command()
@_host_port
@click.option(
    "--threads", type=click.IntRange(1, 256), help="Worker threads (CHRONICLE_WORKER_THREADS)."
)
def up(host: str | None, port: int | None, threads: int | None) -> None:
    """Run everything in one process: API, workers, scheduler, projector."""
    settings = _settings(host=host, port=port, worker_threads=threads)
    processes.run_all_in_one(settings)


@cli.command()
@_host_port
def serve(host: str | None, port: int | None) -> None:
    """Run the REST API server."""
    settings = _settings(host=host, port=port)
    processes.run_api(settings)


@cli.command()
@click.option(
    "--queues",
    default="high,default,low",
    show_default=True,
    help="Queues to consume, highest priority first.",
)
@click.option(
    "--processes", "process_count", type=click.IntRange(1, 64), default=1, show_default=True
)
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per process (default 8).")
def worker(queues: str, process_count: int, threads: int | None) -> None:
    """Run a Dramatiq worker that executes jobs from the given queues in strict priority."""
    settings = _settings(worker_threads=threads)
    processes.run_workers(settings, _parse_queues(queues), process_count)


@cli.command()
def scheduler() -> None:
    """Turn active schedules into jobs at their due times (several may run at once)."""
    processes.run_scheduler(_settings())


@cli.command()
def projector() -> None:
    """Follow the event log: update read models and relay dispatched jobs to the broker."""
    processes.run_projector(_settings())


@cli.group()
def projections() -> None:
    """Inspect and rebuild read models."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one per projection.")
def projections_status(as_json: bool) -> None:
    """Position, head and lag of each projection."""
    with _chronicle(_settings()) as app:
        head = app.log.head()
        tracking = app.queries.tracking()
        rows = [
            {
                "name": name,
                "position": tracking.get(name, 0),
                "head": head,
                "lag": head - tracking.get(name, 0),
            }
            for name in (*PROJECTIONS, "batch_process", "system_jobs", "outbox")
        ]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(f"{'projection':<16}{'position':>12}{'head':>12}{'lag':>10}")
    for row in rows:
        click.echo(f"{row['name']:<16}{row['position']:>12}{row['head']:>12}{row['lag']:>10}")


@projections.command("rebuild")
@click.argument("name", required=False, type=click.Choice(PROJECTIONS))
def projections_rebuild(name: str | None) -> None:
    """Replay the log from zero into new tables, then swap them in (all when NAME is omitted).

    The live read model keeps serving until the rebuilt one replaces it.
    """
    with _chronicle(_settings()) as app:
        for projection in [name] if name else list(PROJECTIONS):
            runner = app.runners[projection]
            total = max(app.log.head(), 1)
            with click.progressbar(length=total, label=f"rebuilding {projection}") as bar:
                done = [0]

                def progress(
                    position: int, head: int, bar: Any = bar, done: list[int] = done
                ) -> None:
                    bar.length = max(head, 1)
                    bar.update(position - done[0])
                    done[0] = position

                position = runner.rebuild(progress)
            click.echo(f"{projection}: rebuilt up to position {position}")


@cli.command()
@click.argument("command_line")
@click.option("--queue", type=click.Choice(QUEUES), default="default", show_default=True)
@click.option("--delay", "delay_seconds", type=click.FloatRange(min=0), default=0.0)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--timeout", "timeout_seconds", type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--idempotency-key",
    help="Run again with the same key (and arguments), dispatch nothing and print the first id.",
)
def dispatch(
    command_line: str,
    queue: str,
    delay_seconds: float,
    max_attempts: int,
    timeout_seconds: float | None,
    idempotency_key: str | None,
) -> None:
    """Dispatch a job, e.g. chronicle dispatch "demo:echo hello --upper"."""
    with _chronicle(_settings()) as app:
        [job_id] = app.jobs.dispatch_many(
            [
                DispatchRequest(
                    command_line=command_line,
                    queue=queue,
                    delay_seconds=delay_seconds,
                    max_attempts=max_attempts,
                    timeout_seconds=timeout_seconds,
                    requested_by=f"cli:{getpass.getuser()}",
                )
            ],
            idempotency_key=idempotency_key,
        )
    click.echo(str(job_id))


@cli.command("commands")
def list_commands() -> None:
    """List the registered commands and their usage."""
    with _chronicle(_settings()) as app:
        for signature in app.registry.signatures():
            click.echo(f"{signature.usage():<60} {signature.description}")


def _fmt_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


cli.add_command(jobs)
cli.add_command(schedules)
cli.add_command(queues)
cli.add_command(batches)
cli.add_command(import_file)
cli.add_command(imports)
cli.add_command(export)
cli.add_command(exports)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
