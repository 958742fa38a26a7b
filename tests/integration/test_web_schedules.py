"""The dashboard's schedules pages: the list (filter, pages, next due time in the schedule's
timezone and the viewer's, last run) and one schedule's page (definition, runs with skipped
ticks, who changed what, comments), scoped to the signed-in tenant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.builtin_commands import register_builtins
from application.commands import CommandRegistry
from application.schedules import ScheduleRequest
from domain.principals import Role
from interfaces.bootstrap import Chronicle, bootstrap
from interfaces.http import create_app
from interfaces.web import schedules as schedule_pages
from tests.integration.conftest import bearer, make_settings
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeClock, FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's
# Monday 1 June 2026, just after 12:00 UTC: 14:00 summer time in Rome.
T0 = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
EVERY_MINUTE = [{"name": "everyMinute", "args": []}]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def chronicle(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Chronicle]:
    """The conftest's Chronicle, with a clock the test moves: due times are exact."""
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


def sign_in(client: TestClient[Litestar], next_path: str = "/schedules") -> None:
    response = client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD, "next": next_path},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def operator(chronicle: Chronicle, tenant: str | None = None) -> dict[str, str]:
    name = f"op-{tenant}" if tenant else "op"
    return bearer(chronicle, name, role=Role.OPERATOR, tenant=tenant)


