"""Every error leaves the API as JSON `{error, message, field}`: domain errors map to 4xx."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from application.commands import CommandLineError
from application.imports.service import UploadTooLargeError
from application.ports import StoreUnavailableError
from domain.shared import (
    ConflictError,
    DomainError,
    GoneError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from interfaces.http.schemas.common import ErrorBody

log = structlog.get_logger("chronicle.http")

_KINDS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
# Litestar names the whole body `data` when the problem is not one field (unknown field, bad JSON).
_WHOLE_BODY = {None, "", "data"}


def error_kind(status_code: int) -> str:
    return _KINDS.get(status_code) or HTTPStatus(status_code).phrase.lower().replace(" ", "_")


def error_response(
    status_code: int,
    message: str,
    *,
    field: str | None = None,
    kind: str | None = None,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    body = ErrorBody(
        error=kind or error_kind(status_code),
        message=message,
        field=field,
        details=details,
    )
    return Response(body, status_code=status_code, headers=headers)


def _where(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"method": request.method, "path": request.url.path}


def domain_error(
    request: Request[Any, Any, Any],  # noqa: ARG001 - the handler signature Litestar calls
    exc: Exception,
) -> Response[ErrorBody]:
    """NotFoundError → 404, InvalidTransitionError → 409, GoneError → 410, ValidationError
    (and others) → 422."""
    if isinstance(exc, NotFoundError):
        return error_response(404, str(exc))
    if isinstance(exc, GoneError):
        return error_response(410, str(exc))
    if isinstance(exc, InvalidTransitionError | ConflictError):
        return error_response(409, str(exc))
    if isinstance(exc, UploadTooLargeError):
        return error_response(413, str(exc), field="file")
    field = exc.field if isinstance(exc, ValidationError) else None
    kind = "invalid_command" if isinstance(exc, CommandLineError) else None
    return error_response(422, str(exc), field=field, kind=kind)


def http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Litestar's own errors (bad JSON, unknown fields, bad query values, no such route)."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        return unexpected_error(request, exc)
    if exc.status_code >= 500 and exc.status_code != 503:
        return unexpected_error(request, exc)
    if exc.status_code == 413:
        limit = request.route_handler.resolve_request_max_body_size() or 0
        size = f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        return error_response(
            413, f"the request body is larger than the limit of {size}", headers=exc.headers
        )
    problems = [p for p in exc.extra if isinstance(p, dict)] if isinstance(exc.extra, list) else []
    if any(_is_missing_body(p) for p in problems):
        problems = [_missing_body(request)]
    message = exc.detail
    field = None
    if problems:
        message = "; ".join(
            str(p.get("message"))
            if p.get("key") in _WHOLE_BODY
            else f"{p.get('key')}: {p.get('message')}"
            for p in problems
        )
        keys = {p.get("key") for p in problems}
        if len(keys) == 1 and not keys & _WHOLE_BODY:
            field = str(keys.pop())
    return error_response(
        exc.status_code,
        message,
        field=field,
        details=problems or None,
        headers=exc.headers,
    )


def _is_missing_body(problem: dict[str, Any]) -> bool:
    # Litestar reports a required body that was not sent as the KeyError of its `data`
    # argument: the message is then just "'data'".
    return problem.get("key") == "data" and problem.get("message") in {"'data'", "data"}


def _missing_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    body = data.type_.__name__ if data is not None and isinstance(data.type_, type) else None
    expected = f"a JSON object ({body}, described at /schema)" if body else "a JSON object"
    message = f"the request body is empty: send {expected} with content-type application/json"
    return {"key": "data", "message": message, "source": "body"}


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """A bug or an outage: log it with its traceback, tell the client only that it happened."""
    log.error("unhandled error", **_where(request), exc_info=exc)
    return error_response(500, "internal error: the server logged the details")


#: How soon a client may try again after a 503 (the database was unreachable).
RETRY_AFTER_SECONDS = 5


def unavailable_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """The database cannot be reached right now: 503 with `Retry-After`, not a 500."""
    log.warning("database unreachable", **_where(request), error=str(exc)[:300])
    return error_response(
        503,
        "the database cannot be reached right now: try again shortly (a dispatch sent with "
        "an Idempotency-Key is safe to send again)",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def exception_handlers() -> ExceptionHandlersMap:
    # Looked up along the exception's MRO: CommandLineError uses the ValidationError entry.
    return {
        NotFoundError: domain_error,
        InvalidTransitionError: domain_error,
        ValidationError: domain_error,
        DomainError: domain_error,
        HTTPException: http_error,
        # A lost or refused connection, or no free one in the pool (event store, read models).
        StoreUnavailableError: unavailable_error,
        OperationalError: unavailable_error,
        InterfaceError: unavailable_error,
        Exception: unexpected_error,
    }


_DESCRIPTIONS = {
    400: "Malformed JSON, unknown fields, wrong types or bad headers.",
    410: "It existed but was removed (an export's file after the retention).",
    413: (
        "The request body is over its limit: 1 MB for JSON bodies, "
        "`CHRONICLE_IMPORT_MAX_BYTES` for uploads."
    ),
    415: (
        "The body was not sent as `application/json` (`multipart/form-data` for uploads); "
        "nothing was done."
    ),
    422: "The values break a rule; `field` names the offending one.",
}


def _description(code: int, resource: str | None) -> str:
    if code == 404:
        what = f"such {resource}" if resource else "such resource"
        return f"No {what} for this tenant (another tenant's is not found either)."
    if code == 409:
        return f"The {resource or 'resource'} is not in a state that allows this."
    return _DESCRIPTIONS.get(code, HTTPStatus(code).phrase)


def error_responses(*codes: int, resource: str | None = None) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error responses an operation may give; 404 and 409 name
    `resource`, the kind of thing the path names (job, schedule, batch, ...)."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody,
            description=_description(code, resource),
            generate_examples=False,
        )
        for code in codes
    }
