"""ExportService on the in-memory event store, with a fake file folder and read model."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.commands import CommandCancelledError, CommandContext, CommandRegistry
from application.event_log import ChronicleEvents, LoggedEvent
from application.exports.exporters import (
    ExportColumn,
    Exporter,
    ExporterRegistry,
    ExportFilter,
    ExportQuery,
    ExportRow,
)
from application.exports.service import (
    EXPORT_COMMAND,
    ExportService,
    WrittenFile,
    register_export_command,
)
from application.exports.view import ExportRecord
from application.jobs import JobService
from application.periodic import PeriodicTask
from application.stopped_jobs import StoppedJobWatcher
from domain.export import Export, ExportFormat, ExportStatus, export_job_id
from domain.job import Job
from domain.shared import GoneError, InvalidTransitionError, NotFoundError, ValidationError
from tests.unit.fakes import FakeClock

COLUMNS = [ExportColumn("id", "Id"), ExportColumn("name", "Name")]


@dataclass
class FakeFiles:
    """ExportFiles in memory: name → (rows written, written at)."""

    clock: FakeClock
    files: dict[str, tuple[list[ExportRow], datetime]] = field(default_factory=dict)
    writes: int = 0

    def write(
        self,
        export_id: UUID,
        fmt: ExportFormat,
        columns: Sequence[ExportColumn],
        rows: Iterable[ExportRow],
    ) -> WrittenFile:
        self.writes += 1
        kept = list(rows)  # a failing query raises here, before any file exists
        name = f"{export_id}.{fmt.value}"
        self.files[name] = (kept, self.clock.now())
        return WrittenFile(name=name, rows=len(kept), size=10 * len(kept) + len(columns))

    def path(self, name: str) -> Path:
        if name not in self.files:
            raise NotFoundError(f"export file {name!r} does not exist")
        return Path("/exports") / name

    def remove(self, name: str) -> None:
        self.files.pop(name, None)

    def remove_older_than(self, age: timedelta, now: datetime) -> list[str]:
        old = sorted(name for name, (_, at) in self.files.items() if at <= now - age)
        for name in old:
            del self.files[name]
        return old


@dataclass
class FakeQueries:
    """The read model's `completed_before`, answered from the event store."""

    events: ChronicleEvents
    ids: list[UUID] = field(default_factory=list)

    def completed_before(
        self, cutoff: datetime, *, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[tuple[datetime, UUID]]:
        found = []
        for export_id in self.ids:
            export: Export = self.events.repository.get(export_id)
            finished = export.finished_at
            if export.status is ExportStatus.COMPLETED and finished and finished <= cutoff:
                found.append((finished, export_id))
        found.sort()
        if after is not None:
            found = [item for item in found if item > after]
        return found[:limit]

    def get_export(self, tenant: str, export_id: UUID) -> ExportRecord | None:
        return None

    def list_exports(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ExportRecord], str | None]:
        return [], None


class Source:
    """An exporter's rows, which may fail half-way."""

    def __init__(self) -> None:
        self.fail_after: int | None = None
        self.queries: list[ExportQuery] = []
        self.count = 5

    def rows(self, query: ExportQuery) -> Iterator[ExportRow]:
        self.queries.append(query)
        for index in range(self.count):
            if self.fail_after is not None and index >= self.fail_after:
                raise RuntimeError("the database went away")
            yield {"id": index, "name": f"{query.tenant}-{index}"}


@dataclass
class Harness:
    events: ChronicleEvents
    clock: FakeClock
    files: FakeFiles
    queries: FakeQueries
    source: Source
    registry: CommandRegistry
    service: ExportService

    def request(self, **options: Any) -> Export:
        export = self.service.request(
            options.pop("exporter", "people"),
            options.pop("fmt", "csv"),
            options.pop("filters", {"country": "IT"}),
            tenant=options.pop("tenant", "acme"),
            by="alice",
            **options,
        )
        self.queries.ids.append(export.id)
        return export

    def export(self, export_id: UUID) -> Export:
        loaded: Export = self.events.repository.get(export_id)
        return loaded


@pytest.fixture
def h() -> Harness:
    events = ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    clock = FakeClock()
    registry = CommandRegistry()
    jobs = JobService(events, registry, clock, default_backoff_seconds=0.0)
    source = Source()
    exporters = ExporterRegistry()
    exporters.register(
        Exporter(
            name="people",
            description="People",
            columns=COLUMNS,
            rows=source.rows,
            filters=[ExportFilter("country"), ExportFilter("age", "int")],
        )
    )
    files = FakeFiles(clock)
    queries = FakeQueries(events)
    service = ExportService(
        events,
        jobs,
        clock,
        exporters=exporters,
        files=files,
        queries=queries,
        retention_hours=24,
    )
    register_export_command(registry, service)
    return Harness(events, clock, files, queries, source, registry, service)


