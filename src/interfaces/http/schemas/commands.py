"""Response bodies of the commands API: registered commands and their signatures."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from application.commands import Signature


class ArgumentSpec(Struct, kw_only=True):
    """A positional argument of a command."""

    name: str
    type: str
    required: bool
    default: Any
    help: str
    choices: list[str] | None
    minimum: Annotated[float | None, Meta(description="Smallest value allowed (int, float).")]
    maximum: Annotated[float | None, Meta(description="Largest value allowed (int, float).")]


class OptionSpec(Struct, kw_only=True):
    """An option (`--name=value`) or flag (`--name` / `--no-name`) of a command."""

    name: str
    type: str
    default: Any
    help: str
    choices: list[str] | None
    minimum: Annotated[float | None, Meta(description="Smallest value allowed (int, float).")]
    maximum: Annotated[float | None, Meta(description="Largest value allowed (int, float).")]
    flag: bool


class CommandSignature(Struct, kw_only=True):
    """What a registered command accepts."""

    name: str
    description: str
    usage: str
    arguments: list[ArgumentSpec]
    options: list[OptionSpec]


def command_signature(signature: Signature) -> CommandSignature:
    return msgspec.convert(signature.to_dict(), CommandSignature)
