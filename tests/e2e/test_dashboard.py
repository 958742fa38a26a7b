"""The dashboard in a real browser: Playwright for Python driving Debian's chromium against
`chronicle up`, as an operator uses it: sign in, watch jobs happen live, open every page.

Screenshots go to the test's folder, or to `CHRONICLE_SCREENSHOTS_DIR` when set (that is how
`docs/screenshots/` is made: `CHRONICLE_SCREENSHOTS_DIR=docs/screenshots uv run pytest
tests/e2e/test_dashboard.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    expect,
    sync_playwright,
)

from tests.conftest import wait_until
from tests.e2e.conftest import Up, wait_ready

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
#: Pages of the nine resources with no id in their path.
LIST_PAGES = [
    "/jobs",
    "/waiting",
    "/failed",
    "/queues",
    "/batches",
    "/schedules",
    "/imports",
    "/exports",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CHRONICLE_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def printed_password(up: Up) -> str:
    said = [line for line in up.log_path.read_text().splitlines() if "account admin" in line]
    assert len(said) == 1, said
    return said[0].rsplit("password ", 1)[1].strip()


def problems_of(page: Page) -> list[str]:
    """Console errors of the page (a Content-Security-Policy violation is one) and answers
    of 400 or more, but the 401 of the sign-in with a wrong password, which is the point."""
    found: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            found.append(message.text)

    def answered(response: Response) -> None:
        wrong_password = response.url.endswith("/login") and response.status == 401
        if response.status >= 400 and not wrong_password:
            found.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("response", answered)
    page.on("pageerror", lambda error: found.append(str(error)))
    return found


def sign_in(page: Page, base_url: str, password: str, shots: Path) -> None:
    page.goto(f"{base_url}/")
    expect(page).to_have_url(f"{base_url}/login?next=/")
    page.screenshot(path=shots / "login.png")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("Wrong name or password.")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")


def dispatch(api: httpx.Client, line: str, queue: str = "high") -> str:
    response = api.post("/api/jobs", json={"command_line": line, "queue": queue})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def in_monitor(page: Page, job_id: str) -> Locator:
    return page.locator(f"#monitor-rows a[href='/jobs/{job_id}']")


def watch_jobs_live(page: Page, api: httpx.Client) -> str:
    """A job dispatched by a program appears on the open page as it happens; the monitor's
    queue filter and pause hold others back. Returns the job's id."""
    sent = time.monotonic()
    job_id = dispatch(api, "demo:echo live")
    expect(in_monitor(page, job_id).first).to_be_visible(timeout=10_000)
    print(f"dispatch → shown in the live monitor: {(time.monotonic() - sent) * 1000:.0f} ms")
    succeeded = page.locator('#stats tr[data-queue="high"] [data-count="succeeded"]')
    expect(succeeded).to_have_text("1", timeout=10_000)
    expect(page.locator('#monitor-rows tr[data-event="succeeded"]')).to_have_count(1)

    page.select_option("#monitor-queue", "low")
    other = dispatch(api, "demo:echo other")
    expect(succeeded).to_have_text("2", timeout=10_000)
    expect(in_monitor(page, other)).to_have_count(0)  # another queue: filtered out
    page.select_option("#monitor-queue", "")
    page.click("#monitor-pause")
    held = dispatch(api, "demo:echo paused")
    expect(succeeded).to_have_text("3", timeout=10_000)
    expect(in_monitor(page, held)).to_have_count(0)  # the monitor is paused
    page.click("#monitor-pause")

    local = page.locator("[data-clock-local]")
    expect(local).not_to_have_text(local.text_content() or "", timeout=5_000)  # it ticks
    return job_id


CSV = b"name,email,age,country\nAda,ada@example.com,36,UK\nBob,not-an-email,41,US\n"


def something_of_everything(api: httpx.Client) -> dict[str, str]:
    """A schedule, a batch, a failed job, an import with a failed row and an export, each run
    to its end: what the pages then show."""
    made = {
        "schedule": api.post(
            "/api/schedules",
            json={
                "name": "nightly report",
                "command_line": "demo:echo report",
                "expression": "0 3 * * *",
                "timezone": "Europe/Rome",
            },
        ),
        "batch": api.post(
            "/api/batches",
            json={"name": "invoices", "jobs": ["demo:echo a", "demo:echo b"]},
        ),
        "failed": api.post(
            "/api/jobs", json={"command_line": "demo:fail --times 5", "max_attempts": 1}
        ),
        "import": api.post(
            "/api/imports",
            files={"file": ("people.csv", CSV, "text/csv")},
            data={"importer": "contacts"},
        ),
        "export": api.post("/api/exports", json={"exporter": "contacts", "format": "csv"}),
    }
    ids = {}
    for name, response in made.items():
        assert response.status_code in (201, 202), f"{name}: {response.text}"
        ids[name] = response.json()["id"]
    wait_until(
        lambda: api.get(f"/api/exports/{ids['export']}").json()["status"] == "completed",
        what="the export",
    )
    wait_until(
        lambda: api.get(f"/api/jobs/{ids['failed']}").json()["status"] == "failed",
        what="the failing job",
    )
    return ids


