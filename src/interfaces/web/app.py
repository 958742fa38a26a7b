"""The dashboard's routes, templates, static files and security headers, for `create_app`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from interfaces.http.auth import PUBLIC, SignInRequiredError
from interfaces.web.formatting import FILTERS
from interfaces.web.pages import HomePage, SignInPages

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


def _register_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(FILTERS)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_register_filters
    )


#: The modules of the resource pages; each has `PAGES`, its controllers.
PAGE_MODULES = ("jobs", "queues", "batches", "imports", "exports", "schedules")


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


def dashboard_router() -> Router:
    """The pages, the sign-in page and the static files, with the security headers."""
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt={PUBLIC: True},
        cache_control=CacheControlHeader(max_age=3600),
        include_in_schema=False,
    )
    return Router(
        path="/",
        route_handlers=[SignInPages, HomePage, *_resource_pages(), static],
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
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
