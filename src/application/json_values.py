"""How deep a JSON value given to Chronicle may nest."""

# A value nested a thousand levels deep makes recursive code (JSON decoders and encoders,
# the event store's transcoder, validation) raise RecursionError wherever it goes next, so
# values are refused at the door. No request or stored value of Chronicle's needs more than a
# few levels; 32 leaves room for whatever a command's own JSON options hold.

from __future__ import annotations

from typing import Any

from domain.shared import ValidationError

MAX_DEPTH = 32


def nested_deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in `value` nest more than `limit` levels (a scalar is 0)."""
    # A stack, not recursion: the point is to measure values that recursion cannot handle.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def too_deep_message(what: str, limit: int = MAX_DEPTH) -> str:
    return f"{what} is nested deeper than {limit} levels of lists and objects"


def check_depth(value: Any, field: str, limit: int = MAX_DEPTH) -> None:
    """Refuse `value` (a ValidationError naming `field`) when it nests deeper than `limit`."""
    if nested_deeper_than(value, limit):
        raise ValidationError(too_deep_message(field, limit), field=field)
