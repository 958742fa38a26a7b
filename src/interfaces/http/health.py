"""`/health` (the process answers) and `/ready` (its database, event store and broker do)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from interfaces.http.auth import PUBLIC
from interfaces.http.schemas.health import CheckResult, HealthStatus, ReadyStatus

log = structlog.get_logger("chronicle.http")

MAX_ERROR_CHARS = 500


class Readiness:
    """Named checks: each returns when its dependency works and raises when it does not."""

    def __init__(self, checks: Mapping[str, Callable[[], object]]) -> None:
        self._checks = dict(checks)

    def run(self) -> ReadyStatus:
        results: dict[str, CheckResult] = {}
        for name, check in self._checks.items():
            try:
                check()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                log.warning("readiness check failed", check=name, error=error)
                results[name] = CheckResult(ok=False, error=error)
            else:
                results[name] = CheckResult(ok=True)
        failed = [f"{name}: {r.error}" for name, r in results.items() if not r.ok]
        if not failed:
            return ReadyStatus(status="ok", checks=results)
        return ReadyStatus(
            status="unavailable",
            checks=results,
            error="not_ready",
            message="; ".join(failed),
        )


class HealthController(Controller):
    """Liveness and readiness probes."""

    path = "/"
    tags = ["health"]

    @get(
        "/health",
        opt={PUBLIC: True},
        operation_id="getHealth",
        summary="Liveness",
        description="200 while the process can answer; it checks nothing else.",
        sync_to_thread=False,
    )
    def health(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get(
        "/ready",
        opt={PUBLIC: True},
        operation_id="getReadiness",
        summary="Readiness",
        description=(
            "200 when the read-model database, the event store and every other configured "
            "check (the broker) work; 503 naming each failed check and its error."
        ),
        sync_to_thread=True,
        response_description="Every check passed.",
        responses={
            503: ResponseSpec(
                data_container=ReadyStatus,
                description="A check failed: `message` names it and its error.",
                generate_examples=False,
            )
        },
    )
    def ready(self, readiness: NamedDependency[Readiness]) -> Response[ReadyStatus]:
        result = readiness.run()
        return Response(result, status_code=200 if result.status == "ok" else 503)
