"""What any request may send: a body of the type its route takes, JSON nested at most 32
levels, and no NUL character in text.

Checked once for every route: the body's content type and the query string before the handler
runs (`check_request`, the app's `before_request` hook), JSON bodies as they are decoded
(`ChronicleRequest`), JSON sent in form fields by `decode_json_field`.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.params import BodyKwarg
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

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


def body_media_type(handler: BaseRouteHandler) -> str | None:
    """The content type `handler`'s body must be sent with; None for a route without a body."""
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    kwarg = data.kwarg_definition
    media_type = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    return str(media_type.value if isinstance(media_type, RequestEncodingType) else media_type)


async def refuse_other_media_types(request: Request[Any, Any, Any]) -> None:
    """A body whose content type is not the one its route takes is a 415, before it is
    decoded and before the handler runs.

    A browser sends `text/plain`, form-urlencoded and multipart bodies from any web page
    without asking (no CORS preflight); only `application/json` makes it ask first. Taking
    JSON bodies under other types would let any page an operator visits act on a Chronicle
    the operator's browser can reach. `application/*+json` types are refused too: no client
    of this API needs them, and one exact type is one rule to state. A route whose JSON body
    is optional still takes no body at all, whatever the content type says.
    """
    expected = body_media_type(request.route_handler)
    if expected is None:
        return
    sent = request.content_type[0].strip().lower()
    if sent == expected:
        return
    if expected == RequestEncodingType.JSON.value and not await request.body():
        return
    got = f"Content-Type {sent[:100]}" if sent else "no Content-Type"
    what = "a JSON body" if expected == RequestEncodingType.JSON.value else f"a {expected} form"
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"this route takes {what}: send it with Content-Type {expected} (got {got})",
    )


async def check_request(request: Request[Any, Any, Any]) -> None:
    """The app's `before_request` hook: the query string, then the body's content type."""
    refuse_nul_in_query(request)
    await refuse_other_media_types(request)


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
