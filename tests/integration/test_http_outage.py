"""The API while its database is unreachable: 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest

from infrastructure.settings import Settings
from interfaces.bootstrap import bootstrap
from tests.conftest import ScratchDatabase, scratch_database
from tests.integration.conftest import api_client

pytestmark = pytest.mark.integration


def test_requests_during_an_outage_get_503_with_retry_after() -> None:
    with scratch_database("chronicle_api") as database:
        outage(database)


def outage(database: ScratchDatabase) -> None:
    chronicle = bootstrap(Settings(database_url=database.url))
    try:
        with api_client(chronicle) as client:
            assert client.get("/api/jobs").status_code == 200
            database.refuse_connections()
            database.cut_connections()
            response = client.get("/api/jobs")
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert response.json()["error"] == "unavailable"
            database.allow_connections()
            assert client.get("/api/jobs").status_code == 200
    finally:
        chronicle.close()
