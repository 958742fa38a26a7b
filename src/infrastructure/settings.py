"""Configuration from `CHRONICLE_*` environment variables, with defaults that need none."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from application.principals import validate_password
from domain.shared import ValidationError

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SettingsError(ValueError):
    """A CHRONICLE_* variable has a value Chronicle cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Every setting, with its environment variable in the README's table."""

    database_url: str | None = None
    database_schema: str = "public"
    broker_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".chronicle"))
    host: str = "127.0.0.1"
    port: int = 8000
    queue_prefix: str = "chronicle."
    command_modules: tuple[str, ...] = ()
    log_format: str = "auto"
    log_level: str = "info"
    default_backoff_seconds: float = 1.0
    worker_threads: int = 8
    projection_batch_size: int = 500
    #: Where uploaded imports and produced exports are kept; API and workers must share it.
    files_dir_override: Path | None = None
    import_max_bytes: int = 100 * 1024 * 1024
    import_chunk_size: int = 1000
    export_retention_hours: float = 168.0
    #: Connections each of a process's two PostgreSQL pools (event store, read models) may
    #: open; each keeps one open when idle.
    database_pool_size: int = 3
    #: A worker silent this long is presumed dead and the attempts it ran are run again.
    worker_lost_after_seconds: float = 30.0
    #: A due job still waiting this long while its queue holds no message gets one again.
    stranded_after_seconds: float = 120.0
    #: How long an `Idempotency-Key` keeps answering with the first dispatch.
    idempotency_retention_hours: float = 24.0
    #: Web origins (`scheme://host[:port]`) whose pages may call the API from a browser (CORS);
    #: none by default, so no CORS header is ever sent.
    cors_origins: tuple[str, ...] = ()
    #: The password of the `admin` account `chronicle up` creates on a store with no account
    #: (unattended starts); None: a random one, printed once on the terminal.
    admin_password: str | None = field(default=None, repr=False)
    #: Where users reach Chronicle (`https://ops.example.com`); an https URL makes the session
    #: cookie `Secure`. None: the address Chronicle listens on.
    public_url: str | None = None
    #: A dashboard session ends this long after its last request ...
    session_idle_minutes: float = 30.0
    #: ... and in any case this long after it began.
    session_lifetime_hours: float = 12.0
    #: A live event stream (`GET /api/events`) ends after this long; browsers reconnect.
    live_stream_seconds: float = 300.0

    @property
    def secure_cookies(self) -> bool:
        """Whether the session cookie is `Secure` (sent over https only)."""
        return (self.public_url or "").lower().startswith("https://")

    @property
    def files_dir(self) -> Path:
        """The folder of import uploads (`imports/`) and export files (`exports/`)."""
        return self.files_dir_override or self.data_dir / "files"

    @property
    def embedded(self) -> bool:
        """True when the event store is the SQLite file under the data folder."""
        return self.database_url is None

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "memory://"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def read_models_path(self) -> Path:
        return self.data_dir / "read_models.sqlite3"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float = 0.0,
    high: float = float("inf"),
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, got {raw!r}")
    if value < 0:
        raise SettingsError(f"{name} must not be negative, got {value}")
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(raw: str) -> str:
    """One CORS origin, as a browser writes it in `Origin`: lower case, no default port."""
    name = "CHRONICLE_CORS_ORIGINS"
    if "*" in raw:
        raise SettingsError(
            f"{name} must name each origin: `*` would let any web page use the API with the "
            "operator's credentials"
        )
    if "@" in raw:
        # Not echoed: what precedes the @ may be a password.
        raise SettingsError(f"{name}: an origin holds no user name or password")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not scheme://host[:port]") from None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or raw.endswith(("?", "#"))
    ):
        raise SettingsError(
            f"{name}: {raw!r} is not an origin: write scheme://host[:port] with http or https "
            "and no path, e.g. https://ops.example.com"
        )
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("CHRONICLE_CORS_ORIGINS") or ""
    origins = (_origin(item.strip()) for item in raw.split(",") if item.strip())
    return tuple(dict.fromkeys(origins))


def _admin_password(env: Mapping[str, str]) -> str | None:
    password = env.get("CHRONICLE_ADMIN_PASSWORD") or None
    if password is not None:
        try:
            validate_password(password)
        except ValidationError as exc:
            # The value itself is never repeated: it is a secret.
            raise SettingsError(f"CHRONICLE_ADMIN_PASSWORD: {exc}") from None
    return password


