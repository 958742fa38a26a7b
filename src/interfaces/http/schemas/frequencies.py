"""Request and response bodies of the frequencies API (helpers and previews)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from application.frequencies import MAX_PREVIEW, timezone_names
from domain.frequency import HELPERS
from interfaces.http.schemas.common import rule


class HelperCallBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """One helper of a chain, e.g. `{"name": "dailyAt", "args": ["13:00"]}`."""

    name: Annotated[
        str, rule("Helper name; `GET /api/frequencies` lists them.", enum=sorted(HELPERS))
    ]
    args: Annotated[list[Any], Meta(description="The helper's arguments, in order.")] = (
        msgspec.field(default_factory=list)
    )


EXPRESSION_RULE = Meta(
    description="A cron expression: 5 fields, or 6 with seconds first (not with `helpers`)."
)
HELPERS_RULE = Meta(description="A chain of helpers applied in order (not with `expression`).")
TIMEZONE_RULE = rule(
    "IANA timezone the frequency is read in, e.g. `Europe/Rome`.", enum=sorted(timezone_names())
)


class PreviewFrequency(Struct, forbid_unknown_fields=True, kw_only=True):
    """A frequency to try out: `expression` or `helpers`, in a timezone."""

    expression: Annotated[str | None, EXPRESSION_RULE] = None
    helpers: Annotated[list[HelperCallBody] | None, HELPERS_RULE] = None
    timezone: Annotated[str, TIMEZONE_RULE] = "UTC"
    count: Annotated[
        int,
        rule(f"How many next runs to list, 1 to {MAX_PREVIEW}.", minimum=1, maximum=MAX_PREVIEW),
    ] = 10


class HelperParameterView(Struct, kw_only=True):
    """One argument of a helper; `default` applies when it is left out."""

    name: str
    type: str
    default: Any
    required: bool
    description: str


class HelperExample(Struct, kw_only=True):
    """A helper chain using the helper, with the cron expression and English it gives."""

    helpers: list[HelperCallBody]
    expression: str
    description: str


class HelperEntry(Struct, kw_only=True):
    """A frequency helper (Laravel-style), its parameters and a worked example."""

    name: str
    parameters: list[HelperParameterView]
    description: str
    example: HelperExample


class PreviewRun(Struct, kw_only=True):
    """A coming tick: `local` (with offset), `utc`, its wall-clock `slot`, DST notes."""

    local: str
    utc: str
    skipped: str | None
    dst: str | None
    slot: str


class FrequencyPreview(Struct, kw_only=True):
    """A frequency's canonical cron expression, its English description and next runs."""

    expression: str
    description: str
    timezone: str
    next_runs: list[PreviewRun]
