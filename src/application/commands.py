"""Command registry: signatures inferred from functions, command-line parsing and the context."""

from __future__ import annotations

import difflib
import inspect
import math
import re
import shlex
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints
from uuid import UUID

from domain.shared import ValidationError

__all__ = [
    "COMMAND_NAME_PATTERN",
    "Argument",
    "CommandCancelledError",
    "CommandContext",
    "CommandLineError",
    "CommandRegistry",
    "Help",
    "Option",
    "ParsedCommand",
    "Range",
    "RegisteredCommand",
    "Signature",
    "command",
    "default_registry",
]

COMMAND_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_-]*)*$")

_TYPE_NAMES: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool"}
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false (true/false/1/0/yes/no)",
}
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})

F = TypeVar("F", bound=Callable[..., Any])


class CommandLineError(ValidationError):
    """A command line or JSON command input is invalid; the message names problem and command."""


class CommandCancelledError(Exception):
    """Raised inside a running command once cancellation of its job has been seen."""


@dataclass(frozen=True)
class Help:
    """Help text for a command parameter, attached with `Annotated[T, Help("...")]`."""

    text: str


@dataclass(frozen=True)
class Range:
    """Bounds of an int or float parameter, both included: `Annotated[int, Range(1, 100)]`;
    None leaves a side open. A value outside is refused with a message naming the bounds."""

    minimum: float | None = None
    maximum: float | None = None

    def contains(self, value: float) -> bool:
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"between {_to_text(self.minimum)} and {_to_text(self.maximum)}"
        if self.minimum is not None:
            return f"at least {_to_text(self.minimum)}"
        return f"at most {_to_text(self.maximum)}"


@dataclass(frozen=True, kw_only=True)
class _Parameter(ABC):
    name: str
    type: str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    bounds: Range | None = None

    @property
    def minimum(self) -> float | None:
        return self.bounds.minimum if self.bounds else None

    @property
    def maximum(self) -> float | None:
        return self.bounds.maximum if self.bounds else None

    @property
    @abstractmethod
    def label(self) -> str:
        """How messages name it: "argument 'year'" or "option '--format'"."""

    @property
    @abstractmethod
    def field_path(self) -> str:
        """Where it sits in a JSON request: "arguments.year" or "options.format"."""


@dataclass(frozen=True, kw_only=True)
class Argument(_Parameter):
    """A positional argument of a command; `default` only matters when not `required`."""

    required: bool = True

    @property
    def label(self) -> str:
        return f"argument {self.name!r}"

    @property
    def field_path(self) -> str:
        return f"arguments.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": None if self.required else self.default,
            "help": self.help,
            "choices": list(self.choices) or None,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


@dataclass(frozen=True, kw_only=True)
class Option(_Parameter):
    """A named option (`--name=value`) or, for booleans, a flag (`--name` / `--no-name`)."""

    @property
    def cli_name(self) -> str:
        return self.name.replace("_", "-")

    @property
    def flag(self) -> bool:
        return self.type == "bool"

    @property
    def label(self) -> str:
        return f"{'flag' if self.flag else 'option'} '--{self.cli_name}'"

    @property
    def field_path(self) -> str:
        return f"options.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.cli_name,
            "type": self.type,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) or None,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "flag": self.flag,
        }


