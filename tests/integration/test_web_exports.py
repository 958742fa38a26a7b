"""The dashboard's export pages: the list (newest first, by pages), one export with its
download link once its file is written, the reason once the file was removed or the export
failed, and tenant isolation."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.principals import Role
from interfaces.bootstrap import Chronicle
from interfaces.http import create_app
from interfaces.web import exports as export_pages
from tests.integration.conftest import bearer
from tests.integration.test_batches import Harness
from tests.integration.test_exports import add_contacts
from tests.unit.fakes import FakeQueue

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"  # noqa: S105 - a test account's
DOWNLOAD = re.compile(r'href="(/api/exports/[0-9a-f-]+/download)"')


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
            data={"username": "ada", "password": PASSWORD, "next": "/exports"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        yield test_client


def request_export(
    client: TestClient[Litestar],
    chronicle: Chronicle,
    *,
    filters: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    response = client.post(
        "/api/exports",
        json={"exporter": "contacts", "format": "csv", **({"filters": filters} if filters else {})},
        headers=headers or bearer(chronicle, "exporter", role=Role.OPERATOR),
    )
    assert response.status_code == 202, response.text
    export_id: str = response.json()["id"]
    return export_id


def detail(page: str) -> dict[str, str]:
    """The `<dt>`/`<dd>` pairs of a detail page, as text."""
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", page, re.DOTALL)
    return {
        name: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", value)).split())
        for name, value in pairs
    }


def test_an_export_gets_its_download_link_once_completed(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    add_contacts(
        chronicle.db,
        "default",
        [("a@example.com", "Ann", 30, "IT"), ("b@example.com", "Ben", 40, "DE")],
    )
    add_contacts(chronicle.db, "globex", [("g@example.com", "Gus", 50, "US")])
    export_id = request_export(client, chronicle, filters={"country": "IT"})
    h.follow()

    pending = client.get(f"/exports/{export_id}")
    assert pending.status_code == 200
    fields = detail(pending.text)
    assert fields["Status"] == "pending"
    assert fields["Exporter"] == "contacts"
    assert fields["Format"] == "csv"
    assert fields["Filters"] == "country=IT"
    assert fields["Requested by"] == "token:exporter"
    assert fields["Rows"] == "—"
    assert "Expires" not in fields
    assert not DOWNLOAD.search(pending.text)
    assert "once the export has completed" in pending.text
    assert f'hx-get="/exports/{export_id}"' in pending.text
    assert 'hx-select="#live-export"' in pending.text
    listed = client.get("/exports").text
    assert f'data-export="{export_id}"' in listed
    assert not DOWNLOAD.search(listed)

    h.run()
    page = client.get(f"/exports/{export_id}")
    fields = detail(page.text)
    assert fields["Status"] == "completed"
    assert fields["Rows"] == "1"
    assert fields["File size"].endswith(" B")
    assert "Expires" in fields
    assert re.search(r'<dd><time datetime="[^"]+Z" data-local>', page.text)
    job = re.search(r'<a href="/jobs/([0-9a-f-]+)" class="mono" data-job-link>', page.text)
    assert job
    assert client.get(f"/api/jobs/{job.group(1)}").json()["status"] == "succeeded"
    link = DOWNLOAD.search(page.text)
    assert link
    assert link.group(1) == f"/api/exports/{export_id}/download"
    assert "style=" not in page.text
    assert "<script>" not in page.text

    assert_downloads(client, export_id, link.group(1), int(fields["File size"].split()[0]))


def assert_downloads(client: TestClient[Litestar], export_id: str, link: str, size: int) -> None:
    """The signed-in browser downloads the file with its session alone; the list links it."""
    download = client.get(link)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    assert "a@example.com" in download.text
    assert "b@example.com" not in download.text
    assert "g@example.com" not in download.text
    assert len(download.content) == size

    listed = client.get("/exports").text
    row = re.search(rf'<tr data-export="{export_id}">(.*?)</tr>', listed, re.DOTALL)
    assert row
    assert "status-completed" in row.group(1)
    assert DOWNLOAD.search(row.group(1))
    assert "token:exporter" in row.group(1)


def test_an_expired_export_says_why_its_file_is_gone(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    add_contacts(chronicle.db, "default", [("a@example.com", "Ann", 30, "IT")])
    export_id = request_export(client, chronicle)
    h.run()
    assert DOWNLOAD.search(client.get(f"/exports/{export_id}").text)

    later = chronicle.clock.now() + chronicle.exports.retention + timedelta(minutes=1)
    assert chronicle.exports.expire(later) == 1
    h.follow()

    page = client.get(f"/exports/{export_id}")
    assert page.status_code == 200
    assert detail(page.text)["Status"] == "expired"
    assert not DOWNLOAD.search(page.text)
    banner = re.search(r'<p class="banner warn" data-expired>(.*?)</p>', page.text, re.DOTALL)
    assert banner
    hours = chronicle.exports.retention.total_seconds() / 3600
    assert f"after the retention of {round(hours, 1)} h" in banner.group(1)
    assert "The file was removed" in banner.group(1)
    # The API agrees: the file is gone.
    assert client.get(f"/api/exports/{export_id}/download").status_code == 410


def test_the_list_is_newest_first_by_pages(
    client: TestClient[Litestar],
    chronicle: Chronicle,
    h: Harness,
    monkeypatch: pytest.MonkeyPatch,
):
    older = request_export(client, chronicle)
    newer = request_export(client, chronicle, filters={"country": "DE"})
    h.run()
    everything = client.get("/exports").text
    assert everything.index(f'data-export="{newer}"') < everything.index(f'data-export="{older}"')
    assert "<code>country=DE</code>" in everything

    monkeypatch.setattr(export_pages, "PAGE_SIZE", 1)
    first = client.get("/exports").text
    assert f'data-export="{newer}"' in first
    assert f'data-export="{older}"' not in first
    next_link = re.search(r'href="(/exports\?cursor=[^"]+)" rel="next"', first)
    assert next_link
    second = client.get(html.unescape(next_link.group(1))).text
    assert f'data-export="{older}"' in second
    assert f'data-export="{newer}"' not in second
    assert 'rel="next"' not in second
    bad = client.get("/exports?cursor=bogus")
    assert bad.status_code == 422
    assert "<h1>Not valid</h1>" in bad.text


def test_another_tenants_export_is_a_not_found_page(
    client: TestClient[Litestar], chronicle: Chronicle, h: Harness
):
    add_contacts(chronicle.db, "globex", [("g@example.com", "Gus", 50, "US")])
    globex = bearer(chronicle, "globex-op", role=Role.OPERATOR, tenant="globex")
    theirs = request_export(client, chronicle, headers=globex)
    h.run()
    assert client.get(f"/api/exports/{theirs}", headers=globex).json()["status"] == "completed"

    page = client.get(f"/exports/{theirs}")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text
    assert f"export {theirs} not found" in page.text
    assert f'data-export="{theirs}"' not in client.get("/exports").text
    assert client.get(f"/api/exports/{theirs}/download").status_code == 404
    assert "No export yet." in client.get("/exports").text
    malformed = client.get("/exports/nope")
    assert malformed.status_code == 422
    assert "<h1>Not valid</h1>" in malformed.text
