"""What any request may send: JSON nested at most 32 levels, and no NUL character in text.

Checked once for every route: JSON bodies as they are decoded (`ChronicleRequest`), query
strings before the handler runs (`refuse_nul_in_query`), JSON sent in form fields by
`decode_json_field`.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

from application.json_values import MAX_DEPTH, check_depth, nested_deeper_than, too_deep_message
from domain.shared import ValidationError

# PostgreSQL text cannot hold U+0000: a NUL in a filter fails the query (a 500), and one stored
# in an event would stop every projection that copies it into a read model.
NUL = "\x00"
NUL_MESSAGE = "contains a NUL character (\\u0000), which no text may hold"


def _body_error(message: str) -> ClientException:
    return ClientException(detail=message, extra=[{"key": "data", "message": message}])


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class ChronicleRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body may nest at most `MAX_DEPTH` levels and hold no NUL
    character (else a 400).

    Every JSON body of every route is decoded by `json()`, so one check covers them all: a
    body nested a thousand levels deep would otherwise make the decoder raise RecursionError
    (a 500), and one a few hundred deep would be accepted, then break whatever recursive code
    met it next (the event store's JSON encoder, a worker).
    """

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            raise _body_error(too_deep_message("the JSON body")) from None
        if nested_deeper_than(value, MAX_DEPTH):
            raise _body_error(too_deep_message("the JSON body"))
        if _holds_nul(value):
            raise _body_error(f"the JSON body {NUL_MESSAGE}")
        return value


def refuse_nul_in_query(request: Request[Any, Any, Any]) -> None:
    """A `before_request` hook: a query value or name with a NUL character is a 400."""
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in str(value):
            key = name.replace(NUL, "%00")
            raise ClientException(
                detail=f"{key}: {NUL_MESSAGE}",
                extra=[{"key": key, "message": NUL_MESSAGE, "source": "query"}],
            )


def decode_json_field(text: str, field: str) -> Any:
    """A JSON value sent as text in a form field, with the rules of JSON bodies; a 422 naming
    `field` when it is not JSON, nests too deep or holds a NUL character."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{field} is not valid JSON: {exc}", field=field) from None
    except RecursionError:
        raise ValidationError(too_deep_message(field), field=field) from None
    check_depth(value, field)
    if _holds_nul(value):
        raise ValidationError(f"{field} {NUL_MESSAGE}", field=field)
    return value
