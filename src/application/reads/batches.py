"""A batch as of at least a write (see `BatchReads`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from application.event_log import LoggedEvent
from application.reads.read_your_writes import Current, ReadYourWrites, replay
from application.views.batches import (
    BatchesProjection,
    BatchesQueries,
    BatchJob,
    BatchRow,
    BatchTally,
)

_ROW_FIELDS = {f.name for f in dataclasses.fields(BatchRow)}
#: Kept from the read model's row when there is one: they count the batch's jobs, whose
#: events are in the jobs' streams. Without a row no job has finished yet.
_FROM_JOBS = (
    "total",
    "pending",
    "processed",
    "succeeded",
    "failed",
    "cancelled_jobs",
    "progress",
    "finished_at",
)


class _OneBatch:
    """A BatchesWriter that keeps one batch's row in memory (its jobs are not in its stream)."""

    def __init__(self) -> None:
        self.row: dict[str, Any] | None = None

    def insert_batch(self, row: dict[str, Any]) -> None:
        self.row = dict(row)

    def tallies(self, batch_ids: Collection[UUID]) -> dict[UUID, BatchTally]:  # noqa: ARG002
        # Asked before the batch's Created only: a ledger keeps the tallies it made.
        return {}

    def update_batch(self, batch_id: UUID, changes: dict[str, Any]) -> None:  # noqa: ARG002
        if self.row is not None:
            self.row.update(changes)

    def batch_jobs(self, job_ids: Collection[UUID]) -> dict[UUID, BatchJob]:  # noqa: ARG002
        return {}

    def put_batch_jobs(self, jobs: Sequence[BatchJob]) -> None:
        """The batch's jobs are the read model's business, not this one batch's row."""

    def job_ids(self, batch_id: UUID, state: str) -> list[UUID]:  # noqa: ARG002
        return []


def _batch_row(own: dict[str, Any], stored: BatchRow | None) -> BatchRow:
    row = BatchRow(**{key: value for key, value in own.items() if key in _ROW_FIELDS})
    if stored is None:
        return row
    return dataclasses.replace(
        row,
        **{key: getattr(stored, key) for key in _FROM_JOBS},
        updated_at=max(row.updated_at, stored.updated_at),
    )


class BatchReads:
    """Batches as HTTP, the CLI and the dashboard read them; the list is on `BatchesQueries`."""

    def __init__(self, reads: ReadYourWrites, queries: BatchesQueries) -> None:
        self._reads = reads
        self._queries = queries

    def get(self, tenant: str, batch_id: UUID, *, at_least: int | None = None) -> Current[BatchRow]:
        """The batch as of at least version `at_least` (by default its current one). Another
        tenant's batch, or an id that is not a batch's, is not found."""

        def own(events: Sequence[LoggedEvent], stored: BatchRow | None) -> BatchRow | None:
            batch = replay(BatchesProjection(), events, _OneBatch())
            if batch.row is None or batch.row["tenant"] != tenant:
                return None
            return _batch_row(batch.row, stored)

        stored = self._queries.get_batch(tenant, batch_id)
        return self._reads.read("batch", batch_id, stored, own, at_least=at_least)
