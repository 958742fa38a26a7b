"""`Idempotency-Key` on the routes that create: a retried request is answered, not repeated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient

from interfaces.bootstrap import Chronicle
from interfaces.cli.main import cli
from tests.integration.conftest import api_client

pytestmark = pytest.mark.integration


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    with api_client(chronicle) as test_client:
        yield test_client


def test_a_retried_dispatch_returns_the_first_job(client: TestClient[Litestar]) -> None:
    body = {"command_line": "demo:echo once", "queue": "high"}
    key = {"Idempotency-Key": "deploy-2026-12-05"}
    first = client.post("/api/jobs", json=body, headers=key)
    again = client.post("/api/jobs", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    listed = client.get("/api/jobs", params={"command": "demo:echo"}).json()["items"]
    assert [item["id"] for item in listed if item["command_line"] == "demo:echo once"] in (
        [first.json()["id"]],
        [],  # the read model may not have caught up; never two
    )
    # Without a key, each request is a new job.
    assert client.post("/api/jobs", json=body).json()["id"] != first.json()["id"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_key_reused_for_another_request_is_a_422(client: TestClient[Litestar]) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert client.post("/api/jobs", json={"command_line": "demo:noop"}, headers=key).is_success
    other = client.post("/api/jobs", json={"command_line": "demo:echo x"}, headers=key)
    assert other.status_code == 422, other.text
    assert other.json()["field"] == "idempotency_key"
    assert "different request" in other.json()["message"]
    for bad in ("tab\there", "x" * 256):
        response = client.post(
            "/api/jobs", json={"command_line": "demo:noop"}, headers={"Idempotency-Key": bad}
        )
        assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_retried_batch_returns_the_first_batch(client: TestClient[Litestar]) -> None:
    body = {"name": "nightly", "jobs": [{"command_line": "demo:noop"}]}
    key = {"Idempotency-Key": "nightly-1"}
    first = client.post("/api/batches", json=body, headers=key)
    again = client.post("/api/batches", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]


def test_the_cli_takes_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    first = run("dispatch", "demo:echo hi", "--idempotency-key", "cron-7")
    assert run("dispatch", "demo:echo hi", "--idempotency-key", "cron-7") == first
    batch = run("batches", "create", "b", "demo:noop", "--idempotency-key", "b-7")
    assert run("batches", "create", "b", "demo:noop", "--idempotency-key", "b-7") == batch
