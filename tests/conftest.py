"""Shared fixtures: service URLs, and the rule that a missing service fails in CI."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "CHRONICLE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("CHRONICLE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("CHRONICLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip locally when a service is down; in CI (CI=true) fail instead."""
    if reachable(url):
        return
    message = f"{name} is not reachable at {urlsplit(url).netloc}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
