"""`chronicle commands`: the registered commands and their usage."""

from __future__ import annotations

import click

from interfaces.cli.common import open_chronicle


@click.command("commands")
def list_commands() -> None:
    """List the registered commands and their usage."""
    with open_chronicle() as app:
        for signature in app.registry.signatures():
            click.echo(f"{signature.usage():<60} {signature.description}")
