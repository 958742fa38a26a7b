"""How deep JSON values may nest: measured without recursion, refused with a message."""

from __future__ import annotations

from typing import Any

import pytest

from application.json_values import MAX_DEPTH, check_depth, nested_deeper_than
from domain.shared import ValidationError


def nested(depth: int, *, container: str = "list") -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if container == "list" else {"k": value}
    return value


@pytest.mark.parametrize("container", ["list", "dict"])
def test_depth_is_counted_in_lists_and_objects(container: str):
    assert not nested_deeper_than(nested(MAX_DEPTH, container=container))
    assert nested_deeper_than(nested(MAX_DEPTH + 1, container=container))
    assert not nested_deeper_than("scalar", limit=0)
    assert nested_deeper_than([], limit=0)
    assert not nested_deeper_than({"a": [1, {"b": []}], "c": 2}, limit=4)
    assert nested_deeper_than({"a": [1, {"b": [[]]}], "c": 2}, limit=4)


def test_values_too_deep_for_recursion_are_measured():
    assert nested_deeper_than(nested(100_000))


def test_check_depth_names_the_field():
    check_depth(nested(MAX_DEPTH), "options")
    with pytest.raises(ValidationError, match="options is nested deeper than 32 levels") as error:
        check_depth(nested(MAX_DEPTH + 1), "options")
    assert error.value.field == "options"