@dataclass(frozen=True)
class Signature:
    """What a command accepts: its name, description, arguments and options."""

    name: str
    description: str
    arguments: tuple[Argument, ...]
    options: tuple[Option, ...]

    def usage(self) -> str:
        parts = [self.name]
        parts.extend(f"<{a.name}>" if a.required else f"[<{a.name}>]" for a in self.arguments)
        for opt in self.options:
            if opt.flag:
                parts.append(f"[--no-{opt.cli_name}]" if opt.default else f"[--{opt.cli_name}]")
            else:
                parts.append(f"[--{opt.cli_name}={shlex.quote(_to_text(opt.default))}]")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "usage": self.usage(),
            "arguments": [arg.to_dict() for arg in self.arguments],
            "options": [opt.to_dict() for opt in self.options],
        }

    def find_argument(self, key: str) -> Argument:
        name = key.replace("-", "_")
        for arg in self.arguments:
            if arg.name == name:
                return arg
        raise CommandLineError(
            f"unknown argument {key!r} for {self.name}"
            + _suggestion(name, [a.name for a in self.arguments]),
            field=f"arguments.{key}",
        )

    def find_option(self, key: str) -> Option:
        """The option named `key` (dashes or underscores, no leading `--`)."""
        name = key.replace("-", "_")
        for opt in self.options:
            if opt.name == name:
                return opt
        raise CommandLineError(
            f"unknown option {key!r} for {self.name}"
            + _suggestion(key, [o.cli_name for o in self.options]),
            field=f"options.{key}",
        )

    def find_cli_option(self, key: str) -> tuple[Option, bool]:
        """The option spelled `--key` on a command line, and whether it was negated (`--no-`)."""
        for opt in self.options:
            if opt.cli_name == key:
                return opt, False
        if key.startswith("no-"):
            for opt in self.options:
                if opt.flag and opt.cli_name == key[3:]:
                    return opt, True
        spellings = [f"--{o.cli_name}" for o in self.options]
        spellings += [f"--no-{o.cli_name}" for o in self.options if o.flag]
        raise CommandLineError(
            f"unknown option '--{key}' for {self.name}" + _suggestion(f"--{key}", spellings),
            field=f"options.{key}",
        )


@dataclass(frozen=True)
class ParsedCommand:
    """A command with typed, validated values: every argument and option present."""

    name: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    signature: Signature = field(compare=False, repr=False)

    def command_line(self) -> str:
        """Canonical form: re-parses to an equal command; options only when not default."""
        sig = self.signature
        last = -1
        for index, arg in enumerate(sig.arguments):
            if arg.required or self.arguments[arg.name] != arg.default:
                last = index
        texts = [_to_text(self.arguments[arg.name]) for arg in sig.arguments[: last + 1]]
        words = [shlex.quote(text) for text in texts]
        flags: list[str] = []
        for opt in sig.options:
            value = self.options[opt.name]
            if value == opt.default:
                continue
            if opt.flag:
                flags.append(f"--{opt.cli_name}" if value else f"--no-{opt.cli_name}")
            else:
                flags.append(f"--{opt.cli_name}={shlex.quote(_to_text(value))}")
        # A positional value that looks like an option would be misread, so `--` shields it.
        if any(text.startswith("--") for text in texts):
            return " ".join([self.name, *flags, "--", *words])
        return " ".join([self.name, *words, *flags])


@dataclass(frozen=True)
class RegisteredCommand:
    """A command's signature and the function that implements it."""

    signature: Signature
    function: Callable[..., Any] = field(repr=False)

    @property
    def name(self) -> str:
        return self.signature.name

    def parse_tokens(self, tokens: Sequence[str]) -> ParsedCommand:
        """Parse the words after the command name (already split like a shell would)."""
        return _LineParser(self.signature).parse(tokens)

    def bind(
        self,
        arguments: Sequence[Any] | Mapping[str, Any] | None,
        options: Mapping[str, Any] | None,
    ) -> ParsedCommand:
        """Validate JSON-style values (see `CommandRegistry.validate`)."""
        sig = self.signature
        given_arguments = _bind_arguments(sig, arguments)
        given_options = _bind_options(sig, options)
        return _complete(sig, given_arguments, given_options)

    def run(
        self,
        ctx: CommandContext,
        arguments: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None,
    ) -> Any:
        """Call the function; stored values are re-validated since they crossed a JSON store."""
        bound = self.bind(dict(arguments or {}), options)
        positional = [bound.arguments[arg.name] for arg in self.signature.arguments]
        return self.function(ctx, *positional, **bound.options)


