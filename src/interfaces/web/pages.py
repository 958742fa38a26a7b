"""The sign-in page and the home page with its four widgets (job stats, waiting jobs, clock,
live queue monitor)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from application.frequencies import next_due
from application.sessions import SignInRefusedError, TooManySignInsError, csrf_token
from domain.job import QUEUES
from domain.principals import Action, Principal
from domain.shared import TENANT_PATTERN, ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import (
    ACTION,
    PAGE,
    PUBLIC,
    SESSION_COOKIE,
    TENANT_COOKIE,
    session_cookie,
)
from interfaces.http.schemas.queues import QueueOverview, queue_overview

#: Page handlers: a session is needed, and its absence sends the browser to /login.
PAGE_OPT = {PAGE: True}


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//other.host`)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def url_with(request: Request[Any, Any, Any], **changes: Any) -> str:
    """This page's URL with some query parameters changed (None or "" removes one): how
    filters, sorting and pages stay in the URL."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v is not None and v != ""]
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def page_context(request: Request[Any, Any, Any], **values: Any) -> dict[str, Any]:
    """What every page's layout needs: who is signed in, the tenant, the CSRF token, the
    current URL and `url_with` to change its query."""
    principal: Principal = request.state.principal
    session_id: str | None = request.state.session_id
    chronicle: Chronicle = request.app.state.chronicle
    return {
        "principal": principal,
        "tenant": request.state.tenant,
        "csrf_token": csrf_token(session_id) if session_id else "",
        "path": request.url.path,
        "url": url_with(request),
        "url_with": lambda **changes: url_with(request, **changes),
        "query": dict(request.query_params),
        # Whether the signed-in principal may do an action (its role, its tenant binding):
        # pages show only the controls it may use.
        "may": lambda action: principal.may(Action(action)),
        "now": chronicle.clock.now(),
        **values,
    }


def overview(chronicle: Chronicle, tenant: str, now: datetime) -> QueueOverview:
    """The queues as `GET /api/queues` gives them (counts, pauses, last hour's activity)."""
    return queue_overview(
        chronicle.queries.queue_stats(tenant, now),
        chronicle.queue_metrics.activity(tenant, now),
        chronicle.queue_pauses.pauses(tenant),
    )


@dataclass(frozen=True)
class WaitingQueue:
    """How many jobs of one queue are due and not started, and how long the oldest waits."""

    queue: str
    waiting: int
    delayed: int
    oldest_wait_seconds: float | None


def waiting_overview(chronicle: Chronicle, tenant: str, now: datetime) -> list[WaitingQueue]:
    stats = overview(chronicle, tenant, now)
    rows = []
    for queue in QUEUES:
        counts = stats.queues[queue]
        # The job due longest ago comes first (an indexed walk, whatever the backlog).
        first = chronicle.queries.waiting_in_order(tenant, queue, delayed=False, now=now, limit=1)
        oldest = (now - first[0].available_at).total_seconds() if first else None
        rows.append(WaitingQueue(queue, counts.waiting, counts.delayed, oldest))
    return rows


@dataclass(frozen=True)
class UpcomingRun:
    """A schedule's next run: the instant, and the wall-clock slot in its own timezone."""

    schedule_id: str
    name: str
    command_line: str
    due_at: datetime
    local: datetime
    timezone: str


#: The upcoming runs are computed from the most recent active schedules, at most this many.
UPCOMING_FROM = 200


def upcoming_runs(chronicle: Chronicle, tenant: str, limit: int = 5) -> list[UpcomingRun]:
    """The next runs of the tenant's active schedules, soonest first."""
    now = chronicle.clock.now()
    rows, _ = chronicle.schedule_queries.list_schedules(
        tenant, active=True, limit=UPCOMING_FROM, cursor=None
    )
    runs = []
    for row in rows:
        tick = next_due(
            row.frequency,
            row.timezone,
            active=row.active,
            last_due_at=row.last_due_at,
            now=now,
            cron=chronicle.cron,
        )
        if tick is not None:
            runs.append(
                UpcomingRun(
                    str(row.id), row.name, row.command_line, tick.due_at, tick.local, row.timezone
                )
            )
    return sorted(runs, key=lambda run: run.due_at)[:limit]


