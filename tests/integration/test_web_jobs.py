"""The jobs pages of the dashboard: `/jobs` (filters in the URL, pages), `/jobs/{id}` (output,
traceback, lineage, timeline, comments), `/waiting` (in the order jobs run) and `/failed`
(list and grouped by error), for a browser signed in with a session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.jobs import DispatchRequest
from application.schedules import ScheduleRequest
from application.views.jobs import JobFilter
from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's
TENANT = "default"


@dataclass
class World:
    """Jobs of every kind in the signed-in tenant, and one of another tenant."""

    echo: UUID
    disk_full: UUID
    disk_full_again: UUID
    boom: UUID
    batch: UUID
    batch_jobs: list[UUID]
    schedule: UUID
    scheduled_job: UUID
    first_ready: UUID
    second_ready: UUID
    high_ready: UUID
    delayed: UUID
    theirs: UUID


def _dispatch(chronicle: Chronicle, command_line: str, **options: Any) -> UUID:
    return chronicle.jobs.dispatch(DispatchRequest(command_line=command_line, **options))


def _build_world(chronicle: Chronicle) -> World:
    h = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(h.queue)
    echo = _dispatch(chronicle, "demo:echo hello --times 2", queue="high", requested_by="user:bob")
    disk_full = _dispatch(
        chronicle, "demo:fail --times 9 --message 'disk full'", queue="low", max_attempts=1
    )
    disk_full_again = _dispatch(
        chronicle, "demo:fail --times 9 --message 'disk full'", queue="default", max_attempts=1
    )
    boom = _dispatch(chronicle, "demo:fail --times 9 --message boom", max_attempts=1)
    batch = h.create(["demo:echo one", "demo:echo two"])
    schedule = chronicle.schedules.create(
        ScheduleRequest(name="hourly", command_line="demo:echo scheduled", expression="0 * * * *")
    )
    scheduled_job = chronicle.schedules.run_now(schedule, tenant=TENANT, by="user:ada")
    theirs = _dispatch(chronicle, "demo:echo secret", tenant="globex")
    h.run()
    # A retried failure that fails again: two rounds, the second begun by user:carol.
    chronicle.jobs.retry(disk_full, tenant=TENANT, by="user:carol")
    chronicle.jobs.comment(disk_full, tenant=TENANT, author="user:dan", text="looking into it")
    h.run()
    batch_jobs = [
        row.id
        for row in chronicle.queries.list(
            _filter(batch_id=str(batch)), limit=50, cursor=None, now=chronicle.clock.now()
        ).items
    ]
    # Waiting jobs, sent to the broker but never run.
    first_ready = _dispatch(chronicle, "demo:echo first", queue="default")
    second_ready = _dispatch(chronicle, "demo:echo second", queue="default")
    high_ready = _dispatch(chronicle, "demo:echo urgent", queue="high")
    delayed = _dispatch(chronicle, "demo:echo later", queue="low", delay_seconds=3600)
    h.follow()
    return World(
        echo=echo,
        disk_full=disk_full,
        disk_full_again=disk_full_again,
        boom=boom,
        batch=batch,
        batch_jobs=batch_jobs,
        schedule=schedule,
        scheduled_job=scheduled_job,
        first_ready=first_ready,
        second_ready=second_ready,
        high_ready=high_ready,
        delayed=delayed,
        theirs=theirs,
    )


def _filter(**values: Any) -> JobFilter:
    return JobFilter(tenant=TENANT, **values)


@pytest.fixture
def world(chronicle: Chronicle) -> World:
    return _build_world(chronicle)


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    chronicle.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:tests")
    with TestClient(create_app(chronicle)) as test_client:
        signed_in = test_client.post(
            "/login",
            data={"username": "ada", "password": PASSWORD, "next": "/jobs"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        yield test_client


def page(client: TestClient[Litestar], url: str, status: int = 200) -> str:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == status, response.text
    assert "text/html" in response.headers["content-type"]
    return response.text


def listed(html: str) -> list[UUID]:
    """The jobs of a list page's rows, in their order."""
    return [UUID(found) for found in re.findall(r'<tr data-job="([0-9a-f-]{36})"', html)]