class CommandRegistry:
    """The commands jobs may run, by name.

    A registry made with a `parent` sees the parent's commands (also those registered on it
    later) and adds its own: each Chronicle adds its system commands (imports, exports) to a
    child of the application's registry.
    """

    def __init__(self, parent: CommandRegistry | None = None) -> None:
        self._commands: dict[str, RegisteredCommand] = {}
        self._parent = parent

    def register(
        self, name: str, function: Callable[..., Any], *, description: str = ""
    ) -> RegisteredCommand:
        """Register `function` as command `name`, its signature inferred from its parameters."""
        if not COMMAND_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"invalid command name {name!r}: use lowercase words separated by ':' "
                "(e.g. 'survey:export')"
            )
        if name in self:
            raise ValueError(f"command {name!r} is already registered")
        if not description:
            doc = inspect.getdoc(function) or ""
            description = doc.strip().splitlines()[0] if doc.strip() else ""
        registered = RegisteredCommand(_infer_signature(name, description, function), function)
        self._commands[name] = registered
        return registered

    def command(self, name: str, *, description: str = "") -> Callable[[F], F]:
        """Decorator form of `register`; returns the function unchanged."""

        def decorate(function: F) -> F:
            self.register(name, function, description=description)
            return function

        return decorate

    def _find(self, name: str) -> RegisteredCommand | None:
        found = self._commands.get(name)
        if found is None and self._parent is not None:
            return self._parent._find(name)  # noqa: SLF001 - same class
        return found

    def get(self, name: str) -> RegisteredCommand:
        found = self._find(name)
        if found is None:
            raise CommandLineError(
                f"unknown command {name!r}" + _suggestion(name, self.names()),
                field="command",
            )
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def names(self) -> list[str]:
        inherited = self._parent.names() if self._parent is not None else []
        return sorted({*inherited, *self._commands})

    def signatures(self) -> list[Signature]:
        return [self.get(name).signature for name in self.names()]

    def parse(self, command_line: str) -> ParsedCommand:
        """Parse a shell-like command line: name, then arguments and options in any order."""
        try:
            tokens = shlex.split(command_line)
        except ValueError as exc:
            raise CommandLineError(
                f"cannot parse command line: {str(exc).lower()} (unbalanced quotes?)",
                field="command_line",
            ) from None
        if not tokens:
            raise CommandLineError("empty command line: give a command name", field="command_line")
        return self.get(tokens[0]).parse_tokens(tokens[1:])

    def validate(
        self,
        name: str,
        arguments: list[Any] | dict[str, Any] | None,
        options: dict[str, Any] | None,
    ) -> ParsedCommand:
        """Validate JSON input: arguments by position or name, option keys with - or _."""
        return self.get(name).bind(arguments, options)


default_registry = CommandRegistry()
command = default_registry.command


