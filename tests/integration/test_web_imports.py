"""The dashboard's import pages: the list with its filters and pages, one import's totals and
live progress, its failed rows with each error on its column, and tenant isolation."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from interfaces.web import imports as import_pages
from tests.integration.conftest import bearer
from tests.integration.test_batches import Harness
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's
#: Bob's email is not one, Cy's age is not a number, Dee's row has a field too many.
CSV = (
    "Name,E-mail,Age,Country\n"
    "Ada,ada@example.com,36,GB\n"
    "Bob,not-an-email,41,US\n"
    "Cy,cy@example.com,old,DE\n"
    "Dee,dee@example.com,20,FR,surplus\n"
)


@pytest.fixture
def h(chronicle: Chronicle) -> Harness:
    harness = Harness(chronicle, FakeQueue())
    chronicle.add_outbox(harness.queue)
    return harness


@pytest.fixture
def client(chronicle: Chronicle) -> Iterator[TestClient[Litestar]]:
    chronicle.accounts.create(name="ada", password=PASSWORD, role=Role.OPERATOR, by="cli:tests")
    with TestClient(create_app(chronicle)) as test_client:
        signed_in = test_client.post(
            "/login",
            data={"username": "ada", "password": PASSWORD, "next": "/imports"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == "/imports"
        yield test_client


def upload(
    client: TestClient[Litestar],
    chronicle: Chronicle,
    text: str = CSV,
    *,
    name: str = "people.csv",
    mapping: str | None = "E-mail=email",
    headers: dict[str, str] | None = None,
) -> str:
    data = {"importer": "contacts", **({"mapping": mapping} if mapping else {})}
    response = client.post(
        "/api/imports",
        files={"file": (name, text.encode(), "text/csv")},
        data=data,
        headers=headers or bearer(chronicle, "importer", role=Role.OPERATOR),
    )
    assert response.status_code == 201, response.text
    import_id: str = response.json()["id"]
    return import_id


def text_of(fragment: str) -> str:
    """A fragment of HTML as text: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def row_html(page: str, number: int) -> str:
    found = re.search(rf'<tr data-row="{number}"[^>]*>(.*?)</tr>', page, re.DOTALL)
    assert found, f"row {number} is not on the page"
    return found.group(1)


def cell(row: str, column: str) -> tuple[str, str]:
    """The class attribute and the text of a row's cell of `column`."""
    found = re.search(
        rf'<td(?: class="(?P<cls>[^"]*)")? data-column="{re.escape(column)}"[^>]*>'
        r"(?P<body>.*?)</td>",
        row,
        re.DOTALL,
    )
    assert found, f"no cell {column!r} in {row!r}"
    return found.group("cls") or "", text_of(found.group("body"))


def live_part(page: str, part: str) -> str:
    found = re.search(rf'<div id="{part}"[^>]*>', page)
    assert found, f"no {part} on the page"
    return found.group(0)