def test_the_list_shows_the_tenants_jobs_newest_first_with_their_columns(
    client: TestClient[Litestar], world: World
):
    html = page(client, "/jobs")
    jobs = listed(html)
    assert world.theirs not in jobs
    assert "demo:echo secret" not in html
    assert jobs.index(world.delayed) < jobs.index(world.first_ready) < jobs.index(world.echo)
    row = html.split(f'<tr data-job="{world.echo}">', 1)[1].split("</tr>", 1)[0]
    assert f'href="/jobs/{world.echo}"' in row
    assert str(world.echo)[:8] in row
    assert "demo:echo hello --times=2" in row
    assert "high" in row
    assert 'class="badge status-succeeded"' in row
    assert "1/3" in row
    assert row.count("<time datetime=") == 3  # dispatched, started, finished
    assert "data-local" in row
    assert "user:bob" in row
    delayed_row = html.split(f'<tr data-job="{world.delayed}">', 1)[1].split("</tr>", 1)[0]
    assert "status-delayed" in delayed_row
    # The part job events change reloads itself, with no inline script or style.
    assert 'id="live-jobs" data-live-refresh hx-get="/jobs"' in html
    assert "<script>" not in html
    assert "style=" not in html
    assert 'href="/static/jobs.css"' in html


def test_each_filter_of_the_list_narrows_it(
    client: TestClient[Litestar], chronicle: Chronicle, world: World
):
    failed = {world.disk_full, world.disk_full_again, world.boom}
    assert set(listed(page(client, "/jobs?status=failed"))) == failed
    assert set(listed(page(client, "/jobs?status=delayed"))) == {world.delayed}
    assert set(listed(page(client, "/jobs?status=ready"))) == {
        world.first_ready,
        world.second_ready,
        world.high_ready,
    }
    assert set(listed(page(client, "/jobs?queue=low"))) == {world.disk_full, world.delayed}
    assert set(listed(page(client, "/jobs?command=demo:fail"))) == failed
    batch_jobs = listed(page(client, f"/jobs?batch={world.batch}"))
    assert set(batch_jobs) == set(world.batch_jobs)
    assert len(batch_jobs) >= 2
    assert listed(page(client, f"/jobs?schedule={world.schedule}")) == [world.scheduled_job]
    # The search: a piece of the command line, in any case, `%` and `_` as themselves.
    assert set(listed(page(client, "/jobs?q=DISK+FULL"))) == {
        world.disk_full,
        world.disk_full_again,
    }
    assert listed(page(client, "/jobs?q=ECHO+hello")) == [world.echo]
    assert listed(page(client, "/jobs?q=%25")) == []
    assert listed(page(client, "/jobs?q=demo_echo")) == []
    # Filters combine, and blank ones (a form's empty fields) are none.
    assert listed(page(client, "/jobs?q=disk&queue=low&status=&batch=")) == [world.disk_full]
    # The dispatch time range: from <= dispatched_at < to.
    row = chronicle.queries.get(TENANT, world.first_ready)
    assert row is not None
    at = row.dispatched_at
    since = quote(at.isoformat())
    until = quote((at + timedelta(microseconds=1)).isoformat())
    assert listed(page(client, f"/jobs?from={since}&to={until}")) == [world.first_ready]
    newer = set(listed(page(client, f"/jobs?from={since}")))
    assert {world.first_ready, world.second_ready, world.delayed} <= newer
    assert world.echo not in newer
    older = set(listed(page(client, f"/jobs?to={since}")))
    assert world.echo in older
    assert world.first_ready not in older
    # A time without an offset, as a browser's datetime-local field sends it, is UTC.
    naive = at.astimezone(UTC).replace(tzinfo=None)
    assert world.first_ready in listed(page(client, f"/jobs?from={quote(naive.isoformat())}"))
    # The form shows the filters it applied.
    html = page(client, "/jobs?queue=low&q=disk")
    assert '<option value="low" selected>' in html
    assert 'name="q" value="disk"' in html


