"""The Litestar application factory: controllers, dependencies, error handlers, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag

from interfaces.bootstrap import Chronicle
from interfaces.http.auth import (
    CSRF_HEADER,
    SECURITY,
    SECURITY_SCHEMES,
    AuthController,
    SignInRequiredError,
    authorize,
    is_public_handler,
    route_action,
)
from interfaces.http.batches import BatchController
from interfaces.http.commands import CommandController
from interfaces.http.dependencies import IDEMPOTENCY_HEADER, TENANT_HEADER, provide_caller
from interfaces.http.docs import OfflineDocsPlugin
from interfaces.http.errors import error_responses, exception_handlers
from interfaces.http.exports import ExportController, ExporterController
from interfaces.http.frequencies import FrequencyController
from interfaces.http.health import HealthController, Readiness
from interfaces.http.imports import FORM_OVERHEAD_BYTES, ImportController
from interfaces.http.inputs import ChronicleRequest, body_media_type, check_request
from interfaces.http.jobs import JobController
from interfaces.http.queues import QueueController
from interfaces.http.schedules import ScheduleController
from interfaces.web.app import dashboard_router, sign_in_redirect, template_config
from interfaces.web.live import LiveController, LiveFeed

MAX_BODY_BYTES = 1_000_000

DESCRIPTION = f"""Chronicle's REST API: dispatch jobs, follow them and act on them; manage the
schedules that start jobs from the database, with their run history.
Every route but `/health`, `/ready`, `/schema` and `POST /auth/login` needs a principal: an API
token (`Authorization: Bearer chr_…`, made by `chronicle tokens create`) or the session cookie
`POST /auth/login` sets (unsafe requests then send its CSRF token in `{CSRF_HEADER}`). Roles:
`viewer` reads, `operator` also acts on jobs, schedules, batches, imports and exports, `admin`
also pauses and resumes queues. A request acts for the tenant in `{TENANT_HEADER}` (default: the
one the principal is bound to, else `default`) and records the principal (`token:ci`,
`user:ada`) on the events it causes. Errors are JSON `{{"error", "message", "field"}}`: 400
malformed request, 401 no valid credentials, 403 the role or tenant binding does not allow it,
404 not found (also another tenant's resource), 409 not allowed in its current state, 415 a
body sent without `Content-Type: application/json` (`multipart/form-data` for uploads), 422 a
value breaks a rule."""


def _version() -> str:
    try:
        return version("chronicle")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Chronicle",
        version=_version(),
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[OfflineDocsPlugin(), JsonRenderPlugin()],
        components=Components(
            security_schemes={
                name: SecurityScheme(**scheme) for name, scheme in SECURITY_SCHEMES.items()
            }
        ),
        tags=[
            Tag(name="auth", description="Sign in and out of a dashboard session."),
            Tag(name="jobs", description="Dispatch, list, inspect, retry and cancel jobs."),
            Tag(name="queues", description="Job counts, activity, pause and resume per queue."),
            Tag(name="commands", description="Commands a job may run."),
            Tag(
                name="schedules",
                description="Create, edit, pause, resume, run and comment on schedules.",
            ),
            Tag(
                name="batches",
                description="Jobs that succeed or fail together, with then/catch/finally.",
            ),
            Tag(
                name="exports",
                description="Export rows to CSV or XLSX files, written by jobs; download them.",
            ),
            Tag(name="frequencies", description="Frequency helpers and previews of next runs."),
            Tag(
                name="imports",
                description="CSV uploads imported in chunks, with every failed row kept.",
            ),
            Tag(name="health", description="Liveness and readiness probes."),
        ],
    )


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """CORS for the pages of `origins` (`CHRONICLE_CORS_ORIGINS`), with credentials; None
    (no CORS header at all) when there are none."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            IDEMPOTENCY_HEADER,
            TENANT_HEADER,
            CSRF_HEADER,
        ],
        allow_credentials=True,
        expose_headers=["Location", "Retry-After", "Content-Disposition"],
    )


def create_app(
    chronicle: Chronicle, *, checks: dict[str, Callable[[], None]] | None = None
) -> Litestar:
    """The API over `chronicle`; `checks` are extra readiness checks (e.g. the broker's).

    The caller owns `chronicle`: starting projection threads and closing it are its job.
    """
    readiness = Readiness(
        {"database": chronicle.db.check, "event_store": chronicle.log.head, **(checks or {})}
    )

    def provide_chronicle() -> Chronicle:
        return chronicle

    def provide_readiness() -> Readiness:
        return readiness

    # Uploads get the configured limit; every other route keeps the small default.
    imports = type(
        "ImportController",
        (ImportController,),
        {"request_max_body_size": chronicle.settings.import_max_bytes + FORM_OVERHEAD_BYTES},
    )

    live = LiveFeed(
        chronicle.log, chronicle.queries, stream_seconds=chronicle.settings.live_stream_seconds
    )
    app = Litestar(
        route_handlers=[
            AuthController,
            JobController,
            QueueController,
            CommandController,
            ScheduleController,
            BatchController,
            imports,
            ExportController,
            ExporterController,
            FrequencyController,
            HealthController,
            LiveController,
            dashboard_router(),
        ],
        dependencies={
            "chronicle": Provide(provide_chronicle, use_cache=True, sync_to_thread=False),
            "readiness": Provide(provide_readiness, use_cache=True, sync_to_thread=False),
            "caller": Provide(provide_caller, sync_to_thread=False),
        },
        guards=[authorize],
        state=State({"chronicle": chronicle, "live": live}),
        on_shutdown=[live.stop],
        exception_handlers={
            **exception_handlers(),
            SignInRequiredError: sign_in_redirect,
        },
        template_config=template_config(),
        openapi_config=openapi_config(),
        # The process configures structlog (infrastructure.logging); Litestar must not
        # reconfigure the standard library's logging on top of it.
        logging_config=None,
        request_max_body_size=MAX_BODY_BYTES,
        request_class=ChronicleRequest,
        # Litestar runs only the innermost `before_request`: a controller or route that sets
        # its own must call `check_request` from it.
        before_request=check_request,
        cors_config=cors_config(chronicle.settings.cors_origins),
    )
    _document_unsupported_media_type(app)
    _document_security(app)
    return app


def _http_handlers(app: Litestar) -> list[tuple[str, HTTPRouteHandler]]:
    return [
        (route.path, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if isinstance(handler, HTTPRouteHandler)
    ]


def _document_security(app: Litestar) -> None:
    """Every guarded route states the security schemes and its 401 and 403 in /schema; an
    unsafe route that states no action is a bug, refused here rather than guessed at."""
    for path, handler in _http_handlers(app):
        if is_public_handler(handler, path):
            continue
        if route_action(handler) is None:
            raise RuntimeError(f"{sorted(handler.http_methods)} {path} states no action")
        handler.security = SECURITY
        handler.responses = {**error_responses(401, 403), **(handler.responses or {})}


def _document_unsupported_media_type(app: Litestar) -> None:
    """Every route that takes a body may answer 415 (`check_request` refuses other content
    types): /schema says so, next to the errors each route declares."""
    for _, handler in _http_handlers(app):
        if body_media_type(handler) is not None:
            handler.responses = {**(handler.responses or {}), **error_responses(415)}