class CommandContext:
    """What a running command sees: its job, bounded captured output and cancellation."""

    CANCEL_CHECK_INTERVAL = 0.5
    SLEEP_SLICE = 0.1

    def __init__(
        self,
        *,
        job_id: UUID,
        attempt: int,
        is_cancelled: Callable[[], bool],
        max_output_chars: int = 64_000,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_output_chars < 0:
            raise ValueError("max_output_chars must not be negative")
        self.job_id = job_id
        self.attempt = attempt
        self._is_cancelled = is_cancelled
        self._max_output_chars = max_output_chars
        self._monotonic = monotonic
        self._sleep = sleep
        self._parts: list[str] = []
        self._kept = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._cancelled = False

    def write(self, text: str) -> None:
        """Append one line to the output; past the limit, output is counted but dropped."""
        piece = f"{text}\n"
        # The worker may read `output` from another thread while the command writes.
        with self._lock:
            room = self._max_output_chars - self._kept
            if len(piece) <= room:
                self._parts.append(piece)
                self._kept += len(piece)
                return
            if room > 0:
                self._parts.append(piece[:room])
                self._kept += room
            self._dropped += len(piece) - max(room, 0)

    @property
    def output(self) -> str:
        with self._lock:
            kept = "".join(self._parts)
            dropped = self._dropped
        if not dropped:
            return kept
        # The marker must fit in the limit too, or whoever stores the output would cut it off.
        cut = 0
        while True:
            marker = f"[output truncated: {dropped + cut} characters dropped]"
            budget = max(0, self._max_output_chars - len(marker) - 1)
            needed = max(0, len(kept) - budget)
            if needed == cut:
                break
            cut = needed
        body = kept[: len(kept) - cut]
        if body and not body.endswith("\n"):
            body += "\n"
        return f"{body}{marker}"

    @property
    def cancelled(self) -> bool:
        """Whether the job was cancelled; asks at most every 0.5 s since asking costs I/O."""
        if self._cancelled:
            return True
        now = self._monotonic()
        if self._checked_at is None or now - self._checked_at >= self.CANCEL_CHECK_INTERVAL:
            self._checked_at = now
            self._cancelled = bool(self._is_cancelled())
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise CommandCancelledError(f"job {self.job_id} was cancelled")

    def sleep(self, seconds: float) -> None:
        """Sleep in short slices so cancellation interrupts within about 0.1 s of being seen."""
        deadline = self._monotonic() + max(0.0, seconds)
        while True:
            self.raise_if_cancelled()
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return
            self._sleep(min(self.SLEEP_SLICE, remaining))


# -- signature inference --------------------------------------------------------------------


def _infer_signature(name: str, description: str, function: Callable[..., Any]) -> Signature:
    where = f"command {name!r} ({getattr(function, '__qualname__', function)!r})"
    try:
        hints = get_type_hints(function, include_extras=True)
    except Exception as exc:
        raise TypeError(f"{where}: cannot resolve type annotations: {exc}") from exc
    params = list(inspect.signature(function).parameters.values())
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional_kinds:
        raise TypeError(f"{where}: the first parameter must be the CommandContext")
    arguments: list[Argument] = []
    options: list[Option] = []
    for param in params[1:]:
        if param.name.startswith("_"):
            raise TypeError(f"{where}: parameter {param.name!r} must not start with '_'")
        if param.name not in hints:
            raise TypeError(f"{where}: parameter {param.name!r} needs a type annotation")
        annotation = _unpack_annotation(hints[param.name], where, param.name)
        if param.kind in positional_kinds:
            arguments.append(
                _make_argument(param, annotation=annotation, where=where, previous=arguments)
            )
        elif param.kind is inspect.Parameter.KEYWORD_ONLY:
            options.append(_make_option(param, annotation=annotation, where=where))
        else:
            raise TypeError(f"{where}: *args and **kwargs are not supported ({param.name!r})")
    _check_negations(options, where)
    return Signature(name, description, tuple(arguments), tuple(options))


@dataclass(frozen=True)
class _Annotation:
    """What a parameter's annotation says: its type, help, choices and bounds."""

    type_name: str
    help_text: str = ""
    choices: tuple[str, ...] = ()
    bounds: Range | None = None


def _unpack_annotation(annotation: Any, where: str, param: str) -> _Annotation:
    help_text = ""
    bounds = None
    base = annotation
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        help_text = next((m.text for m in metadata if isinstance(m, Help)), "")
        bounds = next((m for m in metadata if isinstance(m, Range)), None)
    if get_origin(base) is Literal:
        choices = get_args(base)
        if not choices or not all(isinstance(choice, str) for choice in choices):
            raise TypeError(f"{where}: parameter {param!r}: Literal choices must be strings")
        unpacked = _Annotation("str", help_text, tuple(choices), bounds)
    elif isinstance(base, type) and base in _TYPE_NAMES:
        unpacked = _Annotation(_TYPE_NAMES[base], help_text, (), bounds)
    else:
        raise TypeError(
            f"{where}: parameter {param!r} has unsupported type {base!r} "
            "(use str, int, float, bool or Literal of strings)"
        )
    if bounds is not None:
        _check_bounds(bounds, unpacked.type_name, where, param)
    return unpacked


def _check_bounds(bounds: Range, type_name: str, where: str, param: str) -> None:
    if type_name not in {"int", "float"}:
        raise TypeError(f"{where}: parameter {param!r}: Range applies to int and float only")
    ends = [end for end in (bounds.minimum, bounds.maximum) if end is not None]
    if not ends or not all(math.isfinite(end) for end in ends):
        raise TypeError(f"{where}: parameter {param!r}: Range needs finite bounds")
    if len(ends) == 2 and ends[0] > ends[1]:
        raise TypeError(f"{where}: parameter {param!r}: Range minimum is above its maximum")


def _make_argument(
    param: inspect.Parameter,
    *,
    annotation: _Annotation,
    where: str,
    previous: list[Argument],
) -> Argument:
    type_name = annotation.type_name
    if type_name == "bool":
        raise TypeError(f"{where}: argument {param.name!r}: bool is only allowed for options")
    required = param.default is inspect.Parameter.empty
    if required and any(not arg.required for arg in previous):
        raise TypeError(
            f"{where}: required argument {param.name!r} follows an argument with a default"
        )
    return Argument(
        name=param.name,
        type=type_name,
        default=None if required else _check_default(param.name, annotation, param.default, where),
        help=annotation.help_text,
        choices=annotation.choices,
        bounds=annotation.bounds,
        required=required,
    )


def _make_option(param: inspect.Parameter, *, annotation: _Annotation, where: str) -> Option:
    if param.default is inspect.Parameter.empty:
        raise TypeError(f"{where}: option {param.name!r} (keyword-only) needs a default")
    return Option(
        name=param.name,
        type=annotation.type_name,
        default=_check_default(param.name, annotation, param.default, where),
        help=annotation.help_text,
        choices=annotation.choices,
        bounds=annotation.bounds,
    )


def _check_default(name: str, annotation: _Annotation, default: Any, where: str) -> Any:
    type_name = annotation.type_name
    if type_name == "float" and type(default) is int:
        default = float(default)
    if _TYPE_NAMES.get(type(default)) != type_name:
        raise TypeError(f"{where}: default {default!r} of {name!r} is not {_TYPE_WORDS[type_name]}")
    if isinstance(default, float) and not math.isfinite(default):
        raise TypeError(f"{where}: default {default!r} of {name!r} is not a finite number")
    if annotation.choices and default not in annotation.choices:
        raise TypeError(f"{where}: default {default!r} of {name!r} is not one of its choices")
    if annotation.bounds and not annotation.bounds.contains(default):
        raise TypeError(f"{where}: default {default!r} of {name!r} is outside its Range")
    return default


def _check_negations(options: list[Option], where: str) -> None:
    cli_names = {opt.cli_name for opt in options}
    for opt in options:
        if opt.flag and f"no-{opt.cli_name}" in cli_names:
            raise TypeError(
                f"{where}: option '--no-{opt.cli_name}' clashes with the negation of flag "
                f"'--{opt.cli_name}'"
            )


# -- parsing and validation ----------------------------------------------------------------


class _LineParser:
    """Turns the words after a command name into typed values."""

    def __init__(self, signature: Signature) -> None:
        self.sig = signature
        self.positionals: list[str] = []
        self.options: dict[str, Any] = {}

    def parse(self, tokens: Sequence[str]) -> ParsedCommand:
        index = 0
        only_positionals = False
        while index < len(tokens):
            word = tokens[index]
            index += 1
            if only_positionals or not word.startswith("--"):
                self.positionals.append(word)
            elif word == "--":
                only_positionals = True
            else:
                index = self._take_option(word, tokens, index)
        return _complete(self.sig, self._arguments(), self.options)

    def _take_option(self, token: str, tokens: Sequence[str], index: int) -> int:
        key, has_value, inline = token[2:].partition("=")
        value = inline if has_value else None
        option, negated = self.sig.find_cli_option(key)
        if option.name in self.options:
            raise CommandLineError(
                f"{option.label} of {self.sig.name} given more than once",
                field=option.field_path,
            )
        if option.flag and negated:
            if value is not None:
                raise CommandLineError(
                    f"flag '--{key}' of {self.sig.name} takes no value, got {value!r}",
                    field=option.field_path,
                )
            self.options[option.name] = False
        elif option.flag:
            self.options[option.name] = (
                True if value is None else _from_text(option, value, self.sig)
            )
        else:
            if value is None:
                if index >= len(tokens) or tokens[index].startswith("--"):
                    raise CommandLineError(
                        f"{option.label} of {self.sig.name} needs a value "
                        f"(--{option.cli_name}=VALUE)",
                        field=option.field_path,
                    )
                value = tokens[index]
                index += 1
            self.options[option.name] = _from_text(option, value, self.sig)
        return index

    def _arguments(self) -> dict[str, Any]:
        _check_count(self.sig, self.positionals)
        return {
            arg.name: _from_text(arg, text, self.sig)
            for arg, text in zip(self.sig.arguments, self.positionals, strict=False)
        }


def _check_count(sig: Signature, values: Sequence[Any]) -> None:
    if len(values) > len(sig.arguments):
        extra = ", ".join(_describe(value) for value in values[len(sig.arguments) :])
        raise CommandLineError(
            f"too many arguments for {sig.name}: expected at most {len(sig.arguments)}, "
            f"got {len(values)} (unexpected {extra}); usage: {sig.usage()}",
            field="arguments",
        )


def _bind_arguments(
    sig: Signature, arguments: Sequence[Any] | Mapping[str, Any] | None
) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping):
        bound: dict[str, Any] = {}
        for key, value in arguments.items():
            arg = sig.find_argument(str(key))
            if arg.name in bound:
                raise CommandLineError(
                    f"{arg.label} of {sig.name} given more than once", field=arg.field_path
                )
            bound[arg.name] = _from_json(arg, value, sig)
        return bound
    if isinstance(arguments, (list, tuple)):
        _check_count(sig, arguments)
        return {
            arg.name: _from_json(arg, value, sig)
            for arg, value in zip(sig.arguments, arguments, strict=False)
        }
    raise CommandLineError(
        f"arguments of {sig.name} must be a list or an object, got {_describe(arguments)}",
        field="arguments",
    )


