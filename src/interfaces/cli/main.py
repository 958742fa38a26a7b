"""The `chronicle` command: assembles the command groups of `interfaces.cli`."""

from __future__ import annotations

import sys

import click

from interfaces.cli.accounts import accounts
from interfaces.cli.batches import batches
from interfaces.cli.commands import list_commands
from interfaces.cli.exports import export, exports
from interfaces.cli.imports import import_file, imports
from interfaces.cli.jobs import dispatch, jobs
from interfaces.cli.projections import projections
from interfaces.cli.queues import queues
from interfaces.cli.run import projector, scheduler, serve, up, worker
from interfaces.cli.schedules import schedules
from interfaces.cli.tokens import tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chronicle")
def cli() -> None:
    """Chronicle: event-sourced jobs and schedules.

    Configuration comes from CHRONICLE_* environment variables (see the README); with none
    set, everything runs on the embedded store in ./.chronicle.
    """


for command in (
    up,
    serve,
    worker,
    scheduler,
    projector,
    projections,
    dispatch,
    list_commands,
    jobs,
    schedules,
    queues,
    batches,
    import_file,
    imports,
    export,
    exports,
    accounts,
    tokens,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