def test_the_list_pages_with_a_cursor_and_keeps_the_filters(
    client: TestClient[Litestar], world: World
):
    everything = listed(page(client, "/jobs"))
    assert len(everything) > 4
    seen: list[UUID] = []
    url = "/jobs?limit=2"
    while True:
        html = page(client, url)
        rows = listed(html)
        assert len(rows) <= 2
        seen += rows
        found = re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', html)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
        assert "limit=2" in url
    assert seen == everything
    # A filter stays on the next page.
    html = page(client, "/jobs?command=demo:fail&limit=2")
    assert len(listed(html)) == 2
    next_url = re.search(r'href="([^"]*)" rel="next"', html)
    assert next_url is not None
    rest = listed(page(client, next_url.group(1).replace("&amp;", "&")))
    assert len(rest) == 1
    assert "command=demo%3Afail" in next_url.group(1)
    # Oldest first, page after page, is the same list the other way round.
    oldest: list[UUID] = []
    url = "/jobs?order=oldest&limit=2"
    while url:
        html = page(client, url)
        oldest += listed(html)
        found = re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert oldest == list(reversed(everything))
    assert 'option value="oldest" selected' in page(client, "/jobs?order=oldest")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/jobs?status=exploded", "status"),
        ("/jobs?queue=urgent", "queue"),
        ("/jobs?batch=not-an-id", "batch"),
        ("/jobs?schedule=42", "schedule"),
        ("/jobs?from=yesterday", "from"),
        ("/jobs?to=2026-13-01", "to"),
        ("/jobs?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "dispatched_from"),
        ("/jobs?limit=0", "limit"),
        ("/jobs?cursor=zz", "cursor"),
        ("/jobs?q=" + "x" * 201, "search"),
        ("/jobs?order=random", "order"),
        ("/waiting?queue=urgent", "queue"),
        ("/failed?queue=urgent", "queue"),
        ("/failed?from=noon", "from"),
        ("/failed?group=queue", "group"),
    ],
)
def test_a_bad_filter_value_is_a_page_naming_the_field(
    client: TestClient[Litestar], url: str, field: str
):
    html = page(client, url, 422)
    assert "Not valid" in html
    assert field in html.split("<h1>", 1)[1]


def test_the_detail_shows_everything_about_a_job(client: TestClient[Litestar], world: World):
    html = page(client, f"/jobs/{world.echo}")
    assert "demo:echo hello --times=2" in html
    assert "<pre" in html
    assert "&#34;message&#34;: &#34;hello&#34;" in html or "&quot;message&quot;" in html
    assert "hello\nhello" in html  # the output
    assert "echoed" in html  # the result
    assert "user:bob" in html
    assert 'class="badge status-succeeded"' in html
    assert "1 of 3" in html
    timeline = html.split('id="timeline-title"', 1)[1]
    for event in ("dispatched", "started", "succeeded"):
        assert f'data-event="{event}"' in timeline
    assert '<span class="actor">test-worker</span>' in timeline
    assert 'id="live-job" data-live-refresh' in html

    failed = page(client, f"/jobs/{world.disk_full}")
    assert "RuntimeError" in failed
    assert "disk full" in failed
    assert "Traceback (most recent call last)" in failed
    assert '<pre class="traceback">' in failed
    lineage = failed.split('id="lineage-title"', 1)[1].split("</section>", 1)[0]
    assert "Round 2" in lineage
    assert "retried from round 1" in lineage
    assert "retried as round 2" in lineage
    assert "user:carol" in lineage
    assert "looking into it" in failed
    assert "user:dan" in failed
    timeline = failed.split('id="timeline-title"', 1)[1]
    assert timeline.count('data-event="dead_lettered"') == 2
    assert '<span class="actor">user:carol</span>' in timeline
    assert '<span class="actor">user:dan</span>' in timeline  # the comment

    batch_job = page(client, f"/jobs/{world.batch_jobs[0]}")
    assert f'href="/batches/{world.batch}"' in batch_job
    scheduled = page(client, f"/jobs/{world.scheduled_job}")
    assert f'href="/schedules/{world.schedule}"' in scheduled


def test_another_tenants_job_is_a_404_page_like_an_unknown_one(
    client: TestClient[Litestar], world: World
):
    theirs = page(client, f"/jobs/{world.theirs}", 404)
    nowhere = page(client, f"/jobs/{uuid4()}", 404)
    assert "Not found" in theirs
    assert "demo:echo secret" not in theirs
    assert "Not found" in nowhere
    assert "job id" in page(client, "/jobs/not-a-uuid", 422)


