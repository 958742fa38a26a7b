"""Who is calling and for which tenant (authenticated by `interfaces.http.auth`), injected into
handlers; ids of the path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import ClientException
from litestar.params import HeaderParameter

from domain.idempotency import MAX_KEY_LENGTH as MAX_IDEMPOTENCY_KEY
from domain.principals import Principal
from domain.shared import DEFAULT_TENANT, TENANT_PATTERN, ValidationError

TENANT_HEADER = "X-Chronicle-Tenant"


IDEMPOTENCY_HEADER = "Idempotency-Key"

#: The `Idempotency-Key` header of the routes that create: a retry with the same key (and the
#: same body) gets the first result back, with 200 instead of 201.
IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_HEADER,
        description=(
            "Makes the request safe to retry: sent again with the same key and the same body "
            "(within `CHRONICLE_IDEMPOTENCY_RETENTION_HOURS`, 24 h by default), it creates "
            "nothing and answers 200 with what the first request created; with another body, "
            f"422. 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
        ),
        required=False,
        schema_extra={"pattern": r"^[ -~]+$", "max_length": MAX_IDEMPOTENCY_KEY},
    ),
]


@dataclass(frozen=True)
class Caller:
    """Who makes the request (recorded on the events it causes) and the tenant it acts for."""

    principal: Principal
    tenant: str

    @property
    def user(self) -> str:
        """The actor recorded on events: `user:ada`, `token:ci-deploy`."""
        return self.principal.actor


def bad_header(header: str, problem: str) -> ClientException:
    return ClientException(
        detail=f"{header} {problem}",
        extra=[{"key": header, "message": problem, "source": "header"}],
    )


def requested_tenant(raw: str | None, principal: Principal) -> str:
    """The tenant a request acts for: the `X-Chronicle-Tenant` header, else the tenant the
    principal is bound to, else `default`; a malformed name is a 400."""
    tenant = raw if raw is not None else principal.tenant or DEFAULT_TENANT
    if not TENANT_PATTERN.fullmatch(tenant):
        raise bad_header(
            TENANT_HEADER,
            f"must match {TENANT_PATTERN.pattern} "
            "(lower-case letters, digits, '_' and '-', at most 63 characters)",
        )
    return tenant


def provide_caller(
    request: Request[Any, Any, Any],
    tenant: Annotated[
        str | None,
        HeaderParameter(
            name=TENANT_HEADER,
            description=(
                f"Tenant the request acts for (default: the one the token or account is bound "
                f"to, else `{DEFAULT_TENANT}`); lower-case letters, digits, `_` and `-`. A "
                "principal bound to a tenant that names another gets 403."
            ),
            required=False,
            schema_extra={"pattern": TENANT_PATTERN.pattern},
        ),
    ] = None,
) -> Caller:
    """The caller the guard (`interfaces.http.auth.authorize`) authenticated and checked."""
    del tenant  # read and checked by the guard, declared here for the OpenAPI document
    return Caller(principal=request.state.principal, tenant=request.state.tenant)


def parse_id(raw: str, what: str, *, field: str = "id") -> UUID:
    """An id of the path (or of the query's `field`) as a UUID; anything else is a 422 that
    names what was expected."""
    try:
        return UUID(raw)
    except ValueError:
        # "an import", "an export"; `u` is left out as it mostly sounds like "you" ("a user").
        article = "an" if what[:1].lower() in "aeio" else "a"
        raise ValidationError(
            f"{raw[:100]!r} is not {article} {what} id (a UUID)", field=field
        ) from None
