"""The dashboard's routes, templates, static files and security headers, for `create_app`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.exceptions import PermissionDeniedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from domain.shared import (
    ConflictError,
    DomainError,
    GoneError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from interfaces.http.auth import PUBLIC, SignInRequiredError
from interfaces.http.errors import domain_error
from interfaces.web.formatting import FILTERS
from interfaces.web.pages import HomePage, SignInPages, TenantSwitch, page_context

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: Pages load scripts, styles and data from this origin only, and no other site may frame
#: them: what a page shows cannot be restyled, scripted or clickjacked from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


def _with_security_headers(response: Any) -> Any:
    """The static files' responses get the pages' headers too (`nosniff` matters for scripts)."""
    for header in SECURITY_HEADERS:
        response.headers[header.name] = header.value or ""
    return response


def _register_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(FILTERS)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_register_filters
    )


#: The modules of the resource pages; each has `PAGES`, its controllers.
PAGE_MODULES = ("jobs", "queues", "batches", "imports", "exports", "schedules", "actions")


def _resource_pages() -> list[Any]:
    pages: list[Any] = []
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(f"interfaces.web.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"interfaces.web.{name}":
                raise
            continue
        pages.extend(module.PAGES)
    return pages


_TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    410: "Gone",
    422: "Not valid",
}


def page_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A domain error raised by a page, or an action the role may not do: the same status and
    message as the API gives, as a page."""
    if not hasattr(request.state, "principal"):
        return sign_in_redirect(request, exc)
    if isinstance(exc, PermissionDeniedException):
        status, message = exc.status_code, exc.detail
    else:
        status, message = domain_error(request, exc).status_code or 500, str(exc)
    return Template(
        "error.html",
        context=page_context(request, title=_TITLES.get(status, "Error"), message=message),
        status_code=status,
    )


def dashboard_router() -> Router:
    """The pages, the sign-in page and the static files, with the security headers."""
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt={PUBLIC: True},
        cache_control=CacheControlHeader(max_age=3600),
        include_in_schema=False,
        after_request=_with_security_headers,
    )
    return Router(
        path="/",
        route_handlers=[SignInPages, HomePage, TenantSwitch, *_resource_pages(), static],
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
        # Each class the API maps too: the closest layer's entry for a class wins, and the
        # lookup follows the exception's MRO, so DomainError alone would lose to the app's.
        exception_handlers=dict.fromkeys(
            (
                NotFoundError,
                GoneError,
                InvalidTransitionError,
                ConflictError,
                ValidationError,
                DomainError,
                PermissionDeniedException,
            ),
            page_error,
        ),
    )


def sign_in_redirect(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A page without a session: to the sign-in page, and back afterwards. A partial that
    htmx asked for gets a 401 telling htmx to take the whole page there instead."""
    target = "/"
    if isinstance(exc, SignInRequiredError):
        target = exc.next_path
    login = f"/login?next={quote(target, safe='/')}"
    if request.headers.get("HX-Request"):
        return Response(None, status_code=401, headers={"HX-Redirect": login})
    return Redirect(login, status_code=303)
