"""PostgreSQL connections: the README's production topology fits in 50, under load too."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    RABBITMQ_URL,
    ScratchDatabase,
    require_service,
    scratch_database,
    wait_until,
)
from tests.e2e.conftest import (
    Processes,
    api_client,
    create_token,
    delete_queues,
    free_port,
    wait_ready,
)

pytestmark = pytest.mark.e2e

BUDGET = 50


@pytest.fixture
def database() -> Iterator[ScratchDatabase]:
    """A database of its own, so its connections can be counted apart from other tests'."""
    with scratch_database("chronicle_conn") as database:
        yield database


def test_the_production_topology_fits_in_fifty_connections(
    database: ScratchDatabase, tmp_path: Path
) -> None:
    """serve + projector + scheduler + `worker --processes 4`, as the README runs them."""
    require_service("RabbitMQ", RABBITMQ_URL)
    prefix = f"conn-{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = {
        **os.environ,
        "CHRONICLE_DATABASE_URL": database.url,
        "CHRONICLE_BROKER_URL": RABBITMQ_URL,
        "CHRONICLE_QUEUE_PREFIX": prefix,
        "CHRONICLE_PORT": str(port),
        "CHRONICLE_LOG_FORMAT": "json",
        "CHRONICLE_DATA_DIR": str(tmp_path / "data"),
    }
    procs = Processes(env, tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    # Made before the processes start (and the count begins): the CLI's own connections are
    # no part of the topology measured.
    api = api_client(base_url, create_token(env))
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], database.connections())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        procs.start("serve")
        procs.start("projector")
        procs.start("scheduler")
        procs.start("worker", "--queues", "high,default,low", "--processes", "4", "--threads", "8")
        wait_ready(base_url, timeout=60)
        response = api.post(
            "/api/batches",
            json={
                "name": "load",
                "jobs": [{"command_line": "demo:sleep --seconds=0.05"} for _ in range(400)],
            },
            timeout=30,
        )
        assert response.status_code == 201, response.text
        batch = response.json()["id"]

        def finished() -> bool:
            body = api.get(f"/api/batches/{batch}").json()
            return bool(body["finished"])

        wait_until(finished, 180, "the batch to finish")
        for _ in range(30):  # and reads while idle
            assert api.get("/api/queues").status_code == 200
    finally:
        stop.set()
        sampler.join()
        api.close()
        procs.stop_all()
        print(procs.dump_logs())
        delete_queues(prefix)
    print(f"peak connections: {peak[0]}")
    assert 0 < peak[0] <= BUDGET, f"{peak[0]} connections, over the budget of {BUDGET}"