def visit_every_page(page: Page, base_url: str, job_id: str, shots: Path) -> None:
    for path in LIST_PAGES:
        answer = page.goto(f"{base_url}{path}")
        assert answer is not None
        assert answer.status == 200, path
        page.screenshot(path=shots / f"{path.strip('/')}.png", full_page=True)
    answer = page.goto(f"{base_url}/jobs/{job_id}")
    assert answer is not None
    assert answer.status == 200
    expect(page.locator("body")).to_contain_text("demo:echo live")
    page.screenshot(path=shots / "job.png", full_page=True)


def another_tenants_job_is_not_found(browser: Browser, up: Up) -> None:
    """A viewer bound to tenant acme (made with the CLI while `up` runs) opens a job of tenant
    globex: the not-found page, as for a job that does not exist."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "interfaces.cli",
            "accounts",
            "create",
            "vera",
            "--role",
            "viewer",
            "--tenant",
            "acme",
            "--password-stdin",
        ],
        input="a long enough password\n",
        env=up.env,
        cwd=up.folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    with up.client(name="globex-ci") as api:
        response = api.post(
            "/api/jobs",
            json={"command_line": "demo:echo secret"},
            headers={"X-Chronicle-Tenant": "globex"},
        )
        assert response.status_code == 201, response.text
        theirs = response.json()["id"]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{up.base_url}/login")
    page.fill("input[name=username]", "vera")
    page.fill("input[name=password]", "a long enough password")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{up.base_url}/")
    answer = page.goto(f"{up.base_url}/jobs/{theirs}")
    assert answer is not None
    assert answer.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator("body")).not_to_contain_text("demo:echo secret")
    page.screenshot(path=Path(up.folder) / "not-found.png")
    context.close()


def test_an_operator_signs_in_and_watches_jobs_live(
    tmp_path: Path, browser: Browser, shots: Path
) -> None:
    up = Up(tmp_path)
    try:
        wait_ready(up.base_url)
        wait_until(lambda: "account admin" in up.log_path.read_text(), what="the first admin")
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        problems = problems_of(page)
        sign_in(page, up.base_url, printed_password(up), shots)
        with up.client() as api:
            job_id = watch_jobs_live(page, api)
            ids = something_of_everything(api)
        page.goto(f"{up.base_url}/")
        page.screenshot(path=shots / "home.png", full_page=True)
        visit_every_page(page, up.base_url, job_id, shots)
        for name, path in (
            ("schedule", f"/schedules/{ids['schedule']}"),
            ("batch", f"/batches/{ids['batch']}"),
            ("failed-job", f"/jobs/{ids['failed']}"),
            ("import", f"/imports/{ids['import']}"),
            ("failed-rows", f"/imports/{ids['import']}/failed-rows"),
            ("export", f"/exports/{ids['export']}"),
        ):
            answer = page.goto(f"{up.base_url}{path}")
            assert answer is not None
            assert answer.status == 200, path
            # A traceback names the folders of the machine it ran on: the failed job's
            # picture stops above it.
            page.screenshot(path=shots / f"{name}.png", full_page=name != "failed-job")
        expect(page.locator("body")).to_contain_text("completed")
        page.goto(f"{up.base_url}/jobs/{ids['failed']}")
        expect(page.locator("body")).to_contain_text("Traceback")
        expect(page.locator("body")).to_contain_text("RuntimeError")

        another_tenants_job_is_not_found(browser, up)

        # Signing out ends the session: the pages send to sign-in again.
        page.goto(f"{up.base_url}/")
        page.click("form[action='/logout'] button")
        expect(page).to_have_url(f"{up.base_url}/login")
        page.goto(f"{up.base_url}/queues")
        expect(page).to_have_url(f"{up.base_url}/login?next=/queues")
        assert problems == []
    finally:
        assert up.stop() == 0


def test_the_pages_need_a_session_and_tell_api_clients_401(tmp_path: Path) -> None:
    up = Up(tmp_path)
    try:
        wait_ready(up.base_url)
        page = httpx.get(f"{up.base_url}/queues", follow_redirects=False, timeout=5)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/queues"
        assert httpx.get(f"{up.base_url}/api/events", timeout=5).status_code == 401
    finally:
        assert up.stop() == 0