def test_the_list_shows_totals_progress_and_who_started_it(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    import_id = upload(client, chronicle)
    h.follow()
    # Before its job runs: processing, and the list polls so chunk progress shows.
    waiting = client.get("/imports")
    assert waiting.status_code == 200
    assert 'hx-trigger="live-refresh, every 2s"' in live_part(waiting.text, "live-imports")
    assert "Content-Security-Policy" in waiting.headers
    assert "processing" in waiting.text
    h.run()

    page = client.get("/imports")
    assert page.status_code == 200
    row = re.search(rf'<tr data-import="{import_id}">(.*?)</tr>', page.text, re.DOTALL)
    assert row, page.text
    line = row.group(1)
    assert "status-completed_with_failures" in line
    assert f'href="/imports/{import_id}"' in line
    assert "people.csv" in line
    assert "contacts" in line
    assert '<td class="num" data-total="rows">4</td>' in line
    assert '<td class="num ok" data-total="succeeded">1</td>' in line
    assert f'<a href="/imports/{import_id}/failed-rows">3</a>' in line
    assert '<progress max="100" value="100.0"' in line
    assert "token:importer" in line
    assert re.search(r'<time datetime="[^"]+Z" data-local>', line)
    # Nothing runs any more: the list follows job events only.
    assert 'hx-trigger="live-refresh"' in live_part(page.text, "live-imports")
    assert "style=" not in page.text
    assert "<script>" not in page.text
    assert '<link rel="stylesheet" href="/static/files.css">' in page.text
    assert client.get("/static/files.css").status_code == 200


def test_the_list_filters_by_status_and_importer_and_pages_with_a_cursor(
    client: TestClient[Litestar],
    chronicle: Chronicle,
    h: Harness,
    monkeypatch: pytest.MonkeyPatch,
):
    clean = upload(
        client, chronicle, "name,email\nAda,ada@example.com\n", name="clean.csv", mapping=None
    )
    messy = upload(client, chronicle, name="messy.csv")
    h.run()

    done = client.get("/imports?status=completed").text
    assert f'data-import="{clean}"' in done
    assert f'data-import="{messy}"' not in done
    assert '<option value="completed" selected>' in done
    partly = client.get("/imports?status=completed_with_failures&importer=contacts").text
    assert f'data-import="{messy}"' in partly
    assert f'data-import="{clean}"' not in partly
    assert '<option value="contacts" selected>' in partly
    assert "No import matches these filters." in client.get("/imports?importer=nobody").text
    wrong = client.get("/imports?status=nonsense")
    assert wrong.status_code == 422
    assert "<h1>Not valid</h1>" in wrong.text
    assert "status must be one of" in wrong.text

    monkeypatch.setattr(import_pages, "PAGE_SIZE", 1)
    first = client.get("/imports").text
    # Newest first.
    assert f'data-import="{messy}"' in first
    assert f'data-import="{clean}"' not in first
    next_link = re.search(r'href="(/imports\?cursor=[^"]+)" rel="next"', first)
    assert next_link, first
    second = client.get(html.unescape(next_link.group(1))).text
    assert f'data-import="{clean}"' in second
    assert f'data-import="{messy}"' not in second
    assert 'rel="next"' not in second
    assert "First page" in second
    assert client.get("/imports?cursor=bogus").status_code == 422


def test_one_import_shows_its_totals_job_and_failed_rows_links(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    import_id = upload(client, chronicle)
    h.follow()
    running = client.get(f"/imports/{import_id}")
    assert running.status_code == 200
    summary = live_part(running.text, "live-import")
    assert 'hx-trigger="live-refresh, every 2s"' in summary
    assert f'hx-get="/imports/{import_id}"' in summary
    assert 'hx-select="#live-import"' in summary
    assert "running since" in running.text
    assert "None so far" in running.text
    h.run()

    page = client.get(f"/imports/{import_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "4 read · 1 succeeded · 3 failed" in text
    assert 'data-status="completed_with_failures"' in page.text
    assert 'hx-trigger="live-refresh"' in live_part(page.text, "live-import")
    assert "running since" not in page.text
    assert f'href="/imports/{import_id}/failed-rows">See the 3 failed rows</a>' in page.text
    csv_link = f"/api/imports/{import_id}/failed-rows.csv"
    assert f'href="{csv_link}"' in page.text
    assert "token:importer" in page.text
    job = chronicle.import_reads.get("default", UUID(import_id)).value
    assert job.failed == 3
    job_link = re.search(r'<a href="(/jobs/[0-9a-f-]+)" class="mono" data-job-link>', page.text)
    assert job_link
    job_id = job_link.group(1).rsplit("/", 1)[1]
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "succeeded"

    # The signed-in browser downloads the failed rows as CSV.
    download = client.get(csv_link)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "not-an-email" in download.text
    assert "ada@example.com" not in download.text


def test_a_failed_import_shows_its_reason(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    # No email column: the import fails as a whole, naming the missing column.
    import_id = upload(client, chronicle, "name,age\nAda,36\n", mapping=None)
    h.run()
    page = client.get(f"/imports/{import_id}")
    assert page.status_code == 200
    assert 'data-status="failed"' in page.text
    failure = re.search(r'<p class="error" data-failure>(.*?)</p>', page.text, re.DOTALL)
    assert failure
    assert "email" in failure.group(1)
    assert "No row failed." in page.text
    assert f"/imports/{import_id}/failed-rows" not in page.text
    listed = client.get("/imports?status=failed").text
    assert f'data-import="{import_id}"' in listed


def test_failed_rows_show_each_error_on_its_column(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    import_id = upload(client, chronicle)
    h.run()
    page = client.get(f"/imports/{import_id}/failed-rows")
    assert page.status_code == 200
    assert '<th scope="col">E-mail</th>' in page.text
    assert 'data-row="2"' not in page.text  # Ada's row was imported

    bob = row_html(page.text, 3)
    cls, text = cell(bob, "E-mail")  # the importer's `email`, mapped from the file's E-mail
    assert cls == "cell-error"
    assert text.startswith("not-an-email")
    assert "valid email" in text
    assert cell(bob, "Name") == ("", "Bob")
    assert cell(bob, "Age") == ("", "41")

    cy = row_html(page.text, 4)
    cls, text = cell(cy, "Age")
    assert cls == "cell-error"
    assert text.startswith("old")
    assert "integer" in text or "number" in text
    assert cell(cy, "E-mail") == ("", "cy@example.com")

    # A problem of the whole row goes to the row's own column; the extra field is shown.
    dee = row_html(page.text, 5)
    cls, text = cell(dee, "row")
    assert cls == "cell-error"
    assert "expected 4 fields" in text
    assert cell(dee, "Extra fields") == ("", "surplus")
    assert "style=" not in page.text


def test_failed_rows_page_by_row_number_and_can_include_rows_that_passed(
    client: TestClient[Litestar],
    chronicle: Chronicle,
    h: Harness,
    monkeypatch: pytest.MonkeyPatch,
):
    import_id = upload(client, chronicle)
    h.run()
    operator = bearer(chronicle, "importer", role=Role.OPERATOR)
    retried = client.post(
        f"/api/imports/{import_id}/retry-failed",
        json={"rows": [3], "corrections": {"3": {"E-mail": "bob@example.com"}}},
        headers=operator,
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["passed"] == [3]
    h.follow()

    still = client.get(f"/imports/{import_id}/failed-rows").text
    assert 'data-row="3"' not in still
    assert 'data-row="4"' in still
    toggle = re.search(r'href="([^"]+)" aria-pressed="false" data-toggle', still)
    assert toggle
    assert "include_passed=1" in toggle.group(1)
    with_passed = client.get(html.unescape(toggle.group(1))).text
    bob = row_html(with_passed, 3)
    assert "passed" in bob
    assert 'aria-pressed="true" data-toggle' in with_passed

    monkeypatch.setattr(import_pages, "ROWS_PAGE_SIZE", 1)
    first = client.get(f"/imports/{import_id}/failed-rows").text
    assert 'data-row="4"' in first
    assert 'data-row="5"' not in first
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link
    assert "after=4" in next_link.group(1)
    second = client.get(html.unescape(next_link.group(1))).text
    assert 'data-row="5"' in second
    assert 'data-row="4"' not in second
    assert 'rel="next"' not in second
    assert client.get(f"/imports/{import_id}/failed-rows?after=-1").status_code == 422


def test_another_tenants_import_is_a_not_found_page(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    globex = bearer(chronicle, "globex-op", role=Role.OPERATOR, tenant="globex")
    theirs = upload(client, chronicle, name="globex.csv", headers=globex)
    h.run()
    assert client.get(f"/api/imports/{theirs}", headers=globex).status_code == 200
    for path in (f"/imports/{theirs}", f"/imports/{theirs}/failed-rows"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "<h1>Not found</h1>" in page.text
        assert f"import {theirs} not found" in page.text
        assert "globex.csv" not in page.text
    assert "globex.csv" not in client.get("/imports").text
    assert client.get(f"/api/imports/{theirs}/failed-rows.csv").status_code == 404
    malformed = client.get("/imports/not-a-uuid")
    assert malformed.status_code == 422
    assert "<h1>Not valid</h1>" in malformed.text


def test_the_pages_need_a_session(chronicle: Chronicle):
    with TestClient(create_app(chronicle)) as anonymous:
        away = anonymous.get("/imports?status=failed", follow_redirects=False)
        assert away.status_code == 303
        assert away.headers["location"] == "/login?next=/imports%3Fstatus%3Dfailed"