def _bind_options(sig: Signature, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise CommandLineError(
            f"options of {sig.name} must be an object, got {_describe(options)}", field="options"
        )
    bound: dict[str, Any] = {}
    for key, value in options.items():
        option = sig.find_option(str(key))
        if option.name in bound:
            raise CommandLineError(
                f"{option.label} of {sig.name} given more than once", field=option.field_path
            )
        bound[option.name] = _from_json(option, value, sig)
    return bound


def _complete(
    sig: Signature, arguments: Mapping[str, Any], options: Mapping[str, Any]
) -> ParsedCommand:
    missing = [arg.name for arg in sig.arguments if arg.required and arg.name not in arguments]
    if missing:
        noun = "argument" if len(missing) == 1 else "arguments"
        names = ", ".join(repr(name) for name in missing)
        raise CommandLineError(
            f"missing {noun} {names} for {sig.name}; usage: {sig.usage()}",
            field=f"arguments.{missing[0]}",
        )
    return ParsedCommand(
        name=sig.name,
        arguments={arg.name: arguments.get(arg.name, arg.default) for arg in sig.arguments},
        options={opt.name: options.get(opt.name, opt.default) for opt in sig.options},
        signature=sig,
    )


# Values are stored as JSON and in 64-bit database columns: integers stay within that range.
_INT_LIMIT = 2**63


def _int_in_range(value: int) -> bool:
    return -_INT_LIMIT <= value < _INT_LIMIT


def _from_text(param: _Parameter, text: str, sig: Signature) -> Any:
    value: Any = text
    if param.type == "int":
        # The length check comes first: int() refuses (slowly) strings of thousands of digits.
        if len(text) > 20 or not _INT_TEXT.fullmatch(text) or not _int_in_range(int(text)):
            raise _type_error(param, text, sig)
        value = int(text)
    elif param.type == "float":
        try:
            value = float(text)
        except ValueError:
            raise _type_error(param, text, sig) from None
        if not math.isfinite(value):
            raise _type_error(param, text, sig)
    elif param.type == "bool":
        word = text.strip().lower()
        if word not in _TRUE_WORDS | _FALSE_WORDS:
            raise _type_error(param, text, sig)
        value = word in _TRUE_WORDS
    return _check_allowed(param, value, sig)


def _from_json(param: _Parameter, value: Any, sig: Signature) -> Any:
    if isinstance(value, str):
        return _from_text(param, value, sig)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if param.type == "bool" and isinstance(value, bool):
        return value
    if param.type == "int" and is_number and isinstance(value, int) and _int_in_range(value):
        return _check_allowed(param, value, sig)
    if param.type == "float" and is_number:
        try:
            number = float(value)
        except OverflowError:
            raise _type_error(param, value, sig) from None
        if math.isfinite(number):
            return _check_allowed(param, number, sig)
    raise _type_error(param, value, sig)


def _check_allowed(param: _Parameter, value: Any, sig: Signature) -> Any:
    if param.bounds and not param.bounds.contains(value):
        raise CommandLineError(
            f"{param.label} of {sig.name} must be {param.bounds.describe()}, "
            f"got {_describe(value)}",
            field=param.field_path,
        )
    if param.choices and value not in param.choices:
        allowed = ", ".join(repr(choice) for choice in param.choices)
        raise CommandLineError(
            f"{param.label} of {sig.name} must be one of {allowed}, got {_describe(value)}",
            field=param.field_path,
        )
    return value


def _type_error(param: _Parameter, value: Any, sig: Signature) -> CommandLineError:
    return CommandLineError(
        f"{param.label} of {sig.name} must be {_TYPE_WORDS[param.type]}, got {_describe(value)}",
        field=param.field_path,
    )


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _suggestion(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
