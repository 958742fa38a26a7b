"""Who is calling and what they may do: every route but the probes, the API document and
sign-in needs a principal — an API token (`Authorization: Bearer chr_…`) or the session
cookie `POST /auth/login` sets — whose role allows the route's action, for a tenant it may use.

`authorize` is the app's guard: it runs before the request's body is read, so an anonymous or
unauthorised caller learns nothing about the route's rules. A route states its action in its
`opt` (`ACTION`); one that does not is a read when its methods are safe, and `create_app`
refuses to start with an unsafe route that states none.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    SerializationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityRequirement,
)
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE, HTTP_429_TOO_MANY_REQUESTS

from application.sessions import SignInRefusedError, TooManySignInsError, csrf_token
from domain.principals import SHARED_ACTIONS, Action, Principal, required_role
from domain.shared import DEFAULT_TENANT
from interfaces.bootstrap import Chronicle
from interfaces.http.dependencies import TENANT_HEADER, requested_tenant
from interfaces.http.errors import error_responses

#: The route handler's `opt` key naming its Action.
ACTION = "action"
#: The `opt` key of routes anyone may call (probes, sign-in).
PUBLIC = "public"
#: The `opt` key of the dashboard's pages: without a session they send to the sign-in page.
PAGE = "page"
SESSION_COOKIE = "chronicle_session"
#: The tenant a signed-in browser chose (the dashboard's switch); a header still wins.
TENANT_COOKIE = "chronicle_tenant"
CSRF_HEADER = "X-CSRF-Token"
#: The form field that may carry the CSRF token of a form post instead of the header.
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The security schemes of the OpenAPI document, and the requirement every guarded route states.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearer_format": "chr_<id>_<secret>",
        "description": "An API token (`chronicle tokens create`): `chr_<id>_<secret>`.",
    },
    "session": {
        "type": "apiKey",
        "security_scheme_in": "cookie",
        "name": SESSION_COOKIE,
        "description": (
            f"The session cookie `POST /auth/login` sets; unsafe requests also send its CSRF "
            f"token in `{CSRF_HEADER}`."
        ),
    },
}
SECURITY: list[SecurityRequirement] = [{"bearer": []}, {"session": []}]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="chronicle"'}


def route_action(handler: BaseRouteHandler) -> Action | None:
    """The action `handler` performs: its declared one, else a read for a route of safe
    methods only; None for an unsafe route that declares none (a bug `create_app` refuses)."""
    declared = handler.opt.get(ACTION)
    if declared is not None:
        return Action(declared)
    methods: set[str] = set(getattr(handler, "http_methods", ()))
    if methods and set(methods) <= SAFE_METHODS:
        return Action.READ
    return None


def is_public_handler(handler: BaseRouteHandler, path: str) -> bool:
    """Probes, sign-in, the API document and CORS preflights need no principal."""
    if handler.opt.get(PUBLIC):
        return True
    methods: set[str] = set(getattr(handler, "http_methods", ()))
    if set(methods) == {"OPTIONS"}:
        return True
    return path == "/schema" or path.startswith("/schema/")


class SignInRequiredError(NotAuthorizedException):
    """A page asked for without a live session: the dashboard sends the browser to sign in,
    then back to `next_path`."""

    def __init__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        super().__init__(detail="sign in to see this page", headers=_CHALLENGE)
        query = connection.scope.get("query_string", b"").decode("latin-1")
        self.next_path = connection.url.path + (f"?{query}" if query else "")


def _unauthorized(message: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=message, headers=_CHALLENGE)


def _identify(
    chronicle: Chronicle, connection: ASGIConnection[Any, Any, Any, Any]
) -> tuple[Principal, str | None]:
    """The principal of the request and its session id (None when a token was sent)."""
    authorization = connection.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthorized("the Authorization header must be `Bearer <token>`")
        principal = chronicle.authenticator.token(credentials.strip())
        if principal is None:
            raise _unauthorized("the token is not valid: unknown, revoked or expired")
        return principal, None
    session_id = connection.cookies.get(SESSION_COOKIE)
    if session_id:
        principal = chronicle.sessions.principal(session_id)
        if principal is None:
            raise _unauthorized("the session has ended: sign in again at POST /auth/login")
        return principal, session_id
    raise _unauthorized(
        "this route needs credentials: send `Authorization: Bearer <token>` "
        "(chronicle tokens create) or sign in at POST /auth/login"
    )


def _refuse_role(principal: Principal, action: Action) -> PermissionDeniedException:
    needed = required_role(action)
    return PermissionDeniedException(
        detail=(
            f"{action.value.replace('_', ' ')} needs the {needed.value} role "
            f"(or above); {principal.actor} has the {principal.role.value} role"
        )
    )


async def _check_csrf(request: ASGIConnection[Any, Any, Any, Any], session_id: str) -> None:
    """An unsafe request signed in by cookie must show its session's CSRF token: a page of
    another site can make the browser send the cookie, not read the token."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and isinstance(request, Request):
        content_type = request.content_type[0]
        if content_type in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART):
            field = (await request.form()).get(CSRF_FIELD)
            presented = field if isinstance(field, str) else None
    if presented is None or not hmac.compare_digest(
        presented.encode(), csrf_token(session_id).encode()
    ):
        raise PermissionDeniedException(
            detail=(
                f"a request signed in by cookie must send its session's CSRF token in "
                f"{CSRF_HEADER} (or the {CSRF_FIELD} form field): it is in the answer of "
                "POST /auth/login and GET /auth/session"
            )
        )


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's guard: 401 without a valid principal, 403 when its role or tenant binding
    does not allow the route, 400 for a malformed tenant; else the principal and tenant go
    to `connection.state` for `provide_caller`."""
    if is_public_handler(handler, connection.url.path):
        return
    chronicle: Chronicle = connection.app.state.chronicle
    try:
        principal, session_id = await anyio.to_thread.run_sync(_identify, chronicle, connection)
    except NotAuthorizedException as exc:
        if handler.opt.get(PAGE):
            raise SignInRequiredError(connection) from None
        raise exc from None
    # Known from here on, so that a refusal below can still name who was refused (the
    # dashboard renders it in its layout); the tenant is settled after the checks.
    connection.state.principal = principal
    connection.state.session_id = session_id
    connection.state.tenant = principal.tenant or DEFAULT_TENANT
    action = route_action(handler)
    if action is None:  # pragma: no cover - create_app refuses such a route
        raise PermissionDeniedException(detail="this route states no permission")
    if not principal.role.allows(action):
        raise _refuse_role(principal, action)
    if action in SHARED_ACTIONS and principal.tenant is not None:
        raise PermissionDeniedException(
            detail=(
                f"{action.value.replace('_', ' ')} acts on the queues every tenant shares: it "
                f"needs a principal bound to no tenant; {principal.actor} is bound to "
                f"{principal.tenant!r}"
            )
        )
    chosen = connection.headers.get(TENANT_HEADER)
    if chosen is None and session_id is not None:
        chosen = connection.cookies.get(TENANT_COOKIE) or None
    tenant = requested_tenant(chosen, principal)
    if not principal.may_use_tenant(tenant):
        raise PermissionDeniedException(
            detail=f"{principal.actor} is bound to tenant {principal.tenant!r}, not {tenant!r}"
        )
    if session_id is not None and connection.scope.get("method") not in SAFE_METHODS:
        await _check_csrf(connection, session_id)
    connection.state.tenant = tenant


# -- sign-in and sign-out -----------------------------------------------------------------------


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    """A name and password (JSON, or a form)."""

    username: str
    password: str


_CREDENTIALS = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "username": Schema(type=OpenAPIType.STRING, description="The account's name."),
        "password": Schema(type=OpenAPIType.STRING, description="The password."),
    },
    required=["username", "password"],
    additional_properties=False,
)


@dataclass
class SignInOperation(Operation):
    """The sign-in operation, whose body (JSON or a form) is read by hand, as documented."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                RequestEncodingType.JSON.value: OpenAPIMediaType(schema=_CREDENTIALS),
                RequestEncodingType.URL_ENCODED.value: OpenAPIMediaType(schema=_CREDENTIALS),
            },
            required=True,
            description="The account's name and password.",
        )


