"""Response bodies of the health and readiness probes."""

from __future__ import annotations

from msgspec import Struct


class HealthStatus(Struct, kw_only=True):
    """The process answers."""

    status: str


class CheckResult(Struct, omit_defaults=True, kw_only=True):
    """One readiness check: `ok`, or the error it raised."""

    ok: bool
    error: str | None = None


class ReadyStatus(Struct, omit_defaults=True, kw_only=True):
    """Readiness: every check passed (`ok`), or which ones failed and why (`unavailable`)."""

    status: str
    checks: dict[str, CheckResult]
    error: str | None = None
    message: str | None = None
