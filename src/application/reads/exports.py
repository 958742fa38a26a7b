"""An export as of at least a write (see `ExportReads`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from application.event_log import LoggedEvent
from application.exports.view import ExportRecord, ExportsProjection, ExportsQueries
from application.reads.read_your_writes import Current, ReadYourWrites, replay

_ROW_FIELDS = {f.name for f in dataclasses.fields(ExportRecord)}


class _OneExport:
    """An ExportsWriter that keeps one export's row in memory."""

    def __init__(self) -> None:
        self.row: dict[str, Any] | None = None

    def insert_export(self, row: dict[str, Any]) -> None:
        self.row = {**dict.fromkeys(_ROW_FIELDS), **row}

    def update_export(self, export_id: UUID, version: int, changes: dict[str, Any]) -> None:  # noqa: ARG002
        if self.row is not None and self.row["version"] < version:
            self.row.update(changes, version=version)


class ExportReads:
    """Exports as HTTP, the CLI and the dashboard read them; the list is on `ExportsQueries`."""

    def __init__(self, reads: ReadYourWrites, queries: ExportsQueries) -> None:
        self._reads = reads
        self._queries = queries

    def get(
        self, tenant: str, export_id: UUID, *, at_least: int | None = None
    ) -> Current[ExportRecord]:
        """The export as of at least version `at_least` (by default its current one).
        Another tenant's export, or an id that is not an export's, is not found."""

        def own(events: Sequence[LoggedEvent], _: ExportRecord | None) -> ExportRecord | None:
            export = replay(ExportsProjection(), events, _OneExport())
            if export.row is None or export.row["tenant"] != tenant:
                return None
            return ExportRecord(**export.row)

        stored = self._queries.get_export(tenant, export_id)
        return self._reads.read("export", export_id, stored, own, at_least=at_least)