class SessionView(msgspec.Struct, kw_only=True):
    """Who is signed in, and what a page sends back with its unsafe requests."""

    actor: str
    name: str
    kind: str
    role: str
    tenant: str | None
    csrf_token: str | None = None
    idle_timeout_seconds: int | None = None


def _session_view(
    principal: Principal, session_id: str | None, idle_seconds: int | None
) -> SessionView:
    return SessionView(
        actor=principal.actor,
        name=principal.name,
        kind=principal.kind.value,
        role=principal.role.value,
        tenant=principal.tenant,
        csrf_token=csrf_token(session_id) if session_id else None,
        idle_timeout_seconds=idle_seconds if session_id else None,
    )


def _bad_sign_in(message: str) -> ClientException:
    return ClientException(detail=message, extra=[{"key": "data", "message": message}])


async def _sign_in_form(request: Request[Any, Any, Any]) -> SignIn:
    content_type = request.content_type[0].strip().lower()
    if content_type == RequestEncodingType.JSON.value:
        try:
            # `json()` applies the rules of every JSON body (nesting depth, no NUL).
            return msgspec.convert(await request.json(), SignIn)
        except msgspec.ValidationError as exc:
            raise _bad_sign_in(f"the sign-in body is not valid: {exc}") from None
        except SerializationException:
            raise _bad_sign_in("the sign-in body is not valid JSON") from None
    if content_type == RequestEncodingType.URL_ENCODED.value:
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise _bad_sign_in("send the fields username and password")
        return SignIn(username=username, password=password)
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=(
            "sign in with a JSON body (application/json) or a form "
            "(application/x-www-form-urlencoded) holding username and password"
        ),
    )