def create(client: TestClient[Litestar], headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/schedules", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def text_of(html: str) -> str:
    """The page's text without tags, spaces collapsed: what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def page(client: TestClient[Litestar], path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert "<script>" not in response.text
    assert "style=" not in response.text
    return response.text


@dataclass(frozen=True)
class RomeWorld:
    """A Europe/Rome schedule, edited, with a tick that ran, one skipped while it still ran
    (overlap), a manual run, all finished, and a comment; the session is signed in."""

    schedule_id: UUID
    first_job: UUID
    manual_job: str
    detail: str


@pytest.fixture
def rome(client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock) -> RomeWorld:
    harness = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(harness.queue)
    schedule_id = chronicle.schedules.create(
        ScheduleRequest(
            name="rome-report",
            command_line="demo:echo hello",
            helpers=EVERY_MINUTE,
            timezone="Europe/Rome",
            without_overlapping=True,
            by="user:grace",
        )
    )
    op = operator(chronicle)
    path = f"/api/schedules/{schedule_id}"
    edited = client.patch(path, json={"max_attempts": 2, "queue": "low"}, headers=op)
    assert edited.status_code == 200, edited.text
    harness.follow()

    # The first tick starts a job; the next falls due while it still runs: skipped (overlap).
    scheduler = chronicle.scheduler("s1")
    scheduler.load()
    clock.current = datetime(2026, 6, 1, 12, 1, 0, 10_000, tzinfo=UTC)
    assert scheduler.fire_due() == 1
    clock.current = datetime(2026, 6, 1, 12, 2, 0, 10_000, tzinfo=UTC)
    assert scheduler.fire_due() == 1
    harness.run()
    manual = client.post(f"{path}/run", headers=op)
    assert manual.status_code == 202, manual.text
    harness.run()
    comment = client.post(f"{path}/comments", json={"text": "owned by the Rome team"}, headers=op)
    assert comment.status_code == 201, comment.text
    harness.follow()
    runs, _ = chronicle.schedule_queries.runs("default", schedule_id, limit=3, cursor=None)
    first_job = runs[2].job_id
    assert first_job is not None
    sign_in(client)
    detail = page(client, f"/schedules/{schedule_id}")
    return RomeWorld(schedule_id, first_job, manual.json()["job_id"], detail)


def section(html: str, marker: str, end: str = "</section>") -> str:
    return html.split(marker, 1)[1].split(end, 1)[0]


def test_the_list_shows_next_due_in_the_schedules_zone_and_the_last_run(
    client: TestClient[Litestar], rome: RomeWorld
):
    listing = page(client, "/schedules")
    seen = text_of(listing)
    assert f'href="/schedules/{rome.schedule_id}"' in listing
    assert "rome-report" in seen
    assert "demo:echo hello" in seen
    assert "Every minute" in seen
    assert "Europe/Rome" in seen
    assert "active" in seen
    # The next minute after 12:02 UTC: 14:03 summer time in Rome, and the instant for the viewer.
    assert "2026-06-01 14:03:00 CEST (UTC+02:00)" in seen
    assert '<time datetime="2026-06-01T12:03:00Z" data-local>' in listing
    last_run = text_of(section(listing, f'href="/jobs/{rome.manual_job}"', "</tr>"))
    assert "succeeded" in last_run
    assert 'hx-select="#live-schedules"' in listing


def test_the_schedules_page_shows_its_definition_and_next_due(rome: RomeWorld):
    seen = text_of(rome.detail)
    assert "Command line demo:echo hello" in seen
    assert "Frequency Every minute * * * * * as everyMinute()" in seen
    assert "Timezone Europe/Rome" in seen
    assert "Next due 2026-06-01 14:03:00 CEST (UTC+02:00)" in seen
    assert '<time datetime="2026-06-01T12:03:00Z" data-local>' in rome.detail
    assert "Max attempts 2" in seen
    assert "Queue low" in seen
    assert "Without overlapping yes" in seen
    assert "Missed runs skip" in seen
    assert "Timeout none" in seen
    last = section(rome.detail, 'id="live-last"', "</dl>")
    assert f'href="/jobs/{rome.manual_job}"' in last
    assert "succeeded" in last


def test_the_run_history_shows_outcomes_and_why_a_tick_was_skipped(rome: RomeWorld):
    assert 'id="live-runs" data-live-refresh' in rome.detail
    assert 'hx-select="#live-runs"' in rome.detail
    runs = section(rome.detail, 'id="live-runs"', "</table>")
    # Newest first: the manual run, the skipped tick, the first tick.
    rows = re.findall(r'<tr data-tick="[^"]+" class="run-(\w+)">', runs)
    assert rows == ["succeeded", "skipped", "succeeded"]
    seen = text_of(runs)
    assert "Skipped: overlap" in seen
    assert "2026-06-01 14:02:00 CEST" in seen  # the skipped tick, in Rome
    assert "2026-06-01 14:01:00 CEST" in seen  # the first one
    assert f'href="/jobs/{rome.first_job}"' in runs
    assert f'href="/jobs/{rome.manual_job}"' in runs
    assert "run now by token:op" in seen
    assert "success" in seen
    assert "hello" in runs  # the output
    skip_detail = re.search(r'<div class="skip-detail">([^<]+)</div>', runs)
    assert skip_detail is not None
    assert str(rome.first_job) in skip_detail.group(1)  # the run it waited for


def test_the_change_history_names_who_changed_what_and_the_comments_show(rome: RomeWorld):
    history = text_of(section(rome.detail, 'id="history-title"'))
    # Newest first: the comment, the operator's edit, the creation by grace.
    assert history.index("edited by token:op") < history.index("created by user:grace")
    assert "max_attempts : 3 → 2" in history
    assert "queue : default → low" in history
    assert "comment added by token:op" in history
    comments = text_of(section(rome.detail, 'id="comments-title"'))
    assert "owned by the Rome team" in comments
    assert "token:op" in comments


def test_list_filters_on_state_and_pages(
    client: TestClient[Litestar], chronicle: Chronicle, monkeypatch: pytest.MonkeyPatch
):
    op = operator(chronicle)
    body = {"command_line": "demo:echo hi", "expression": "0 13 * * *"}
    ids = [
        create(client, op, name=f"daily-{i}", timezone="Europe/Rome", **body)["id"]
        for i in range(3)
    ]
    paused = create(client, op, name="sleeping", active=False, **body)["id"]
    Harness(chronicle, FakeQueue()).follow()
    sign_in(client)

    everything = page(client, "/schedules")
    assert [f"/schedules/{i}" for i in [paused, *reversed(ids)]] == re.findall(
        r'<a href="(/schedules/[0-9a-f-]{36})">', everything
    )
    assert "paused" in text_of(everything.split(paused, 1)[1].split("</tr>", 1)[0])
    # 13:00 in Rome is 11:00 UTC in June; the paused schedule has no next due time.
    assert "2026-06-02 13:00:00 CEST (UTC+02:00)" in text_of(everything)
    active = page(client, "/schedules?state=active")
    assert "sleeping" not in active
    assert all(f"/schedules/{i}" in active for i in ids)
    only_paused = page(client, "/schedules?state=paused")
    assert "sleeping" in only_paused
    assert not any(f"/schedules/{i}" in only_paused for i in ids)
    assert 'option value="paused" selected' in only_paused
    assert "Not valid" in page(client, "/schedules?state=sometimes", 422)
    # The name search: any case, part of a name, a typed % matched as such; kept with the state.
    found = page(client, "/schedules?q=DAILY-1&state=active")
    assert re.findall(r'<a href="/schedules/([0-9a-f-]{36})">', found) == [ids[1]]
    assert 'value="DAILY-1"' in found
    assert "sleeping" in page(client, "/schedules?q=leep")
    assert re.findall(r'<a href="/schedules/', page(client, "/schedules?q=%25")) == []

    monkeypatch.setattr(schedule_pages, "PAGE_SIZE", 2)
    first = page(client, "/schedules?state=active")
    assert re.findall(r'<a href="/schedules/([0-9a-f-]{36})">', first) == [ids[2], ids[1]]
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link is not None
    second = page(client, next_link.group(1).replace("&amp;", "&"))
    assert "state=active" in next_link.group(1)
    assert re.findall(r'<a href="/schedules/([0-9a-f-]{36})">', second) == [ids[0]]
    assert 'rel="next"' not in second
    assert "First page" in second


def test_runs_are_paged(
    client: TestClient[Litestar], chronicle: Chronicle, monkeypatch: pytest.MonkeyPatch
):
    op = operator(chronicle)
    schedule_id = create(
        client, op, name="manual", command_line="demo:echo hi", expression="0 0 1 1 *"
    )["id"]
    jobs = [
        client.post(f"/api/schedules/{schedule_id}/run", headers=op).json()["job_id"]
        for _ in range(3)
    ]
    Harness(chronicle, FakeQueue()).follow()
    sign_in(client)
    monkeypatch.setattr(schedule_pages, "PAGE_SIZE", 2)
    first = page(client, f"/schedules/{schedule_id}")
    runs = first.split('id="live-runs"', 1)[1]
    assert f"/jobs/{jobs[2]}" in runs
    assert f"/jobs/{jobs[1]}" in runs
    assert f"/jobs/{jobs[0]}" not in runs
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link is not None
    second = page(client, next_link.group(1))
    assert f"/jobs/{jobs[0]}" in second.split('id="live-runs"', 1)[1]


def test_next_due_in_a_dst_gap_is_explained(
    client: TestClient[Litestar], chronicle: Chronicle, clock: FakeClock
):
    clock.current = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    schedule_id = create(
        client,
        operator(chronicle),
        name="half-past-two",
        command_line="demo:echo hi",
        helpers=[{"name": "dailyAt", "args": ["02:30"]}],
        timezone="Europe/Rome",
    )["id"]
    Harness(chronicle, FakeQueue()).follow()
    sign_in(client)
    seen = text_of(page(client, f"/schedules/{schedule_id}"))
    # 02:30 does not exist on the 29th in Rome (clocks jump from 02:00 to 03:00).
    assert "2026-03-29 03:00:00 CEST (UTC+02:00)" in seen
    assert "DST: this local time does not exist that day" in seen


def test_another_tenants_schedule_is_not_found(client: TestClient[Litestar], chronicle: Chronicle):
    theirs = create(
        client,
        operator(chronicle, "acme"),
        name="acme-hourly",
        command_line="demo:echo acme",
        expression="0 * * * *",
    )["id"]
    Harness(chronicle, FakeQueue()).follow()
    sign_in(client)
    missing = page(client, f"/schedules/{theirs}", 404)
    assert "Not found" in missing
    assert "acme-hourly" not in missing
    assert "acme-hourly" not in page(client, "/schedules")
    assert "Not found" in page(client, f"/schedules/{UUID(int=7)}", 404)
    assert "Not valid" in page(client, "/schedules/not-an-id", 422)


def test_the_pages_need_a_session(client: TestClient[Litestar]):
    away = client.get("/schedules?state=paused", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=/schedules%3Fstate%3Dpaused"