def test_waiting_lists_jobs_in_the_order_they_run_with_the_oldest_wait(
    client: TestClient[Litestar], world: World
):
    html = page(client, "/waiting")
    ready_table = html.split('id="ready-jobs"', 1)[1].split("</table>", 1)[0]
    delayed_table = html.split('id="delayed-jobs"', 1)[1].split("</table>", 1)[0]
    # Queue by queue (high first), the job due longest ago first.
    assert listed(ready_table) == [world.high_ready, world.first_ready, world.second_ready]
    assert listed(delayed_table) == [world.delayed]
    # The oldest of each queue is highlighted, not the others.
    assert f'<tr data-job="{world.first_ready}" data-queue="default" class="highlight oldest">' in (
        ready_table
    )
    assert f'<tr data-job="{world.second_ready}" data-queue="default">' in ready_table
    summary = html.split("Oldest wait per queue", 1)[1].split("</table>", 1)[0]
    default_row = summary.split('<tr data-queue="default"', 1)[1].split("</tr>", 1)[0]
    assert default_row.startswith(' class="highlight"')  # default's first job waits longest
    assert '<td class="num">2</td>' in default_row
    assert 'id="live-waiting" data-live-refresh' in html
    # The queue filter.
    only_default = page(client, "/waiting?queue=default")
    ready_default = only_default.split('id="ready-jobs"', 1)[1].split("</table>", 1)[0]
    assert listed(ready_default) == [world.first_ready, world.second_ready]
    assert world.delayed not in listed(only_default)
    assert '<option value="default" selected>' in only_default


def test_failed_lists_failures_and_groups_them_by_error(
    client: TestClient[Litestar], chronicle: Chronicle, world: World
):
    html = page(client, "/failed")
    assert set(listed(html)) == {world.disk_full, world.disk_full_again, world.boom}
    row = html.split(f'<tr data-job="{world.boom}">', 1)[1].split("</tr>", 1)[0]
    assert "RuntimeError" in row
    assert "boom" in row
    assert f'href="/jobs/{world.boom}#error-title"' in row
    assert "1/1" in row
    assert "<time datetime=" in row
    assert listed(page(client, "/failed?queue=low")) == [world.disk_full]
    assert set(listed(page(client, "/failed?command=demo:fail"))) == {
        world.disk_full,
        world.disk_full_again,
        world.boom,
    }
    assert listed(page(client, "/failed?error_type=ValueError")) == []
    assert len(listed(page(client, "/failed?error_type=RuntimeError"))) == 3
    boom = chronicle.queries.get(TENANT, world.boom)
    assert boom is not None
    assert boom.failed_at is not None
    since = quote(boom.failed_at.isoformat())
    assert world.boom in listed(page(client, f"/failed?from={since}"))
    assert world.boom not in listed(page(client, f"/failed?to={since}"))
    assert listed(page(client, "/failed?limit=1")) != []

    grouped = page(client, "/failed?group=error")
    groups = dict(
        re.findall(
            r'<td class="message">([^<]*)</td>\s*<td class="num" data-count>(\d+)</td>', grouped
        )
    )
    assert groups == {"disk full": "2", "boom": "1"}
    assert 'href="/failed?error_type=RuntimeError"' in grouped
    assert grouped.count("<time datetime=") == 2
    # The grouping keeps the other filters, and a forgotten job leaves its group.
    low = page(client, "/failed?group=error&queue=low")
    assert re.findall(r"data-count>(\d+)<", low) == ["1"]
    chronicle.jobs.forget(world.boom, tenant=TENANT, by="user:ada")
    Harness(chronicle, FakeQueue()).follow()
    after = page(client, "/failed?group=error")
    assert "boom" not in after.split("<tbody>", 1)[1]
    assert world.boom not in listed(page(client, "/failed"))


def test_the_pages_link_to_each_other(client: TestClient[Litestar], world: World):
    for url in ("/jobs", "/waiting", "/failed", f"/jobs/{world.echo}"):
        html = page(client, url)
        for target in ('href="/jobs"', 'href="/waiting"', 'href="/failed"'):
            assert target in html, (url, target)
        assert 'href="/failed?group=error"' in html
