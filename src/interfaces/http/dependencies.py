"""Who is calling and for which tenant: read from headers, checked, injected into handlers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from litestar.exceptions import ClientException
from litestar.params import HeaderParameter

from domain.idempotency import MAX_KEY_LENGTH as MAX_IDEMPOTENCY_KEY
from domain.shared import DEFAULT_TENANT, ValidationError

USER_HEADER = "X-Chronicle-User"
TENANT_HEADER = "X-Chronicle-Tenant"
DEFAULT_USER = "api"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_USER_LENGTH = 200
#: The user header as the OpenAPI document states it: printable ASCII, not blank (the check
#: also takes other printable Latin-1 characters and strips surrounding spaces).
USER_PATTERN = r"^[ -~]*[!-~][ -~]*$"


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
    """The identity recorded on the events a request causes, and the tenant it may see."""

    user: str
    tenant: str


def _bad_header(header: str, problem: str) -> ClientException:
    return ClientException(
        detail=f"{header} {problem}",
        extra=[{"key": header, "message": problem, "source": "header"}],
    )


def provide_caller(
    user: Annotated[
        str | None,
        HeaderParameter(
            name=USER_HEADER,
            description=(
                f"Who makes the request, recorded on its events (default `{DEFAULT_USER}`): 1 "
                f"to {MAX_USER_LENGTH} printable characters."
            ),
            required=False,
            # Stated, not enforced here: `provide_caller` checks it and names the header.
            schema_extra={"pattern": USER_PATTERN, "max_length": MAX_USER_LENGTH},
        ),
    ] = None,
    tenant: Annotated[
        str | None,
        HeaderParameter(
            name=TENANT_HEADER,
            description=(
                f"Tenant whose jobs the request sees (default `{DEFAULT_TENANT}`); "
                "lower-case letters, digits, `_` and `-`."
            ),
            required=False,
            schema_extra={"pattern": TENANT_PATTERN.pattern},
        ),
    ] = None,
) -> Caller:
    """The caller of this request; a malformed tenant or user header is a 400."""
    user = DEFAULT_USER if user is None else user.strip()
    if not user or len(user) > MAX_USER_LENGTH or not user.isprintable():
        raise _bad_header(USER_HEADER, f"must be 1 to {MAX_USER_LENGTH} printable characters")
    tenant = DEFAULT_TENANT if tenant is None else tenant
    if not TENANT_PATTERN.fullmatch(tenant):
        raise _bad_header(
            TENANT_HEADER,
            f"must match {TENANT_PATTERN.pattern} "
            "(lower-case letters, digits, '_' and '-', at most 63 characters)",
        )
    return Caller(user=user, tenant=tenant)


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