def test_request_saves_the_export_and_its_job_together(h: Harness) -> None:
    export = h.request(filters={"country": "IT", "age": "42"})
    job: Job = h.events.repository.get(export_job_id(export.id))
    assert export.job_id == job.id
    assert (job.command, job.arguments, job.queue) == (
        EXPORT_COMMAND,
        {"export_id": str(export.id)},
        "default",
    )
    assert (job.tenant, job.requested_by) == ("acme", "alice")
    stored = h.export(export.id)
    assert stored.filters == {"age": 42, "country": "IT"}
    assert stored.status is ExportStatus.PENDING
    # One transaction: the export's event and the job's are next to each other in the log.
    notifications = h.events.notification_log.select(start=1, limit=10)
    assert [n.originator_id for n in notifications] == [export.id, job.id]


def test_request_without_dispatch_records_no_job(h: Harness) -> None:
    export = h.request(dispatch=False)
    assert export.job_id is None
    assert len(h.events.notification_log.select(start=1, limit=10)) == 1


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"exporter": "peple"}, "exporter", "unknown exporter 'peple' (did you mean 'people'?)"),
        ({"fmt": "pdf"}, "format", "unknown export format 'pdf'"),
        ({"filters": {"contry": "IT"}}, "filters", "unknown filter 'contry'"),
        ({"filters": {"age": "old"}}, "filters", "filter 'age' of exporter 'people'"),
        ({"filters": ["age"]}, "filters", "filters must be an object"),
    ],
)
def test_bad_requests_are_refused_and_record_nothing(
    h: Harness, options: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        h.request(**options)
    assert message in str(raised.value)
    assert raised.value.field == field
    assert h.events.notification_log.select(start=1, limit=10) == []


def test_run_writes_the_file_and_records_it(h: Harness) -> None:
    export = h.request(fmt="xlsx")
    outcome = h.service.run(export.id)
    assert (outcome.status, outcome.rows, outcome.file_name) == (
        ExportStatus.COMPLETED,
        5,
        f"{export.id}.xlsx",
    )
    assert h.source.queries == [ExportQuery(tenant="acme", filters={"country": "IT"})]
    stored = h.export(export.id)
    assert (stored.status, stored.rows, stored.size) == (ExportStatus.COMPLETED, 5, 52)
    download = h.service.download(export.id, tenant="acme")
    assert download.path == Path("/exports") / f"{export.id}.xlsx"
    assert download.filename == "people-20260105-120000.xlsx"
    assert download.format is ExportFormat.XLSX


def test_running_twice_writes_the_file_once(h: Harness) -> None:
    export = h.request()
    first = h.service.run(export.id)
    second = h.service.run(export.id)
    assert first == second
    assert h.files.writes == 1
    assert h.export(export.id).version == 3  # requested, started, finished


def test_a_failing_query_fails_the_export_and_the_job(h: Harness) -> None:
    export = h.request()
    h.source.fail_after = 2
    with pytest.raises(RuntimeError, match="went away"):
        h.service.run(export.id)
    stored = h.export(export.id)
    assert stored.status is ExportStatus.FAILED
    assert stored.failure == "RuntimeError: the database went away"
    assert h.files.files == {}
    with pytest.raises(InvalidTransitionError, match="is failed: RuntimeError"):
        h.service.download(export.id, tenant="acme")
    # The job's retry runs it again, and this time it works.
    h.source.fail_after = None
    assert h.service.run(export.id).status is ExportStatus.COMPLETED
    assert h.export(export.id).attempts == 2


def test_an_exporter_gone_at_run_time_fails_the_export(h: Harness) -> None:
    export = h.request()
    h.service._exporters = ExporterRegistry()
    with pytest.raises(ValidationError):
        h.service.run(export.id)
    assert "unknown exporter 'people'" in (h.export(export.id).failure or "")


def test_the_job_command_runs_the_export_and_stops_when_cancelled(h: Harness) -> None:
    export = h.request()
    command = h.registry.get(EXPORT_COMMAND)
    context = CommandContext(job_id=uuid4(), attempt=1, is_cancelled=lambda: False)
    result = command.run(context, {"export_id": str(export.id)}, {})
    assert result["status"] == "completed"
    assert result["rows"] == 5
    assert "completed: 5 rows" in context.output

    h.source.count = 2500
    other = h.request()
    cancelled = CommandContext(job_id=uuid4(), attempt=1, is_cancelled=lambda: True)
    with pytest.raises(CommandCancelledError):
        command.run(cancelled, {"export_id": str(other.id)}, {})
    assert h.export(other.id).status is ExportStatus.FAILED


def test_other_tenants_exports_are_not_found(h: Harness) -> None:
    export = h.request()
    with pytest.raises(NotFoundError):
        h.service.get(export.id, tenant="other")
    with pytest.raises(NotFoundError):
        h.service.download(export.id, tenant="other")
    with pytest.raises(NotFoundError):
        h.service.get(uuid4(), tenant="acme")


def test_expire_removes_files_after_the_retention_and_records_it(h: Harness) -> None:
    old, fresh, pending = h.request(), h.request(), h.request()
    h.service.run(old.id)
    h.clock.advance(3600)
    h.service.run(fresh.id)
    h.clock.advance(23 * 3600)  # old: 24 h ago, fresh: 23 h ago

    assert h.service.expire() == 1

    assert h.export(old.id).status is ExportStatus.EXPIRED
    assert h.export(old.id).retention_hours == 24
    assert list(h.files.files) == [f"{fresh.id}.csv"]
    assert h.export(fresh.id).status is ExportStatus.COMPLETED
    assert h.export(pending.id).status is ExportStatus.PENDING
    with pytest.raises(GoneError, match="after the retention of 24 hours"):
        h.service.download(old.id, tenant="acme")
    assert h.service.expire() == 0  # nothing more to do


def test_expire_pages_through_many_exports(h: Harness) -> None:
    ids = []
    for _ in range(250):
        export = h.request()
        h.service.run(export.id)
        ids.append(export.id)
    h.clock.advance(25 * 3600)
    assert h.service.expire() == 250
    assert h.files.files == {}


def test_orphan_files_are_removed_and_their_exports_expire(h: Harness) -> None:
    export = h.request()
    h.service.run(export.id)
    h.queries.ids.clear()  # the read model does not know the export (it lags, or was lost)
    h.files.files["stray.csv.part"] = ([], h.clock.now())
    h.clock.advance(23 * 3600)
    assert h.service.expire() == 0  # younger than a day: an export may be writing them
    h.clock.advance(2 * 3600)
    assert h.service.expire() == 1
    assert h.files.files == {}
    assert h.export(export.id).status is ExportStatus.EXPIRED


def test_a_file_missing_from_the_folder_is_not_found_with_a_hint(h: Harness) -> None:
    export = h.request()
    h.service.run(export.id)
    h.files.files.clear()
    with pytest.raises(NotFoundError, match="CHRONICLE_FILES_DIR"):
        h.service.download(export.id, tenant="acme")


def _job_event(h: Harness, export: Export, event_type: type) -> LoggedEvent:
    """Cancel the export's job, or let its worker die on every attempt."""
    job: Job = h.events.repository.get(export_job_id(export.id))
    if event_type is Job.Cancelled:
        job.cancel(by="bob", reason="not needed", at=h.clock.now())
    while event_type is Job.DeadLettered and job.attempts < job.attempt_limit:
        job.start(worker_id="w", at=h.clock.now())
        job.fail(
            error_type="WorkerLost",
            message="worker w went silent",
            traceback="",
            output="",
            duration_ms=1.0,
            at=h.clock.now(),
            random_unit=0.5,
        )
    h.events.save(job)
    (event,) = [e for e in h.events.events.get(job.id) if isinstance(e, event_type)]
    return LoggedEvent(position=0, event=event)


def test_the_watcher_fails_an_export_whose_job_was_cancelled(h: Harness) -> None:
    export = h.request()
    watcher = StoppedJobWatcher(h.events, {EXPORT_COMMAND: h.service.job_stopped})
    logged = _job_event(h, export, Job.Cancelled)
    watcher.process([logged], None)
    stored = h.export(export.id)
    assert stored.status is ExportStatus.FAILED
    assert stored.failure is not None
    assert "was cancelled by bob: not needed" in stored.failure
    watcher.process([logged], None)  # read again: nothing changes
    assert h.export(export.id).version == stored.version


def test_the_watcher_fails_a_running_export_whose_job_gave_up(h: Harness) -> None:
    export = h.request()
    h.service._change(export.id, lambda e: e.start(at=h.clock.now()))  # its worker died here
    StoppedJobWatcher(h.events, {EXPORT_COMMAND: h.service.job_stopped}).process(
        [_job_event(h, export, Job.DeadLettered)], None
    )
    stored = h.export(export.id)
    assert stored.status is ExportStatus.FAILED
    assert "gave up after 3 attempts: WorkerLost" in (stored.failure or "")


def test_the_watcher_leaves_completed_exports_and_other_jobs_alone(h: Harness) -> None:
    export = h.request()
    h.service.run(export.id)
    assert h.service.abandon(export.id, "late") is False
    assert h.export(export.id).status is ExportStatus.COMPLETED
    assert h.service.abandon(uuid4(), "unknown") is False


def test_the_retention_thread_sweeps_until_stopped(h: Harness) -> None:
    calls = threading.Semaphore(0)

    class Counting:
        def expire(self) -> int:
            calls.release()
            return 0

    sweeper = PeriodicTask("export-retention", Counting().expire, interval=0.01).start()
    try:
        assert calls.acquire(timeout=2)
        assert calls.acquire(timeout=2)
    finally:
        sweeper.stop()