def _public_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("CHRONICLE_PUBLIC_URL") or "").strip()
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(f"CHRONICLE_PUBLIC_URL: {raw[:200]!r} is not a URL") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise SettingsError(
            "CHRONICLE_PUBLIC_URL must be an http:// or https:// URL without a user name, "
            "e.g. https://ops.example.com"
        )
    return raw.rstrip("/")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings; a bad value raises SettingsError naming the variable."""
    env = os.environ if env is None else env
    database_url = env.get("CHRONICLE_DATABASE_URL") or None
    if database_url and not database_url.startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            "CHRONICLE_DATABASE_URL must be a postgresql:// URL (leave it unset for the "
            f"embedded SQLite store), got {database_url.split(':', 1)[0]}://…"
        )
    schema = env.get("CHRONICLE_DATABASE_SCHEMA") or "public"
    if not _SCHEMA.match(schema):
        raise SettingsError(
            f"CHRONICLE_DATABASE_SCHEMA must be a lower-case SQL identifier, got {schema!r}"
        )
    broker_url = env.get("CHRONICLE_BROKER_URL") or None
    if broker_url and not broker_url.startswith(("amqp://", "amqps://", "redis://", "memory://")):
        raise SettingsError(
            "CHRONICLE_BROKER_URL must start with amqp://, amqps://, redis:// or memory://"
        )
    log_format = (env.get("CHRONICLE_LOG_FORMAT") or "auto").lower()
    if log_format not in {"auto", "json", "console"}:
        raise SettingsError("CHRONICLE_LOG_FORMAT must be auto, json or console")
    log_level = (env.get("CHRONICLE_LOG_LEVEL") or "info").lower()
    if log_level not in {"debug", "info", "warning", "error"}:
        raise SettingsError("CHRONICLE_LOG_LEVEL must be debug, info, warning or error")
    modules = tuple(
        m.strip() for m in (env.get("CHRONICLE_COMMAND_MODULES") or "").split(",") if m.strip()
    )
    return Settings(
        database_url=database_url,
        database_schema=schema,
        broker_url=broker_url,
        data_dir=Path(env.get("CHRONICLE_DATA_DIR") or ".chronicle"),
        host=env.get("CHRONICLE_HOST") or "127.0.0.1",
        port=_int(env, "CHRONICLE_PORT", 8000, 1, 65535),
        queue_prefix=env.get("CHRONICLE_QUEUE_PREFIX") or "chronicle.",
        command_modules=modules,
        log_format=log_format,
        log_level=log_level,
        default_backoff_seconds=_float(env, "CHRONICLE_RETRY_BACKOFF_SECONDS", 1.0),
        worker_threads=_int(env, "CHRONICLE_WORKER_THREADS", 8, 1, 256),
        projection_batch_size=_int(env, "CHRONICLE_PROJECTION_BATCH_SIZE", 500, 1, 10_000),
        files_dir_override=Path(files_dir)
        if (files_dir := env.get("CHRONICLE_FILES_DIR"))
        else None,
        import_max_bytes=_int(
            env, "CHRONICLE_IMPORT_MAX_BYTES", 100 * 1024 * 1024, 1024, 100 * 1024**3
        ),
        import_chunk_size=_int(env, "CHRONICLE_IMPORT_CHUNK_SIZE", 1000, 1, 50_000),
        export_retention_hours=_float(env, "CHRONICLE_EXPORT_RETENTION_HOURS", 168.0),
        database_pool_size=_int(env, "CHRONICLE_DATABASE_POOL_SIZE", 3, 1, 100),
        worker_lost_after_seconds=_float(
            env, "CHRONICLE_WORKER_LOST_AFTER_SECONDS", 30.0, 5.0, 3600.0
        ),
        stranded_after_seconds=_float(
            env, "CHRONICLE_STRANDED_AFTER_SECONDS", 120.0, 10.0, 86400.0
        ),
        idempotency_retention_hours=_float(
            env, "CHRONICLE_IDEMPOTENCY_RETENTION_HOURS", 24.0, 0.0, 24.0 * 365
        ),
        cors_origins=_origins(env),
        admin_password=_admin_password(env),
        public_url=_public_url(env),
        session_idle_minutes=_float(env, "CHRONICLE_SESSION_IDLE_MINUTES", 30.0, 1.0, 7 * 24 * 60),
        session_lifetime_hours=_float(
            env, "CHRONICLE_SESSION_LIFETIME_HOURS", 12.0, 0.1, 24.0 * 90
        ),
        live_stream_seconds=_float(env, "CHRONICLE_LIVE_STREAM_SECONDS", 300.0, 1.0, 86400.0),
    )
