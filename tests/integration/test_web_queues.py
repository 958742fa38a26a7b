"""The dashboard's queues page: per queue its counts, its pause (who, why, since when), the
maintenance pause, and the chart data (throughput and wait per minute for the last hour, per
15 minutes for the last 24 hours) from the queue metrics read model, on both backends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.jobs import DispatchRequest
from application.views.queue_metrics import minute_of
from domain.principals import Role
from interfaces.bootstrap import Chronicle, bootstrap
from interfaces.http import create_app
from tests.integration.conftest import make_settings
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeClock, FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's
# 12:00:30 UTC: the jobs below start and end within the minute 12:00.
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 - timedelta(hours=5))


@pytest.fixture
def chronicle(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Chronicle]:
    """The conftest's Chronicle (both backends), with a clock the test moves."""
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    registry = CommandRegistry()
    register_builtins(registry)
    app = bootstrap(make_settings(backend, tmp_path, schema), registry=registry, clock=clock)
    yield app
    app.close()


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    chronicle.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:tests")
    with TestClient(create_app(chronicle)) as test_client:
        yield test_client


def sign_in(client: TestClient[Litestar]) -> None:
    """As a browser does (after the test's clock has moved: sessions expire)."""
    response = client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD, "next": "/queues"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/queues"


def dispatch(chronicle: Chronicle, line: str, queue: str, **options: Any) -> None:
    chronicle.jobs.dispatch(
        DispatchRequest(command_line=line, queue=queue, max_attempts=1, **options)
    )


def page(client: TestClient[Litestar], path: str = "/queues") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    html = response.text
    assert "style=" not in html
    # Scripts come from this origin only; the one inline block is data, never executed.
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    return html


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def counts(html: str, queue: str) -> dict[str, int]:
    """The counts of the queue's row in the summary table."""
    row = re.search(rf'<tr data-queue="{queue}">(.*?)</tr>', html, re.DOTALL)
    assert row is not None, queue
    found = re.findall(r'data-count="(\w+)">([\d\u202f]+)<', row.group(1))
    return {key: int(value.replace("\u202f", "")) for key, value in found}


def card(html: str, queue: str) -> str:
    """The queue's section, the target of `/queues#<queue>`."""
    found = re.search(
        rf'<section class="card queue-card" id="{queue}".*?</section>', html, re.DOTALL
    )
    assert found is not None, queue
    return found.group(0)


def chart_data(html: str) -> dict[str, Any]:
    block = re.search(
        r'<script type="application/json" id="queue-charts">(.*?)</script>', html, re.DOTALL
    )
    assert block is not None
    data: dict[str, Any] = json.loads(block.group(1))
    return data


def check_charts(data: dict[str, Any]) -> None:
    """The chart data of the scenario of `test_counts_pauses_and_charts_per_queue`."""
    assert set(data) == {"high", "default", "low"}
    now_minute = minute_of(T0)
    high_hour, high_day = data["high"]["hour"], data["high"]["day"]
    assert len(high_hour["t"]) == 60
    assert high_hour["step_minutes"] == 1
    assert high_hour["t"][-1] == now_minute * 60  # the current minute last
    assert high_hour["per_minute"][-1] == 2
    assert sum(high_hour["per_minute"]) == 2
    assert high_hour["wait_avg_ms"][-1] == 2000.0
    assert 1000 <= high_hour["wait_p95_ms"][-1] <= 2000
    assert high_hour["wait_avg_ms"][:-1] == [None] * 59
    assert len(high_day["t"]) == 96
    assert high_day["step_minutes"] == 15
    assert high_day["t"][-1] <= now_minute * 60 < high_day["t"][-1] + 15 * 60
    assert round(sum(high_day["per_minute"]) * 15) == 2
    assert high_day["wait_avg_ms"][-1] == 2000.0
    # The failed job counts as finished, and waited too.
    assert data["low"]["hour"]["per_minute"][-1] == 1
    # Default's job of five hours ago is in the 24 h chart only.
    assert sum(data["default"]["hour"]["per_minute"]) == 0
    day = data["default"]["day"]
    slot = (minute_of(T0 - timedelta(hours=5)) * 60 - day["t"][0]) // (15 * 60)
    assert day["per_minute"][slot] == round(1 / 15, 3)
    assert round(sum(day["per_minute"]) * 15) == 1


def test_counts_pauses_and_charts_per_queue(
    client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock
):
    h = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(h.queue)
    # Five hours ago: one job on default (in the 24 h chart, not in the last hour's).
    dispatch(chronicle, "demo:echo old", "default")
    h.run()
    clock.current = T0
    dispatch(chronicle, "demo:echo one", "high")
    dispatch(chronicle, "demo:echo two", "high")
    dispatch(chronicle, "demo:fail --times 3", "low")
    clock.advance(2)  # the three due jobs wait 2 s before they start
    h.run()
    chronicle.queue_control.pause(
        tenant="default", queue="default", by="user:grace", reason="database migration"
    )
    dispatch(chronicle, "demo:echo waits", "default")
    dispatch(chronicle, "demo:echo later", "default", delay_seconds=3600)
    h.follow()
    h.backlog.clear()  # their messages stay with the broker: paused, and not due

    sign_in(client)
    html = page(client)
    zero = {"waiting": 0, "delayed": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert counts(html, "high") == {**zero, "succeeded": 2}
    assert counts(html, "low") == {**zero, "failed": 1}
    assert counts(html, "default") == {**zero, "succeeded": 1, "waiting": 1, "delayed": 1}

    # The paused queue says who paused it, why and since when; the others are not paused.
    default = text_of(card(html, "default"))
    assert "Paused by user:grace since 2026-06-01 12:00:32 UTC" in default
    assert "“ database migration ”" in default
    assert "Paused by" not in card(html, "high")
    assert "Paused by" not in card(html, "low")
    assert "data-maintenance" not in html
    # The counts block reloads itself after job events.
    assert re.search(
        r'<div id="live-queues" data-live-refresh hx-get="/queues" hx-select="#live-queues"', html
    )

    check_charts(chart_data(html))

    # After another job ran, the same page (what the live refresh fetches) shows it.
    dispatch(chronicle, "demo:echo three", "high")
    h.run()
    again = page(client)
    assert counts(again, "high") == {**zero, "succeeded": 3}
    assert chart_data(again)["high"]["hour"]["per_minute"][-1] == 3


def test_the_maintenance_pause_and_an_empty_store(
    client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock
):
    clock.current = T0
    h = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(h.queue)
    sign_in(client)
    html = page(client)
    for queue in ("high", "default", "low"):
        assert f'id="{queue}"' in html  # /queues#<queue> from the home page
        assert counts(html, queue)["waiting"] == 0
    assert all(
        series["per_minute"] == [0] * len(series["t"]) and set(series["wait_avg_ms"]) == {None}
        for queue in chart_data(html).values()
        for series in queue.values()
    )

    chronicle.queue_control.pause(tenant="default", queue=None, by="user:root", reason="upgrade")
    h.follow()
    html = page(client)
    banner = re.search(r"<p class=\"banner warn\" data-maintenance>(.*?)</p>", html, re.DOTALL)
    assert banner is not None
    assert "All queues are paused for maintenance by user:root since" in text_of(banner.group(1))
    assert "“upgrade”" in banner.group(1)
    assert html.count("paused (maintenance)") == 3


def test_signed_out_goes_to_sign_in(chronicle: Chronicle):
    with TestClient(create_app(chronicle)) as client:
        response = client.get("/queues", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/queues"
