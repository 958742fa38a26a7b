"""Built-in demo commands: echo, sleep, fail and noop, for trying out and benchmarking Chronicle."""

from __future__ import annotations

from typing import Annotated

from application.commands import CommandContext, CommandRegistry, Help, Range


def echo(
    ctx: CommandContext,
    message: Annotated[str, Help("text to write to the job output")],
    *,
    upper: Annotated[bool, Help("write the message in upper case")] = False,
    times: Annotated[int, Help("how many times to write it"), Range(1, 1000)] = 1,
) -> dict[str, str]:
    """Write a message to the job output."""
    line = message.upper() if upper else message
    for _ in range(times):
        ctx.write(line)
    return {"echoed": message}


def sleep(
    ctx: CommandContext,
    *,
    seconds: Annotated[float, Help("how long to sleep"), Range(0, 86400)] = 1.0,
) -> dict[str, float]:
    """Sleep cooperatively; cancelling the job interrupts it."""
    ctx.sleep(seconds)
    return {"slept": seconds}


def fail(
    ctx: CommandContext,
    *,
    times: Annotated[int, Help("how many attempts fail before one succeeds"), Range(0, 100)] = 1,
    message: Annotated[str, Help("message of the raised error")] = "demo failure",
) -> dict[str, int]:
    """Fail the first attempts, then succeed (to watch retries)."""
    if ctx.attempt <= times:
        raise RuntimeError(message)
    ctx.write(f"succeeded on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


def noop(ctx: CommandContext) -> None:
    """Do nothing (measures Chronicle's own overhead)."""


def register_builtins(registry: CommandRegistry) -> None:
    """Register the demo commands on `registry`; the composition root decides which registry."""
    registry.register("demo:echo", echo, description="Write a message to the job output")
    registry.register("demo:sleep", sleep, description="Sleep cooperatively (cancellable)")
    registry.register(
        "demo:fail", fail, description="Fail the first --times attempts, then succeed"
    )
    registry.register("demo:noop", noop, description="Do nothing (for benchmarks)")