class SignInPages(Controller):
    """`/login` and `/logout` for people in a browser (the JSON `/auth/*` routes are for
    programs and pages' scripts)."""

    include_in_schema = False

    @get("/login", opt={PUBLIC: True}, sync_to_thread=False)
    def login_page(
        self,
        next_path: Annotated[str | None, QueryParameter(name="next", required=False)] = None,
    ) -> Template:
        return Template("login.html", context={"next": safe_next(next_path), "error": None})

    @post("/login", opt={PUBLIC: True}, status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        chronicle: Chronicle = request.app.state.chronicle
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        target = safe_next(form.get("next") if isinstance(form.get("next"), str) else None)
        if not isinstance(username, str) or not isinstance(password, str):
            return _login_error(target, "Enter your name and password.", 400)
        address = request.client.host if request.client else "unknown"
        try:
            signed_in = await anyio.to_thread.run_sync(
                chronicle.sessions.sign_in, username, password, address
            )
        except TooManySignInsError as exc:
            response = _login_error(target, str(exc).capitalize() + ".", 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except SignInRefusedError:
            return _login_error(target, "Wrong name or password.", 401, username=username)
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:
            await anyio.to_thread.run_sync(chronicle.sessions.sign_out, previous)
        return Redirect(
            target, status_code=303, cookies=[session_cookie(chronicle, signed_in.session_id)]
        )

    @post("/logout", opt={**PAGE_OPT, ACTION: Action.READ}, status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        chronicle: Chronicle = request.app.state.chronicle
        session_id = request.state.session_id
        if session_id is not None:
            await anyio.to_thread.run_sync(chronicle.sessions.sign_out, session_id)
        return Redirect(
            "/login",
            status_code=303,
            cookies=[Cookie(key=SESSION_COOKIE, value="", path="/", max_age=0, httponly=True)],
        )


class TenantSwitch(Controller):
    """`POST /tenant`: the tenant a principal bound to none looks at in this browser."""

    include_in_schema = False

    @post("/tenant", opt={**PAGE_OPT, ACTION: Action.READ}, status_code=303)
    async def switch(self, request: Request[Any, Any, Any]) -> Redirect:
        form = await request.form()
        chosen = form.get("tenant")
        target = safe_next(form.get("next") if isinstance(form.get("next"), str) else None)
        principal: Principal = request.state.principal
        if not isinstance(chosen, str) or not TENANT_PATTERN.fullmatch(chosen.strip()):
            raise ValidationError(
                "a tenant is 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit",
                field="tenant",
            )
        tenant = chosen.strip()
        if not principal.may_use_tenant(tenant):
            raise ValidationError(
                f"{principal.actor} is bound to tenant {principal.tenant!r}", field="tenant"
            )
        return Redirect(
            target,
            status_code=303,
            cookies=[
                Cookie(key=TENANT_COOKIE, value=tenant, path="/", httponly=True, samesite="lax")
            ],
        )


def _login_error(target: str, message: str, status: int, username: str = "") -> Template:
    return Template(
        "login.html",
        context={"next": target, "error": message, "username": username},
        status_code=status,
    )


class HomePage(Controller):
    """`/`: the four widgets."""

    include_in_schema = False
    opt = PAGE_OPT

    @get("/", sync_to_thread=True)
    def home(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        tenant = request.state.tenant
        now = chronicle.clock.now()
        return Template(
            "home.html",
            context=page_context(
                request,
                stats=overview(chronicle, tenant, now),
                waiting=waiting_overview(chronicle, tenant, now),
                upcoming=upcoming_runs(chronicle, tenant),
                queues=QUEUES,
            ),
        )

    @get("/partials/stats", sync_to_thread=True)
    def stats(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        now = chronicle.clock.now()
        return Template(
            "partials/stats.html",
            context=page_context(request, stats=overview(chronicle, request.state.tenant, now)),
        )

    @get("/partials/waiting", sync_to_thread=True)
    def waiting(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        now = chronicle.clock.now()
        rows = waiting_overview(chronicle, request.state.tenant, now)
        return Template("partials/waiting.html", context=page_context(request, waiting=rows))

    @get("/partials/upcoming", sync_to_thread=True)
    def upcoming(self, request: Request[Any, Any, Any]) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        rows = upcoming_runs(chronicle, request.state.tenant)
        return Template("partials/upcoming.html", context=page_context(request, upcoming=rows))
