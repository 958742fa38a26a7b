"""End-to-end fixtures: real `chronicle` processes on PostgreSQL + RabbitMQ, driven over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pika
import psycopg
import pytest

from tests.conftest import POSTGRES_URL, RABBITMQ_URL, require_service, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """Starts `python -m interfaces.cli …` processes and stops them all at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        name = "-".join(args[:1])
        log = (self.logs / f"{name}-{len(self.running)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.running:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def dump_logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


def create_token(
    env: dict[str, str], cwd: Path | None = None, name: str = "e2e", role: str = "admin"
) -> str:
    """`chronicle tokens create NAME --role ROLE`, as an operator runs it: the token is the
    last line of its output."""
    result = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "tokens", "create", name, "--role", role],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"tokens create failed:\n{result.stdout}\n{result.stderr}"
    token = result.stdout.strip().splitlines()[-1].strip()
    assert token.startswith("chr_"), result.stdout
    return token


def api_client(base_url: str, token: str) -> httpx.Client:
    """An HTTP client of `base_url` that sends `Authorization: Bearer <token>`."""
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=5)


def wait_ready(base_url: str, timeout: float = 30.0) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{base_url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout, f"{base_url}/ready")


class Up:
    """`chronicle up` run from an empty folder with no CHRONICLE_* setting."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_")}
        self.folder = folder
        self.env = env
        self.log_path = folder / "up.log"
        self._log = self.log_path.open("wb")
        # From an empty folder: `up` creates its data folder (./.chronicle) there.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", "up", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base_url = f"http://127.0.0.1:{port}"

    def client(self, name: str = "e2e") -> httpx.Client:
        """A client carrying an admin token made by `chronicle tokens create` in the same
        folder and environment, while `up` runs."""
        return api_client(self.base_url, create_token(self.env, cwd=self.folder, name=name))

    def stop(self) -> int:
        """Stop it as Ctrl-C does; returns its exit code."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(30)
        finally:
            self._log.close()
            print(self.log_path.read_text(errors="replace")[-6000:])  # shown on failure
        return code


@pytest.fixture
def production(tmp_path: Path) -> Iterator[tuple[str, Processes]]:
    """`chronicle serve`, `projector`, `scheduler` and `worker` on a fresh schema and queues.

    Requests need credentials: `api` is a client with an admin token of this deployment."""
    require_service("PostgreSQL", POSTGRES_URL)
    require_service("RabbitMQ", RABBITMQ_URL)
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = {
        **os.environ,
        "CHRONICLE_DATABASE_URL": POSTGRES_URL,
        "CHRONICLE_DATABASE_SCHEMA": schema,
        "CHRONICLE_BROKER_URL": RABBITMQ_URL,
        "CHRONICLE_QUEUE_PREFIX": prefix,
        "CHRONICLE_PORT": str(port),
        "CHRONICLE_WORKER_THREADS": "4",
        "CHRONICLE_LOG_FORMAT": "json",
        # Uploads and export files: shared by the API and the workers, as in production.
        "CHRONICLE_DATA_DIR": str(tmp_path / "data"),
    }
    procs = Processes(env, tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        procs.start("serve")
        procs.start("projector")
        procs.start("scheduler")
        procs.start("worker", "--queues", "high,default,low", "--processes", "2", "--threads", "2")
        wait_ready(base_url)
        yield base_url, procs
    finally:
        procs.stop_all()
        print(procs.dump_logs())
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        delete_queues(prefix)


@pytest.fixture
def api(production: tuple[str, Processes]) -> Iterator[httpx.Client]:
    """A client of the `production` API with a token made by `chronicle tokens create`."""
    base_url, procs = production
    with api_client(base_url, create_token(procs.env)) as client:
        yield client


def delete_queues(prefix: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for queue in ("high", "default", "low"):
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(f"{prefix}{queue}{suffix}")
    finally:
        connection.close()