def session_cookie(chronicle: Chronicle, value: str) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=chronicle.settings.secure_cookies,
    )


class AuthController(Controller):
    """Dashboard sessions: sign in with a name and password, ask who is signed in, sign out."""

    path = "/auth"
    tags = ["auth"]

    @post(
        "/login",
        operation_id="signIn",
        operation_class=SignInOperation,
        opt={PUBLIC: True},
        status_code=200,
        summary="Sign in",
        description=(
            "Checks an account's name and password and sets the session cookie (HttpOnly, "
            "SameSite=Lax, Secure when CHRONICLE_PUBLIC_URL is https). The answer carries the "
            f"session's CSRF token, which unsafe requests signed in by the cookie send in "
            f"`{CSRF_HEADER}`. After 5 failures for one name (20 for one address) each "
            "further one locks sign-in out for twice as long (from 1 s to 15 min): 429 with "
            "`Retry-After`."
        ),
        responses=error_responses(400, 401, 415, 429),
    )
    async def login(self, request: Request[Any, Any, Any]) -> Response[SessionView]:
        chronicle: Chronicle = request.app.state.chronicle
        form = await _sign_in_form(request)
        address = request.client.host if request.client else "unknown"
        try:
            signed_in = await anyio.to_thread.run_sync(
                chronicle.sessions.sign_in, form.username, form.password, address
            )
        except TooManySignInsError as exc:
            raise HTTPException(
                status_code=HTTP_429_TOO_MANY_REQUESTS,
                detail=str(exc),
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except SignInRefusedError as exc:
            raise _unauthorized(str(exc)) from None
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:  # signing in again replaces the browser's session, it does not add one
            await anyio.to_thread.run_sync(chronicle.sessions.sign_out, previous)
        idle = int(signed_in.idle_expiry.total_seconds())
        return Response(
            _session_view(signed_in.principal, signed_in.session_id, idle),
            cookies=[session_cookie(chronicle, signed_in.session_id)],
        )

    @get(
        "/session",
        operation_id="getSession",
        summary="Who is signed in",
        description=(
            "The principal of the request (token or session) and, for a session, its CSRF token."
        ),
        responses=error_responses(401),
    )
    async def session(self, request: Request[Any, Any, Any]) -> SessionView:
        chronicle: Chronicle = request.app.state.chronicle
        idle = int(chronicle.sessions.idle.total_seconds())
        return _session_view(request.state.principal, request.state.session_id, idle)

    @post(
        "/logout",
        operation_id="signOut",
        opt={ACTION: Action.READ},
        status_code=204,
        summary="Sign out",
        description="Ends the session of the cookie and clears it.",
        responses=error_responses(401, 403),
        # Clearing needs no Secure flag: the browser drops the cookie, the server the session.
        response_cookies=[
            Cookie(
                key=SESSION_COOKIE,
                value="",
                path="/",
                httponly=True,
                samesite="lax",
                max_age=0,
                description="Cleared.",
            )
        ],
    )
    async def logout(self, request: Request[Any, Any, Any]) -> None:
        chronicle: Chronicle = request.app.state.chronicle
        session_id = request.state.session_id
        if session_id is not None:
            await anyio.to_thread.run_sync(chronicle.sessions.sign_out, session_id)
