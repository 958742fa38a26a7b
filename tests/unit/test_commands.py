"""Unit tests for the command registry, parsing, validation, the context and the built-ins."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal
from uuid import uuid4

import pytest

from application.builtin_commands import register_builtins
from application.commands import (
    Argument,
    CommandCancelledError,
    CommandContext,
    CommandLineError,
    CommandRegistry,
    Help,
    Option,
    ParsedCommand,
    Range,
    Signature,
    command,
    default_registry,
)
from domain.shared import ValidationError

# -- fixtures ---------------------------------------------------------------------------------


def export(
    ctx: CommandContext,
    year: Annotated[int, Help("survey year")],
    *,
    format: Annotated[Literal["pdf", "csv"], Help("pdf or csv")] = "csv",  # noqa: A002
    notify: bool = False,
    dry_run: Annotated[bool, Help("only pretend")] = False,
    ratio: float = 0.5,
    label: str = "",
) -> dict[str, Any]:
    ctx.write(f"exporting {year}")
    return {
        "year": year,
        "format": format,
        "notify": notify,
        "dry_run": dry_run,
        "ratio": ratio,
        "label": label,
    }


def copy(
    ctx: CommandContext,
    source: str,
    target: str = "out",
    count: int = 1,
    *,
    verbose: bool = True,
) -> tuple[str, str, int, bool]:
    """Copy things around.

    More text that is not part of the description.
    """
    return source, target, count, verbose


@pytest.fixture
def registry() -> CommandRegistry:
    reg = CommandRegistry()
    reg.register("survey:export", export, description="Export survey answers")
    reg.register("files:copy", copy)
    return reg


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_context(
    *,
    attempt: int = 1,
    is_cancelled: Any = None,
    max_output_chars: int = 64_000,
    fake: FakeTime | None = None,
) -> CommandContext:
    fake = fake or FakeTime()
    return CommandContext(
        job_id=uuid4(),
        attempt=attempt,
        is_cancelled=is_cancelled or (lambda: False),
        max_output_chars=max_output_chars,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )


def error_message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# -- registration and signatures ----------------------------------------------------------------


def test_signature_is_inferred_from_the_function(registry: CommandRegistry) -> None:
    sig = registry.get("survey:export").signature
    assert sig.name == "survey:export"
    assert sig.description == "Export survey answers"
    assert sig.arguments == (Argument(name="year", type="int", help="survey year"),)
    assert [opt.name for opt in sig.options] == ["format", "notify", "dry_run", "ratio", "label"]
    fmt = sig.options[0]
    assert fmt == Option(
        name="format", type="str", default="csv", help="pdf or csv", choices=("pdf", "csv")
    )
    assert not fmt.flag
    assert sig.options[1].flag
    assert sig.options[2].cli_name == "dry-run"
    assert sig.options[2].help == "only pretend"


def test_optional_arguments_and_docstring_description(registry: CommandRegistry) -> None:
    sig = registry.get("files:copy").signature
    assert sig.description == "Copy things around."
    assert [(a.name, a.required, a.default) for a in sig.arguments] == [
        ("source", True, None),
        ("target", False, "out"),
        ("count", False, 1),
    ]


def test_usage(registry: CommandRegistry) -> None:
    assert registry.get("survey:export").signature.usage() == (
        "survey:export <year> [--format=csv] [--notify] [--dry-run] [--ratio=0.5] [--label='']"
    )
    assert registry.get("files:copy").signature.usage() == (
        "files:copy <source> [<target>] [<count>] [--no-verbose]"
    )


def test_signature_to_dict_is_json_friendly(registry: CommandRegistry) -> None:
    data = registry.get("survey:export").signature.to_dict()
    assert data["name"] == "survey:export"
    assert data["description"] == "Export survey answers"
    assert data["usage"].startswith("survey:export <year>")
    assert data["arguments"] == [
        {
            "name": "year",
            "type": "int",
            "required": True,
            "default": None,
            "help": "survey year",
            "choices": None,
            "minimum": None,
            "maximum": None,
        }
    ]
    assert data["options"][0] == {
        "name": "format",
        "type": "str",
        "default": "csv",
        "help": "pdf or csv",
        "choices": ["pdf", "csv"],
        "minimum": None,
        "maximum": None,
        "flag": False,
    }
    assert data["options"][2]["name"] == "dry-run"
    assert data["options"][2]["flag"] is True


def test_decorator_registers_and_returns_the_function() -> None:
    reg = CommandRegistry()

    @reg.command("app:hello", description="Say hello")
    def hello(ctx: CommandContext, name: str) -> str:
        return f"hello {name}"

    assert hello(make_context(), "x") == "hello x"
    assert reg.names() == ["app:hello"]
    assert reg.get("app:hello").function is hello
    assert "app:hello" in reg
    assert "app:bye" not in reg


def test_module_level_registry_and_decorator() -> None:
    assert isinstance(default_registry, CommandRegistry)
    assert command == default_registry.command


def test_names_and_signatures_are_sorted(registry: CommandRegistry) -> None:
    assert registry.names() == ["files:copy", "survey:export"]
    assert [s.name for s in registry.signatures()] == ["files:copy", "survey:export"]
    assert all(isinstance(s, Signature) for s in registry.signatures())


@pytest.mark.parametrize("name", ["Survey", "survey:", ":x", "a b", "1abc", "a::b", "a:B"])
def test_invalid_command_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid command name"):
        CommandRegistry().register(name, copy)


@pytest.mark.parametrize("name", ["a", "survey:export", "db:seed-all", "x_y:z9:w-1"])
def test_valid_command_names(name: str) -> None:
    reg = CommandRegistry()
    reg.register(name, copy)
    assert reg.names() == [name]


def test_duplicate_name_is_rejected(registry: CommandRegistry) -> None:
    with pytest.raises(ValueError, match=r"'survey:export' is already registered"):
        registry.register("survey:export", copy)


def bad_list(ctx: CommandContext, items: list[int]) -> None: ...
def bad_bool_argument(ctx: CommandContext, on: bool) -> None: ...
def bad_option_without_default(ctx: CommandContext, *, level: int) -> None: ...
def bad_varargs_after_defaults(ctx: CommandContext, a: int = 1, *rest: int) -> None: ...
def bad_varargs(ctx: CommandContext, *rest: str) -> None: ...
def bad_kwargs(ctx: CommandContext, **extra: str) -> None: ...
def bad_unannotated(ctx: CommandContext, thing) -> None: ...  # type: ignore[no-untyped-def]
def bad_default_type(ctx: CommandContext, *, times: int = "1") -> None: ...  # type: ignore[assignment]
def bad_bool_for_int(ctx: CommandContext, *, times: int = True) -> None: ...
def bad_default_choice(ctx: CommandContext, *, f: Literal["a", "b"] = "c") -> None: ...  # type: ignore[assignment]
def bad_literal_ints(ctx: CommandContext, *, level: Literal[1, 2] = 1) -> None: ...
def bad_optional(ctx: CommandContext, *, name: str | None = None) -> None: ...
def bad_private(ctx: CommandContext, *, _hidden: int = 1) -> None: ...
def bad_nan_default(ctx: CommandContext, *, x: float = float("nan")) -> None: ...
def bad_negation_clash(ctx: CommandContext, *, cache: bool = False, no_cache: int = 0) -> None: ...
def bad_no_context() -> None: ...
def bad_keyword_context(*, ctx: CommandContext) -> None: ...


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (bad_list, "parameter 'items' has unsupported type"),
        (bad_bool_argument, "argument 'on': bool is only allowed for options"),
        (bad_option_without_default, "option 'level' (keyword-only) needs a default"),
        (bad_varargs_after_defaults, "*args and **kwargs are not supported ('rest')"),
        (bad_varargs, "*args and **kwargs are not supported"),
        (bad_kwargs, "*args and **kwargs are not supported ('extra')"),
        (bad_unannotated, "parameter 'thing' needs a type annotation"),
        (bad_default_type, "default '1' of 'times' is not an integer"),
        (bad_bool_for_int, "default True of 'times' is not an integer"),
        (bad_default_choice, "default 'c' of 'f' is not one of its choices"),
        (bad_literal_ints, "parameter 'level': Literal choices must be strings"),
        (bad_optional, "parameter 'name' has unsupported type"),
        (bad_private, "parameter '_hidden' must not start with '_'"),
        (bad_nan_default, "is not a finite number"),
        (bad_negation_clash, "clashes with the negation of flag '--cache'"),
        (bad_no_context, "the first parameter must be the CommandContext"),
        (bad_keyword_context, "the first parameter must be the CommandContext"),
    ],
)
def test_unsupported_signatures_raise_type_error_naming_command_and_parameter(
    function: Any, expected: str
) -> None:
    with pytest.raises(TypeError) as excinfo:
        CommandRegistry().register("app:bad", function)
    message = error_message(excinfo)
    assert "command 'app:bad'" in message
    assert expected in message


def test_required_argument_after_defaulted_one_is_rejected() -> None:
    # Python's own syntax forbids this order, so only a forged __signature__ can produce it.
    def f(ctx: CommandContext, a: int = 1, b: int = 2) -> None: ...

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    f.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("ctx", kind),
            inspect.Parameter("a", kind, default=1, annotation=int),
            inspect.Parameter("b", kind, annotation=int),
        ],
        __validate_parameters__=False,
    )
    with pytest.raises(TypeError) as excinfo:
        CommandRegistry().register("app:bad", f)
    assert "command 'app:bad'" in error_message(excinfo)
    assert "required argument 'b' follows an argument with a default" in error_message(excinfo)


def test_unresolvable_annotation_is_a_type_error() -> None:
    def f(ctx: CommandContext, a: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match=r"command 'app:x'.*cannot resolve type annotations"):
        CommandRegistry().register("app:x", f)


def test_float_option_accepts_int_default() -> None:
    def f(ctx: CommandContext, *, seconds: float = 2) -> None: ...

    reg = CommandRegistry()
    reg.register("app:f", f)
    default = reg.get("app:f").signature.options[0].default
    assert default == 2.0
    assert isinstance(default, float)


def test_get_unknown_command_suggests(registry: CommandRegistry) -> None:
    with pytest.raises(CommandLineError) as excinfo:
        registry.get("survey:exprot")
    assert error_message(excinfo) == (
        "unknown command 'survey:exprot' (did you mean 'survey:export'?)"
    )
    assert excinfo.value.field == "command"
    with pytest.raises(CommandLineError, match=r"^unknown command 'zzz'$"):
        registry.get("zzz")


def test_command_line_error_is_a_validation_error() -> None:
    assert issubclass(CommandLineError, ValidationError)
    assert issubclass(CommandCancelledError, Exception)


# -- parsing ------------------------------------------------------------------------------------


def test_parse_minimal(registry: CommandRegistry) -> None:
    parsed = registry.parse("survey:export 2024")
    assert parsed == ParsedCommand(
        name="survey:export",
        arguments={"year": 2024},
        options={
            "format": "csv",
            "notify": False,
            "dry_run": False,
            "ratio": 0.5,
            "label": "",
        },
        signature=registry.get("survey:export").signature,
    )


@pytest.mark.parametrize(
    "line",
    [
        "survey:export 2024 --format=pdf --notify --dry-run --ratio=2 --label='a b'",
        "survey:export --format pdf 2024 --notify --dry-run --ratio 2 --label 'a b'",
        "survey:export --notify=yes --dry-run=1 --format=pdf --ratio=2.0 --label=a\\ b -- 2024",
        " survey:export  --label='a b'  --ratio=+2e0 --notify=TRUE --dry-run=Yes 2024 --format pdf",
    ],
)
def test_parse_options_in_any_order_and_spelling(registry: CommandRegistry, line: str) -> None:
    parsed = registry.parse(line)
    assert parsed.arguments == {"year": 2024}
    assert parsed.options == {
        "format": "pdf",
        "notify": True,
        "dry_run": True,
        "ratio": 2.0,
        "label": "a b",
    }
    assert isinstance(parsed.options["ratio"], float)


def test_parse_negated_and_false_flags(registry: CommandRegistry) -> None:
    assert registry.parse("files:copy a --no-verbose").options == {"verbose": False}
    assert registry.parse("files:copy a --verbose=no").options == {"verbose": False}
    assert registry.parse("files:copy a --verbose=0").options == {"verbose": False}
    assert registry.parse("files:copy a --verbose=false").options == {"verbose": False}
    assert registry.parse("files:copy a --verbose").options == {"verbose": True}


def test_parse_optional_arguments_and_negative_numbers(registry: CommandRegistry) -> None:
    assert registry.parse("files:copy a").arguments == {"source": "a", "target": "out", "count": 1}
    assert registry.parse("files:copy a b -3").arguments == {
        "source": "a",
        "target": "b",
        "count": -3,
    }
    assert registry.parse("survey:export -12").arguments == {"year": -12}


def test_double_dash_ends_options(registry: CommandRegistry) -> None:
    parsed = registry.parse("files:copy --no-verbose -- --weird -- 3")
    assert parsed.arguments == {"source": "--weird", "target": "--", "count": 3}
    assert parsed.options == {"verbose": False}


def test_option_value_may_contain_equals_and_start_with_dashes(registry: CommandRegistry) -> None:
    assert registry.parse("survey:export 1 --label=a=b").options["label"] == "a=b"
    assert registry.parse("survey:export 1 --label=--x").options["label"] == "--x"
    assert registry.parse("survey:export 1 --label=").options["label"] == ""
    assert registry.parse("survey:export 1 --label -5").options["label"] == "-5"


@pytest.mark.parametrize(
    ("line", "expected", "field"),
    [
        ("", "empty command line", "command_line"),
        ("   ", "empty command line", "command_line"),
        ("survey:export 'unbalanced", "no closing quotation", "command_line"),
        (
            "survey:exprot 1",
            "unknown command 'survey:exprot' (did you mean 'survey:export'?)",
            "command",
        ),
        (
            "survey:export 1 --fromat=pdf",
            "unknown option '--fromat' for survey:export (did you mean '--format'?)",
            "options.fromat",
        ),
        (
            "survey:export 1 --dry_run",
            "unknown option '--dry_run' for survey:export (did you mean '--dry-run'?)",
            "options.dry_run",
        ),
        (
            "files:copy a --no-verbse",
            "unknown option '--no-verbse' for files:copy (did you mean '--no-verbose'?)",
            "options.no-verbse",
        ),
        ("survey:export 1 --no-format", "unknown option '--no-format' for survey:export", None),
        ("survey:export 1 --zzzzzz", "unknown option '--zzzzzz' for survey:export", None),
        ("survey:export", "missing argument 'year' for survey:export", "arguments.year"),
        ("files:copy", "missing argument 'source' for files:copy", "arguments.source"),
        (
            "survey:export 1 2 3",
            "too many arguments for survey:export: expected at most 1, got 3 (unexpected '2', '3')",
            "arguments",
        ),
        (
            "survey:export abc",
            "argument 'year' of survey:export must be an integer, got 'abc'",
            "arguments.year",
        ),
        (
            "survey:export 1.5",
            "argument 'year' of survey:export must be an integer, got '1.5'",
            "arguments.year",
        ),
        (
            "survey:export 1 --ratio=lots",
            "option '--ratio' of survey:export must be a number, got 'lots'",
            "options.ratio",
        ),
        (
            "survey:export 1 --ratio=nan",
            "option '--ratio' of survey:export must be a number, got 'nan'",
            "options.ratio",
        ),
        (
            "survey:export 1 --ratio=inf",
            "option '--ratio' of survey:export must be a number, got 'inf'",
            "options.ratio",
        ),
        (
            "survey:export 1 --format=pdf --format=csv",
            "option '--format' of survey:export given more than once",
            "options.format",
        ),
        (
            "survey:export 1 --notify --no-notify",
            "flag '--notify' of survey:export given more than once",
            "options.notify",
        ),
        (
            "survey:export 1 --notify=maybe",
            "flag '--notify' of survey:export must be true or false",
            "options.notify",
        ),
        (
            "survey:export 1 --no-notify=yes",
            "flag '--no-notify' of survey:export takes no value, got 'yes'",
            "options.notify",
        ),
        (
            "survey:export 1 --format",
            "option '--format' of survey:export needs a value",
            "options.format",
        ),
        (
            "survey:export 1 --format --notify",
            "option '--format' of survey:export needs a value",
            "options.format",
        ),
        (
            "survey:export 1 --format=doc",
            "option '--format' of survey:export must be one of 'pdf', 'csv', got 'doc'",
            "options.format",
        ),
    ],
)
def test_parse_errors_name_the_problem_and_command(
    registry: CommandRegistry, line: str, expected: str, field: str | None
) -> None:
    with pytest.raises(CommandLineError) as excinfo:
        registry.parse(line)
    assert expected in error_message(excinfo)
    if field is not None:
        assert excinfo.value.field == field


def test_missing_arguments_are_all_named() -> None:
    def f(ctx: CommandContext, first: str, second: int) -> None: ...

    reg = CommandRegistry()
    reg.register("app:two", f)
    with pytest.raises(CommandLineError) as excinfo:
        reg.parse("app:two")
    assert "missing arguments 'first', 'second' for app:two" in error_message(excinfo)
    assert "usage: app:two <first> <second>" in error_message(excinfo)


def test_choice_arguments() -> None:
    def f(ctx: CommandContext, mode: Literal["fast", "slow"]) -> str:
        return mode

    reg = CommandRegistry()
    reg.register("app:mode", f)
    assert reg.parse("app:mode slow").arguments == {"mode": "slow"}
    with pytest.raises(CommandLineError) as excinfo:
        reg.parse("app:mode medium")
    assert error_message(excinfo) == (
        "argument 'mode' of app:mode must be one of 'fast', 'slow', got 'medium'"
    )
    assert reg.get("app:mode").signature.arguments[0].to_dict()["choices"] == ["fast", "slow"]


# -- validate (JSON input) ----------------------------------------------------------------------


def test_validate_by_position_and_by_name(registry: CommandRegistry) -> None:
    by_position = registry.validate("files:copy", ["a", "b", 2], {"verbose": False})
    by_name = registry.validate("files:copy", {"count": 2, "target": "b", "source": "a"}, None)
    assert by_position.arguments == by_name.arguments == {"source": "a", "target": "b", "count": 2}
    assert by_position.options == {"verbose": False}
    assert by_name.options == {"verbose": True}


def test_validate_fills_defaults(registry: CommandRegistry) -> None:
    parsed = registry.validate("survey:export", [2024], None)
    assert parsed == registry.parse("survey:export 2024")
    parsed = registry.validate("files:copy", {"source": "a", "count": 5}, {})
    assert parsed.arguments == {"source": "a", "target": "out", "count": 5}
    assert parsed.command_line() == "files:copy a out 5"


def test_validate_accepts_dashes_or_underscores_in_option_keys(registry: CommandRegistry) -> None:
    a = registry.validate("survey:export", [1], {"dry-run": True})
    b = registry.validate("survey:export", [1], {"dry_run": True})
    assert a == b
    assert a.options["dry_run"] is True


def test_validate_converts_json_types(registry: CommandRegistry) -> None:
    parsed = registry.validate(
        "survey:export",
        {"year": "2024"},
        {"ratio": 3, "notify": "yes", "format": "pdf", "label": "x"},
    )
    assert parsed.arguments == {"year": 2024}
    assert parsed.options["ratio"] == 3.0
    assert isinstance(parsed.options["ratio"], float)
    assert parsed.options["notify"] is True
    assert registry.validate("survey:export", [1], {"ratio": "0.25"}).options["ratio"] == 0.25


@pytest.mark.parametrize(
    ("arguments", "options", "expected", "field"),
    [
        ([True], None, "argument 'year' of survey:export must be an integer, got true", None),
        ([1.5], None, "argument 'year' of survey:export must be an integer, got 1.5", None),
        ([None], None, "argument 'year' of survey:export must be an integer, got null", None),
        (["abc"], None, "argument 'year' of survey:export must be an integer, got 'abc'", None),
        ([[1]], None, "argument 'year' of survey:export must be an integer, got a list", None),
        (
            [1],
            {"ratio": True},
            "option '--ratio' of survey:export must be a number, got true",
            None,
        ),
        (
            [1],
            {"ratio": float("inf")},
            "option '--ratio' of survey:export must be a number, got inf",
            None,
        ),
        ([1], {"notify": 1}, "flag '--notify' of survey:export must be true or false", None),
        ([1], {"label": 5}, "option '--label' of survey:export must be a string, got 5", None),
        ([1], {"label": {}}, "must be a string, got an object", None),
        (
            [1],
            {"format": "doc"},
            "option '--format' of survey:export must be one of 'pdf', 'csv', got 'doc'",
            "options.format",
        ),
        (
            [1],
            {"fromat": "pdf"},
            "unknown option 'fromat' for survey:export (did you mean 'format'?)",
            "options.fromat",
        ),
        (
            {"yaer": 1},
            None,
            "unknown argument 'yaer' for survey:export (did you mean 'year'?)",
            "arguments.yaer",
        ),
        ([], None, "missing argument 'year' for survey:export", "arguments.year"),
        (None, None, "missing argument 'year' for survey:export", "arguments.year"),
        ({}, {"notify": True}, "missing argument 'year' for survey:export", "arguments.year"),
        (
            [1, 2],
            None,
            "too many arguments for survey:export: expected at most 1, got 2",
            "arguments",
        ),
        (
            [1],
            {"dry-run": True, "dry_run": False},
            "flag '--dry-run' of survey:export given more than once",
            "options.dry_run",
        ),
        ("2024", None, "arguments of survey:export must be a list or an object", "arguments"),
        ([1], ["notify"], "options of survey:export must be an object", "options"),
    ],
)
def test_validate_errors_name_the_problem(
    registry: CommandRegistry,
    arguments: Any,
    options: Any,
    expected: str,
    field: str | None,
) -> None:
    with pytest.raises(CommandLineError) as excinfo:
        registry.validate("survey:export", arguments, options)
    assert expected in error_message(excinfo)
    if field is not None:
        assert excinfo.value.field == field


def test_validate_unknown_command(registry: CommandRegistry) -> None:
    with pytest.raises(CommandLineError, match="unknown command 'nope'"):
        registry.validate("nope", None, None)


def test_validate_argument_given_twice_by_dash_and_underscore() -> None:
    def f(ctx: CommandContext, file_name: str) -> None: ...

    reg = CommandRegistry()
    reg.register("app:f", f)
    assert reg.validate("app:f", {"file-name": "x"}, None).arguments == {"file_name": "x"}
    with pytest.raises(CommandLineError, match="argument 'file_name' of app:f given more than"):
        reg.validate("app:f", {"file-name": "x", "file_name": "y"}, None)


# -- canonical command line ---------------------------------------------------------------------


def test_command_line_shows_only_non_default_options(registry: CommandRegistry) -> None:
    assert registry.parse("survey:export 2024 --format csv").command_line() == "survey:export 2024"
    assert registry.parse("survey:export --no-notify 2024").command_line() == "survey:export 2024"
    assert (
        registry.parse("survey:export --label 'it''s here' --notify 7 --ratio 1").command_line()
        == "survey:export 7 --notify --ratio=1.0 --label='its here'"
    )
    assert registry.parse("files:copy x --no-verbose").command_line() == "files:copy x --no-verbose"


def test_command_line_keeps_arguments_needed_for_position(registry: CommandRegistry) -> None:
    assert registry.parse("files:copy a out 1").command_line() == "files:copy a"
    assert registry.parse("files:copy a out 2").command_line() == "files:copy a out 2"
    assert registry.parse("files:copy a b").command_line() == "files:copy a b"


def test_command_line_shields_dash_arguments(registry: CommandRegistry) -> None:
    parsed = registry.validate("files:copy", ["--force", "out"], {"verbose": False})
    assert parsed.command_line() == "files:copy --no-verbose -- --force"
    assert registry.parse(parsed.command_line()) == parsed


ROUND_TRIP_CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("survey:export", [0], {}),
    ("survey:export", [-5], {"notify": True, "dry_run": True}),
    ("survey:export", [2**63 - 1], {"ratio": 1e-300, "label": "with space"}),
    ("survey:export", [1], {"ratio": -0.1, "label": 'it\'s "quoted" $HOME `x` \\ ;|&'}),
    ("survey:export", [1], {"ratio": 1e300, "label": "line\nbreak\ttab"}),
    ("survey:export", [1], {"label": "--looks-like-option", "format": "pdf"}),
    ("survey:export", [1], {"label": "=", "ratio": 0}),
    ("survey:export", [1], {"label": "ünïcödé ✓ 日本"}),
    ("survey:export", [1], {"label": "#not a comment"}),
    ("files:copy", ["", "", 0], {}),
    ("files:copy", ["-", "--", -1], {"verbose": False}),
    ("files:copy", ["a b", "out", 1], {"verbose": True}),
    ("files:copy", ["--", "x"], {}),
    ("files:copy", ["'", '"'], {}),
    ("files:copy", ["-5"], {}),
]


@pytest.mark.parametrize(("name", "arguments", "options"), ROUND_TRIP_CASES)
def test_round_trip(
    registry: CommandRegistry, name: str, arguments: Any, options: dict[str, Any]
) -> None:
    parsed = registry.validate(name, arguments, options)
    line = parsed.command_line()
    again = registry.parse(line)
    assert again == parsed
    assert again.command_line() == line


def test_parsed_command_equality_ignores_signature_object(registry: CommandRegistry) -> None:
    parsed = registry.parse("survey:export 1")
    other = CommandRegistry()
    other.register("survey:export", export, description="different text")
    assert other.parse("survey:export 1") == parsed


# -- running ------------------------------------------------------------------------------------


def test_run_calls_the_function_with_typed_values(registry: CommandRegistry) -> None:
    ctx = make_context()
    result = registry.get("survey:export").run(
        ctx, {"year": 2024}, {"dry_run": True, "ratio": 2, "format": "pdf"}
    )
    assert result == {
        "year": 2024,
        "format": "pdf",
        "notify": False,
        "dry_run": True,
        "ratio": 2.0,
        "label": "",
    }
    assert ctx.output == "exporting 2024\n"


def test_run_passes_positional_arguments_and_fills_defaults(registry: CommandRegistry) -> None:
    cmd = registry.get("files:copy")
    assert cmd.run(make_context(), {"source": "a"}, None) == ("a", "out", 1, True)
    parsed = registry.parse("files:copy a b 3 --no-verbose")
    assert cmd.run(make_context(), parsed.arguments, parsed.options) == ("a", "b", 3, False)


def test_run_revalidates_stored_values(registry: CommandRegistry) -> None:
    with pytest.raises(CommandLineError, match="argument 'year' of survey:export must be"):
        registry.get("survey:export").run(make_context(), {"year": "x"}, {})


# -- context ------------------------------------------------------------------------------------


def test_context_exposes_job_and_attempt() -> None:
    job_id = uuid4()
    ctx = CommandContext(job_id=job_id, attempt=3, is_cancelled=lambda: False)
    assert ctx.job_id == job_id
    assert ctx.attempt == 3
    assert ctx.output == ""
    assert ctx.cancelled is False


def test_write_appends_lines() -> None:
    ctx = make_context()
    ctx.write("one")
    ctx.write("")
    ctx.write("three")
    assert ctx.output == "one\n\nthree\n"


def test_output_is_bounded_with_a_single_marker() -> None:
    ctx = make_context(max_output_chars=100)
    for _ in range(50):
        ctx.write("x" * 9)  # 10 characters with the line break
    output = ctx.output
    assert len(output) == 100
    assert output.count("[output truncated") == 1
    marker = "[output truncated: 443 characters dropped]"
    # The marker and its line break take 43 characters, leaving 57 of the 500 written.
    assert output == ("x" * 9 + "\n") * 5 + "x" * 7 + "\n" + marker


def test_output_exactly_at_the_limit_keeps_everything() -> None:
    ctx = make_context(max_output_chars=20)
    ctx.write("x" * 9)
    ctx.write("y" * 9)
    assert ctx.output == "xxxxxxxxx\nyyyyyyyyy\n"


def test_output_under_the_limit_has_no_marker() -> None:
    ctx = make_context(max_output_chars=10)
    ctx.write("123456789")
    assert ctx.output == "123456789\n"


def test_large_single_write_is_cut() -> None:
    ctx = make_context(max_output_chars=200)
    ctx.write("a" * 1000)
    ctx.write("more")
    body, marker = ctx.output.split("\n")
    assert len(body) + 1 + len(marker) == 200
    assert body == "a" * len(body)
    # 1000 characters, two line breaks and "more" were written; the body shows the rest.
    assert marker == f"[output truncated: {1006 - len(body)} characters dropped]"


def test_marker_is_kept_even_with_a_tiny_limit() -> None:
    ctx = make_context(max_output_chars=5)
    ctx.write("hello world")
    assert ctx.output == "[output truncated: 12 characters dropped]"


def test_negative_output_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_output_chars"):
        make_context(max_output_chars=-1)


def test_cancelled_asks_at_most_every_half_second() -> None:
    fake = FakeTime()
    calls: list[float] = []
    answer = [False]

    def is_cancelled() -> bool:
        calls.append(fake.now)
        return answer[0]

    ctx = make_context(is_cancelled=is_cancelled, fake=fake)
    assert ctx.cancelled is False
    answer[0] = True
    fake.now += 0.3
    assert ctx.cancelled is False  # cached answer
    assert len(calls) == 1
    fake.now += 0.2
    assert ctx.cancelled is True
    assert len(calls) == 2
    answer[0] = False
    fake.now += 10
    assert ctx.cancelled is True  # once cancelled, always cancelled
    assert len(calls) == 2


def test_raise_if_cancelled() -> None:
    ctx = make_context(is_cancelled=lambda: True)
    with pytest.raises(CommandCancelledError, match=str(ctx.job_id)):
        ctx.raise_if_cancelled()
    make_context().raise_if_cancelled()


def test_sleep_uses_short_slices() -> None:
    fake = FakeTime()
    ctx = make_context(fake=fake)
    ctx.sleep(1.05)
    assert all(0 < s <= 0.1 for s in fake.sleeps)
    assert sum(fake.sleeps) == pytest.approx(1.05)
    assert len(fake.sleeps) == 11


def test_sleep_zero_or_negative_returns_at_once() -> None:
    fake = FakeTime()
    ctx = make_context(fake=fake)
    ctx.sleep(0)
    ctx.sleep(-5)
    assert fake.sleeps == []


def test_sleep_stops_once_cancellation_is_seen() -> None:
    fake = FakeTime()
    cancel_at = fake.now + 1.0
    ctx = make_context(is_cancelled=lambda: fake.now >= cancel_at, fake=fake)
    with pytest.raises(CommandCancelledError):
        ctx.sleep(60)
    # Cancellation is noticed at the first check after it happened (checks every 0.5 s).
    assert fake.now - cancel_at <= 0.5 + 1e-9
    assert sum(fake.sleeps) < 2


def test_sleep_raises_at_once_when_already_cancelled() -> None:
    fake = FakeTime()
    ctx = make_context(is_cancelled=lambda: True, fake=fake)
    with pytest.raises(CommandCancelledError):
        ctx.sleep(10)
    assert fake.sleeps == []


def test_real_clock_sleep_is_short() -> None:
    ctx = CommandContext(job_id=uuid4(), attempt=1, is_cancelled=lambda: False)
    ctx.sleep(0.02)
    assert ctx.cancelled is False


# -- built-ins ----------------------------------------------------------------------------------


@pytest.fixture
def builtins() -> CommandRegistry:
    reg = CommandRegistry()
    register_builtins(reg)
    return reg


def test_builtins_are_registered_on_the_given_registry(builtins: CommandRegistry) -> None:
    assert builtins.names() == ["demo:echo", "demo:fail", "demo:noop", "demo:sleep"]
    usages = {s.name: s.usage() for s in builtins.signatures()}
    assert usages == {
        "demo:echo": "demo:echo <message> [--upper] [--times=1]",
        "demo:fail": "demo:fail [--times=1] [--message='demo failure']",
        "demo:noop": "demo:noop",
        "demo:sleep": "demo:sleep [--seconds=1.0]",
    }
    assert all(s.description for s in builtins.signatures())
    with pytest.raises(ValueError, match="already registered"):
        register_builtins(builtins)


def run_line(reg: CommandRegistry, line: str, ctx: CommandContext) -> Any:
    parsed = reg.parse(line)
    return reg.get(parsed.name).run(ctx, parsed.arguments, parsed.options)


def test_demo_echo(builtins: CommandRegistry) -> None:
    ctx = make_context()
    assert run_line(builtins, "demo:echo 'hello there' --upper --times=2", ctx) == {
        "echoed": "hello there"
    }
    assert ctx.output == "HELLO THERE\nHELLO THERE\n"
    ctx = make_context()
    run_line(builtins, "demo:echo hi", ctx)
    assert ctx.output == "hi\n"


def test_demo_sleep(builtins: CommandRegistry) -> None:
    fake = FakeTime()
    ctx = make_context(fake=fake)
    assert run_line(builtins, "demo:sleep --seconds=0.35", ctx) == {"slept": 0.35}
    assert sum(fake.sleeps) == pytest.approx(0.35)


def test_demo_sleep_is_cancellable(builtins: CommandRegistry) -> None:
    fake = FakeTime()
    ctx = make_context(is_cancelled=lambda: fake.now > 101, fake=fake)
    with pytest.raises(CommandCancelledError):
        run_line(builtins, "demo:sleep --seconds=3600", ctx)
    assert sum(fake.sleeps) < 2


@pytest.mark.parametrize(
    ("line", "attempt", "fails"),
    [
        ("demo:fail", 1, True),
        ("demo:fail", 2, False),
        ("demo:fail --times=3", 3, True),
        ("demo:fail --times=3", 4, False),
        ("demo:fail --times=0", 1, False),
    ],
)
def test_demo_fail_by_attempt(
    builtins: CommandRegistry, line: str, attempt: int, fails: bool
) -> None:
    ctx = make_context(attempt=attempt)
    if fails:
        with pytest.raises(RuntimeError, match=r"^demo failure$"):
            run_line(builtins, line, ctx)
        assert ctx.output == ""
    else:
        assert run_line(builtins, line, ctx) == {"attempt": attempt}
        assert ctx.output == f"succeeded on attempt {attempt}\n"


def test_demo_fail_custom_message(builtins: CommandRegistry) -> None:
    with pytest.raises(RuntimeError, match=r"^boom now$"):
        run_line(builtins, "demo:fail --message='boom now'", make_context())


def test_demo_noop(builtins: CommandRegistry) -> None:
    ctx = make_context()
    assert run_line(builtins, "demo:noop", ctx) is None
    assert ctx.output == ""


def test_integers_beyond_64_bits_are_refused() -> None:
    registry = CommandRegistry()
    register_builtins(registry)
    with pytest.raises(CommandLineError, match="must be an integer"):
        registry.validate("demo:echo", ["x"], {"times": 2**63})
    with pytest.raises(CommandLineError, match="must be an integer"):
        registry.parse("demo:echo x --times=" + "9" * 25)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("demo:echo hi --times=-5", "'--times' of demo:echo must be between 1 and 1000, got -5"),
        ("demo:echo hi --times=0", "between 1 and 1000, got 0"),
        ("demo:echo hi --times=1001", "between 1 and 1000, got 1001"),
        ("demo:sleep --seconds=-1", "'--seconds' of demo:sleep must be between 0 and 86400"),
        ("demo:sleep --seconds=86400.5", "between 0 and 86400, got 86400.5"),
        ("demo:fail --times=-1", "'--times' of demo:fail must be between 0 and 100"),
    ],
)
def test_builtins_refuse_values_out_of_their_range(
    builtins: CommandRegistry, line: str, message: str
) -> None:
    with pytest.raises(CommandLineError, match=message) as raised:
        builtins.parse(line)
    assert raised.value.field is not None
    assert raised.value.field.startswith("options.")
    name, _, rest = line.partition(" ")
    key, _, value = rest.split()[-1].removeprefix("--").partition("=")
    arguments = ["hi"] if name == "demo:echo" else None
    with pytest.raises(CommandLineError, match=message.partition(", got")[0]):
        builtins.validate(name, arguments, {key: float(value) if "." in value else int(value)})


def test_range_is_shown_in_the_signature(builtins: CommandRegistry) -> None:
    times = builtins.get("demo:echo").signature.to_dict()["options"][1]
    assert (times["name"], times["minimum"], times["maximum"]) == ("times", 1, 1000)


def test_range_bounds_one_side_and_arguments() -> None:
    reg = CommandRegistry()

    @reg.command("app:take")
    def take(
        ctx: CommandContext,
        count: Annotated[int, Range(minimum=1)],
        *,
        ratio: Annotated[float, Range(maximum=0.5)] = 0.1,
    ) -> None:
        """Take some."""

    assert reg.validate("app:take", [10**9], {"ratio": -3}).arguments == {"count": 10**9}
    with pytest.raises(CommandLineError, match="argument 'count' of app:take must be at least 1"):
        reg.parse("app:take 0")
    with pytest.raises(CommandLineError, match=r"'--ratio' of app:take must be at most 0\.5"):
        reg.parse("app:take 1 --ratio=0.6")


@pytest.mark.parametrize(
    ("annotation", "default", "problem"),
    [
        (Annotated[str, Range(1, 2)], "a", "int and float only"),
        (Annotated[int, Range(5, 1)], 5, "minimum is above its maximum"),
        (Annotated[int, Range()], 1, "finite bounds"),
        (Annotated[int, Range(1, 10)], 0, "outside its Range"),
    ],
)
def test_bad_ranges_are_refused_at_registration(
    annotation: Any, default: Any, problem: str
) -> None:
    def function(ctx: CommandContext, *, value: Any = default) -> None:
        """Do it."""

    function.__annotations__["value"] = annotation
    with pytest.raises(TypeError, match=problem):
        CommandRegistry().register("app:bad", function)
