"""Shared pieces of the API's schemas: paths, UTC times, stated rules, errors and comments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar.openapi.spec import OpenAPIFormat
from msgspec import Meta, Struct

from application.views.jobs import JobComment
from application.views.schedules import Comment
from domain.job import MAX_COMMENT_CHARS, QUEUES, JobStatus


def job_path(job_id: UUID) -> str:
    return f"/api/jobs/{job_id}"


def utc(moment: datetime) -> datetime:
    """Times leave the API in UTC whatever the database session's time zone is."""
    return moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


# -- rules stated in the OpenAPI document -----------------------------------------------------
# The application checks these rules and answers 422 with a message naming the rule; msgspec
# constraints would refuse the value first with a terser 400. So they are only stated, as
# JSON-schema keywords Litestar copies into the field's schema (`extra_json_schema["extra"]`).


def rule(description: str, **keywords: Any) -> Meta:
    """A field's description, and JSON-schema keywords for a rule the application checks."""
    return Meta(description=description, extra_json_schema={"extra": keywords})


QUEUE_NAMES = list(QUEUES)
JOB_STATUSES = [status.value for status in JobStatus]
UUID_TEXT = {"format": OpenAPIFormat.UUID}
#: A non-blank text (some character that is not white space).
NOT_BLANK = r"\S"
MAX_ATTEMPTS = {"minimum": 1, "maximum": 100}
MAX_TIMEOUT = {"exclusive_minimum": 0, "maximum": 7 * 86400}
QUEUE_RULE = rule("high, default or low.", enum=QUEUE_NAMES)
OPTIONAL_QUEUE_RULE = rule("high, default or low.", enum=[*QUEUE_NAMES, None])


# -- errors, paths and comments ---------------------------------------------------------------


class ErrorBody(Struct, omit_defaults=True, kw_only=True):
    """Every error: a short kind, what was wrong and, when known, which field."""

    error: str
    message: str
    field: str | None = None
    details: list[Any] | None = None


def schedule_path(schedule_id: UUID) -> str:
    return f"/api/schedules/{schedule_id}"


class AddComment(Struct, forbid_unknown_fields=True, kw_only=True):
    """A note on a schedule or a job: `{"text": "…"}`, signed by the caller
    (the request's principal, e.g. `user:ada`)."""

    text: Annotated[
        str,
        rule(
            f"The comment: 1 to {MAX_COMMENT_CHARS:,} characters, not only white space.",
            min_length=1,
            max_length=MAX_COMMENT_CHARS,
            pattern=NOT_BLANK,
        ),
    ]


class CommentView(Struct, kw_only=True):
    """A comment on a schedule or a job."""

    id: UUID
    author: str
    text: str
    at: datetime


def local_iso(moment: datetime, timezone: str) -> str:
    """`moment` in `timezone`, ISO-8601 with its UTC offset."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat()


def comment_view(comment: Comment | JobComment) -> CommentView:
    return CommentView(id=comment.id, author=comment.author, text=comment.text, at=utc(comment.at))


def batch_path(batch_id: UUID) -> str:
    return f"/api/batches/{batch_id}"
