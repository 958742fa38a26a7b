"""What every `chronicle` command shares: settings, opening Chronicle, the actor, formatting."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from domain.shared import DomainError
from infrastructure.logging import configure_logging
from infrastructure.settings import Settings, SettingsError, load_settings
from interfaces.bootstrap import Chronicle, bootstrap


def cli_settings(**overrides: Any) -> Settings:
    """The CHRONICLE_* settings with the command's options on top; logging configured."""
    try:
        settings = load_settings().with_overrides(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


@contextmanager
def open_chronicle(settings: Settings | None = None) -> Iterator[Chronicle]:
    """Chronicle on the given (by default the CHRONICLE_*) settings, closed afterwards;
    a domain error becomes a ClickException with its message."""
    settings = settings if settings is not None else cli_settings()
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


def catch_up_if_embedded(app: Chronicle, *, batch_process: bool = False) -> None:
    """With the embedded store there may be no projector running: bring the read models
    (and, when asked, the batch process, which cancels a cancelled batch's jobs) up to date
    before reading them (safe: projections are exactly-once and serialised)."""
    if not app.settings.embedded:
        return
    if batch_process:
        app.runners["batch_process"].catch_up()
    for runner in app.projection_runners():
        runner.catch_up()


def cli_actor() -> str:
    """Who acts from the command line, as recorded on the events (`cli:<login>`)."""
    return f"cli:{getpass.getuser()}"


def fmt_time(moment: datetime | None) -> str:
    """A time for a terminal table, in UTC to the second; `-` for none."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
