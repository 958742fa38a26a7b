"""A job as of at least a write: its row and timeline, and its comments (see `JobReads`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from application.event_log import LoggedEvent
from application.projections import ProjectionPositions
from application.reads.read_your_writes import Current, ReadYourWrites, replay
from application.recovery import RecoveryQueries
from application.views.job_timeline import JobTimelineProjection, TimelineEntry, TimelineQueries
from application.views.jobs import (
    FailedJobIds,
    JobComment,
    JobRow,
    JobsProjection,
    JobsQueries,
    JobState,
)


class JobsReadModel(
    JobsQueries, TimelineQueries, FailedJobIds, RecoveryQueries, ProjectionPositions, Protocol
):
    """Everything the jobs and timeline read models answer."""


@dataclasses.dataclass(frozen=True)
class JobWithTimeline:
    """A job's row and every event of its life, oldest first."""

    row: JobRow
    timeline: list[TimelineEntry]

    @property
    def version(self) -> int:
        # Two read models, each followed by its own runner: the one behind says how current.
        return min(self.row.version, self.timeline[-1].version if self.timeline else 0)


@dataclasses.dataclass(frozen=True)
class _Comments:
    items: list[JobComment]
    version: int


_ROW_FIELDS = {f.name for f in dataclasses.fields(JobRow)}


def _as_stored(value: Any) -> Any:
    # The timeline read model keeps details as JSON (datetimes as isoformat, UUIDs as text):
    # show the same values before projection.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


class _OneJob:
    """A JobsWriter and TimelineWriter that keep one job's row, comments and timeline."""

    def __init__(self) -> None:
        self.row: dict[str, Any] | None = None
        self.comments: list[JobComment] = []
        self.timeline: list[TimelineEntry] = []

    def job_state(self, job_id: UUID) -> JobState | None:  # noqa: ARG002 - one job only
        row = self.row
        return JobState(row["tenant"], row["queue"], row["status"]) if row else None

    def insert_job(self, row: dict[str, Any]) -> None:
        self.row = {**dict.fromkeys(_ROW_FIELDS), **row}

    def update_job(self, job_id: UUID, changes: dict[str, Any]) -> None:  # noqa: ARG002
        if self.row is not None:
            self.row.update(changes)

    def add_counts(self, deltas: dict[tuple[str, str, str], int]) -> None:
        """Counts are the read model's business, not this one job's."""

    def insert_comment(self, row: dict[str, Any]) -> None:
        self.comments.append(JobComment(row["id"], row["author"], row["text"], row["at"]))

    def insert_entries(self, entries: Sequence[TimelineEntry]) -> None:
        self.timeline.extend(
            dataclasses.replace(e, details={k: _as_stored(v) for k, v in e.details.items()})
            for e in entries
        )

    def job_row(self, tenant: str) -> JobRow | None:
        """The row the read model will hold, decoded as its queries decode it; None for
        another tenant's job, or an aggregate that is not a job."""
        row = self.row
        if row is None or row["tenant"] != tenant:
            return None
        return JobRow(
            **{
                **{key: value for key, value in row.items() if key in _ROW_FIELDS},
                "arguments": json.loads(row["arguments"]),
                "options": json.loads(row["options"]),
                "result": json.loads(row["result"]) if row["result"] is not None else None,
            }
        )


def _own_job(events: Sequence[LoggedEvent]) -> _OneJob:
    job = _OneJob()
    replay(JobsProjection(), events, job)
    replay(JobTimelineProjection(), events, job)
    return job


class JobReads:
    """Jobs as HTTP, the CLI and the dashboard read them; lists are on `JobsReadModel`."""

    def __init__(self, reads: ReadYourWrites, queries: JobsReadModel) -> None:
        self._reads = reads
        self._queries = queries

    def get(
        self, tenant: str, job_id: UUID, *, at_least: int | None = None
    ) -> Current[JobWithTimeline]:
        """The job with its timeline, as of at least version `at_least` (by default its
        current one). Another tenant's job, or an id that is not a job's, is not found."""
        row = self._queries.get(tenant, job_id)
        stored = None if row is None else JobWithTimeline(row, self._queries.timeline(job_id))

        def own(events: Sequence[LoggedEvent], _: JobWithTimeline | None) -> JobWithTimeline | None:
            job = _own_job(events)
            found = job.job_row(tenant)
            return None if found is None else JobWithTimeline(found, job.timeline)

        return self._reads.read("job", job_id, stored, own, at_least=at_least)

    def comments(
        self, tenant: str, job_id: UUID, *, at_least: int | None = None
    ) -> list[JobComment]:
        """The job's comments, oldest first, as of at least version `at_least`."""
        row = self._queries.get(tenant, job_id)
        stored = None if row is None else _Comments(self._queries.comments(job_id), row.version)

        def own(events: Sequence[LoggedEvent], _: _Comments | None) -> _Comments | None:
            job = _own_job(events)
            found = job.job_row(tenant)
            return None if found is None else _Comments(job.comments, found.version)

        return self._reads.read("job", job_id, stored, own, at_least=at_least).value.items
