"""The Litestar application factory: controllers, dependencies, error handlers, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Tag

from interfaces.bootstrap import Chronicle
from interfaces.http.batches import BatchController
from interfaces.http.commands import CommandController
from interfaces.http.dependencies import TENANT_HEADER, USER_HEADER, provide_caller
from interfaces.http.docs import OfflineDocsPlugin
from interfaces.http.errors import exception_handlers
from interfaces.http.exports import ExportController, ExporterController
from interfaces.http.frequencies import FrequencyController
from interfaces.http.health import HealthController, Readiness
from interfaces.http.imports import FORM_OVERHEAD_BYTES, ImportController
from interfaces.http.inputs import ChronicleRequest, refuse_nul_in_query
from interfaces.http.jobs import JobController
from interfaces.http.queues import QueueController
from interfaces.http.schedules import ScheduleController

MAX_BODY_BYTES = 1_000_000

DESCRIPTION = f"""Chronicle's REST API: dispatch jobs, follow them and act on them; manage the
schedules that start jobs from the database, with their run history.
Every request acts for the tenant in `{TENANT_HEADER}` (default `default`) and records the
identity in `{USER_HEADER}` (default `api`) on the events it causes. Errors are JSON
`{{"error", "message", "field"}}`: 400 malformed request, 404 not found (also another
tenant's job or schedule), 409 not allowed in its current state, 422 a value breaks a rule."""


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
        tags=[
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

    return Litestar(
        route_handlers=[
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
        ],
        dependencies={
            "chronicle": Provide(provide_chronicle, use_cache=True, sync_to_thread=False),
            "readiness": Provide(provide_readiness, use_cache=True, sync_to_thread=False),
            "caller": Provide(provide_caller, sync_to_thread=False),
        },
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(),
        # The process configures structlog (infrastructure.logging); Litestar must not
        # reconfigure the standard library's logging on top of it.
        logging_config=None,
        request_max_body_size=MAX_BODY_BYTES,
        request_class=ChronicleRequest,
        before_request=refuse_nul_in_query,
    )
