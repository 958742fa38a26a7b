"""`/api/commands`: the registered commands a job may run, with their signatures."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from interfaces.bootstrap import Chronicle
from interfaces.http.schemas.commands import CommandSignature, command_signature


class CommandController(Controller):
    """Registered commands."""

    path = "/api/commands"
    tags = ["commands"]

    @get(
        "/",
        operation_id="listCommands",
        summary="Registered commands",
        description=(
            "Every command a job may run, by name, with its arguments and options "
            "(type, default, help, choices) and a usage line."
        ),
        sync_to_thread=False,
    )
    def list_commands(self, chronicle: NamedDependency[Chronicle]) -> list[CommandSignature]:
        return [command_signature(signature) for signature in chronicle.registry.signatures()]
