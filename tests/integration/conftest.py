"""Integration fixtures: a Chronicle on SQLite files or on a fresh Postgres schema per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from infrastructure.settings import Settings
from interfaces.bootstrap import Chronicle, bootstrap
from tests.conftest import POSTGRES_URL, require_service


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A schema of its own for each test: no test cleans or sees another's rows."""
    require_service("PostgreSQL", POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def make_settings(backend: str, tmp_path: Path, schema: str | None) -> Settings:
    if backend == "sqlite":
        return Settings(data_dir=tmp_path / "data", default_backoff_seconds=0.0)
    return Settings(
        database_url=POSTGRES_URL,
        database_schema=schema or "public",
        default_backoff_seconds=0.0,
        data_dir=tmp_path / "data",
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
