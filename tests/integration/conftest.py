"""Integration fixtures: a Chronicle on SQLite files or on a fresh Postgres schema per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from domain.principals import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, bootstrap
from interfaces.http.app import create_app
from tests.conftest import POSTGRES_URL, require_service


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A schema of its own for each test: no test cleans or sees another's rows."""
    require_service("PostgreSQL", POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


#: Live event streams end this soon in tests, so a test client (which reads whole answers)
#: gets one back.
LIVE_STREAM_SECONDS = 0.3


def make_settings(backend: str, tmp_path: Path, schema: str | None) -> Settings:
    if backend == "sqlite":
        return Settings(
            data_dir=tmp_path / "data",
            default_backoff_seconds=0.0,
            live_stream_seconds=LIVE_STREAM_SECONDS,
        )
    return Settings(
        database_url=POSTGRES_URL,
        database_schema=schema or "public",
        default_backoff_seconds=0.0,
        data_dir=tmp_path / "data",
        live_stream_seconds=LIVE_STREAM_SECONDS,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def chronicle(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Chronicle]:
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    app = bootstrap(make_settings(backend, tmp_path, schema), registry=registry)
    yield app
    app.close()


def bearer(
    chronicle: Chronicle,
    name: str = "tester",
    *,
    role: Role = Role.ADMIN,
    tenant: str | None = None,
) -> dict[str, str]:
    """The `Authorization` header of the API token `name` of `chronicle` (made on first use,
    as `chronicle tokens create` would): how the tests call the API, like any program."""
    tokens: dict[str, str] = vars(chronicle).setdefault("_test_tokens", {})
    if name not in tokens:
        issued = chronicle.tokens.create(name=name, role=role, tenant=tenant, by="cli:tests")
        tokens[name] = issued.token
    return {"Authorization": f"Bearer {tokens[name]}"}


@contextmanager
def api_client(
    chronicle: Chronicle,
    app: Litestar | None = None,
    *,
    name: str = "tester",
    role: Role = Role.ADMIN,
    tenant: str | None = None,
) -> Iterator[TestClient[Litestar]]:
    """A test client of the API over `chronicle` that sends the token `name` (an admin bound
    to no tenant unless told otherwise) with every request."""
    with TestClient(app or create_app(chronicle)) as client:
        client.headers.update(bearer(chronicle, name, role=role, tenant=tenant))
        yield client
