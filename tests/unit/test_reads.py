"""Read your writes on in-memory storage: one rule for every resource (`application.reads`).

The read models are fakes that answer what a test put in them: "projected at version n" is a
row a test stores, so each test says exactly how far behind the read model is.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.event_log import ChronicleEvents, LoggedEvent
from application.exports.view import ExportRecord
from application.imports.view import FailedImportRow, ImportRow
from application.reads.batches import BatchReads
from application.reads.exports import ExportReads
from application.reads.imports import ImportReads
from application.reads.jobs import JobReads
from application.reads.read_your_writes import Current, ReadYourWrites, replay
from application.reads.schedules import ScheduleReads
from application.views.batches import BatchRow
from application.views.job_timeline import TimelineEntry
from application.views.jobs import JobComment, JobRow, JobsProjection
from application.views.schedules import Comment, RunRow, ScheduleRow
from domain.batch import Batch
from domain.data_import import FailedRow, Import
from domain.export import Export
from domain.frequency import Frequency
from domain.job import Job
from domain.schedule import Schedule
from domain.shared import NotFoundError
from tests.unit.fakes import memory_events

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def events() -> ChronicleEvents:
    return memory_events()


@pytest.fixture
def reads(events: ChronicleEvents) -> ReadYourWrites:
    return ReadYourWrites(events)


# -- the rule ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    name: str
    version: int


def saved_job(events: ChronicleEvents, *, tenant: str = "default") -> Job:
    job = Job.dispatch(
        job_id=uuid4(),
        command="demo:noop",
        command_line="demo:noop",
        arguments={},
        options={},
        at=T0,
        tenant=tenant,
    )
    events.save(job)
    return job


class Own:
    """An `own` that records the calls it gets."""

    def __init__(self, answer: Answer | None) -> None:
        self.answer = answer
        self.calls: list[tuple[list[int], Answer | None]] = []

    def __call__(self, events: Any, stored: Answer | None) -> Answer | None:
        self.calls.append(([e.event.originator_version for e in events], stored))
        return self.answer


def test_the_read_models_answer_once_it_holds_the_current_version(events, reads):
    job = saved_job(events)
    own = Own(Answer("own", 1))
    assert reads.read("job", job.id, Answer("stored", 1), own) == Current(
        Answer("stored", 1), projected=True
    )
    assert own.calls == []


def test_an_answer_behind_the_event_store_is_replaced_by_the_events(events, reads):
    job = saved_job(events)
    job.cancel(by="alice", reason="", at=later(1))
    events.save(job)
    own = Own(Answer("own", 2))
    stale = Answer("stored", 1)
    assert reads.read("job", job.id, stale, own) == Current(Answer("own", 2), projected=False)
    # `own` gets the aggregate's events, and the stale answer for what other streams say.
    assert own.calls == [([1, 2], stale)]


def test_no_answer_from_the_read_model_means_the_events(events, reads):
    job = saved_job(events)
    own = Own(Answer("own", 1))
    assert reads.read("job", job.id, None, own).projected is False
    assert own.calls == [([1], None)]


def test_at_least_is_the_write_the_caller_needs(events, reads):
    job = saved_job(events)
    job.cancel(by="alice", reason="", at=later(1))
    events.save(job)
    own = Own(Answer("own", 2))
    # Version 1 is what this caller wrote: a row at 1 answers, newer events or not.
    assert reads.read("job", job.id, Answer("stored", 1), own, at_least=1).projected is True
    assert reads.read("job", job.id, Answer("stored", 1), own, at_least=2).projected is False


def test_what_the_events_do_not_make_is_not_found(events, reads):
    missing = uuid4()
    with pytest.raises(NotFoundError, match=f"export {missing} not found"):
        reads.read("export", missing, None, Own(None))
    assert reads.version(missing) is None


def test_replay_hands_a_projection_only_the_events_it_reads(events):
    job = saved_job(events)
    batch = Batch.create(batch_id=uuid4(), name="b", by="alice", at=T0)
    events.save(batch)
    seen: list[LoggedEvent] = []

    class Recording(JobsProjection):
        def process(self, events: Any, writer: Any) -> None:
            seen.extend(events)

    mixed = [LoggedEvent(0, e) for e in [*events.events.get(batch.id), *events.events.get(job.id)]]
    replay(Recording(), mixed, None)
    assert [logged.event.originator_id for logged in seen] == [job.id]


# -- jobs -------------------------------------------------------------------------------------


class FakeJobs:
    """The jobs and timeline read models: rows, timelines and comments put by the test."""

    def __init__(self) -> None:
        self.rows: dict[UUID, JobRow] = {}
        self.timelines: dict[UUID, list[TimelineEntry]] = {}
        self.comment_lists: dict[UUID, list[JobComment]] = {}

    def get(self, tenant: str, job_id: UUID) -> JobRow | None:
        row = self.rows.get(job_id)
        return row if row is not None and row.tenant == tenant else None

    def timeline(self, job_id: UUID) -> list[TimelineEntry]:
        return self.timelines.get(job_id, [])

    def comments(self, job_id: UUID) -> list[JobComment]:
        return self.comment_lists.get(job_id, [])


def project_job(fake: FakeJobs, jobs: JobReads, job_id: UUID) -> None:
    """Put in the fake what the projector would write: the job as its events make it."""
    job = jobs.get("default", job_id).value
    fake.rows[job_id] = dataclasses.replace(job.row, seq=7)
    fake.timelines[job_id] = [dataclasses.replace(e, position=7) for e in job.timeline]
    fake.comment_lists[job_id] = jobs.comments("default", job_id)


def test_a_job_before_projection_is_built_from_its_events(events, reads):
    job = saved_job(events)
    jobs = JobReads(reads, FakeJobs())  # type: ignore[arg-type]
    current = jobs.get("default", job.id)
    assert current.projected is False
    row = current.value.row
    assert (row.id, row.status, row.version, row.seq, row.arguments) == (
        job.id,
        "waiting",
        1,
        0,
        {},
    )
    assert [(e.event, e.position) for e in current.value.timeline] == [("dispatched", 0)]
    with pytest.raises(NotFoundError, match=f"job {job.id} not found"):
        jobs.get("acme", job.id)


def test_a_job_is_projected_once_both_its_row_and_timeline_caught_up(events, reads):
    job = saved_job(events)
    fake = FakeJobs()
    jobs = JobReads(reads, fake)  # type: ignore[arg-type]
    project_job(fake, jobs, job.id)
    assert jobs.get("default", job.id).projected is True

    job.cancel(by="alice", reason="", at=later(1))
    events.save(job)
    current = jobs.get("default", job.id)
    assert (current.projected, current.value.row.status) == (False, "cancelled")
    # The row caught up but its timeline (another runner) did not: still not current.
    fake.rows[job.id] = dataclasses.replace(current.value.row, seq=7)
    assert jobs.get("default", job.id).projected is False
    fake.timelines[job.id] = current.value.timeline
    assert jobs.get("default", job.id).projected is True


def test_job_comments_are_current_right_after_a_comment(events, reads):
    job = saved_job(events)
    fake = FakeJobs()
    jobs = JobReads(reads, fake)  # type: ignore[arg-type]
    project_job(fake, jobs, job.id)
    job.add_comment(comment_id=uuid4(), author="alice", text="looked at it", at=later(1))
    events.save(job)
    assert [(c.author, c.text) for c in jobs.comments("default", job.id)] == [
        ("alice", "looked at it")
    ]
    with pytest.raises(NotFoundError):
        jobs.comments("acme", job.id)


# -- schedules --------------------------------------------------------------------------------


class FakeSchedules:
    def __init__(self) -> None:
        self.rows: dict[UUID, ScheduleRow] = {}
        self.comment_lists: dict[UUID, list[Comment]] = {}
        self.run_rows: list[RunRow] = []

    def get_schedule(self, tenant: str, schedule_id: UUID) -> ScheduleRow | None:
        row = self.rows.get(schedule_id)
        return row if row is not None and (row.tenant, row.deleted) == (tenant, False) else None

    def comments(self, schedule_id: UUID) -> list[Comment]:
        return self.comment_lists.get(schedule_id, [])

    def runs(
        self, tenant: str, schedule_id: UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[RunRow], str | None]:
        return self.run_rows[:limit], None


def saved_schedule(events: ChronicleEvents) -> Schedule:
    schedule = Schedule.create(
        schedule_id=uuid4(),
        name="nightly",
        command="demo:noop",
        command_line="demo:noop",
        arguments={},
        options={},
        frequency=Frequency.from_expression("0 3 * * *").to_dict(),
        timezone="UTC",
        by="alice",
        at=T0,
    )
    events.save(schedule)
    return schedule


def test_a_schedule_is_current_after_edits_and_comments_alike(events, reads):
    schedule = saved_schedule(events)
    fake = FakeSchedules()
    schedules = ScheduleReads(reads, fake)  # type: ignore[arg-type]
    own = schedules.get("default", schedule.id)
    assert (own.projected, own.value.name, own.value.version) == (False, "nightly", 1)

    fake.rows[schedule.id] = dataclasses.replace(own.value, seq=3)
    assert schedules.get("default", schedule.id).projected is True

    schedule.add_comment(comment_id=uuid4(), author="bob", text="ok", at=later(1))
    events.save(schedule)
    assert [c.text for c in schedules.comments("default", schedule.id)] == ["ok"]
    # A comment moves the schedule's version: the row is behind until projected.
    commented = schedules.get("default", schedule.id)
    assert (commented.projected, commented.value.version) == (False, 2)
    fake.rows[schedule.id] = dataclasses.replace(commented.value, seq=3)
    assert schedules.get("default", schedule.id).projected is True

    history = schedules.history("default", schedule.id)
    assert [(h.version, h.event, h.by) for h in history] == [
        (1, "created", "alice"),
        (2, "comment_added", "bob"),
    ]


def test_a_schedule_from_its_events_keeps_the_last_tick_the_read_model_saw(events, reads):
    schedule = saved_schedule(events)
    fake = FakeSchedules()
    schedules = ScheduleReads(reads, fake)  # type: ignore[arg-type]
    job_id = uuid4()
    fake.rows[schedule.id] = dataclasses.replace(
        schedules.get("default", schedule.id).value,
        seq=3,
        last_due_at=later(60),
        last_job_id=job_id,
        last_run_at=later(61),
    )
    schedule.pause(by="alice", at=later(120))
    events.save(schedule)
    current = schedules.get("default", schedule.id, at_least=schedule.version)
    assert current.projected is False
    row = current.value
    assert (row.active, row.last_due_at, row.last_job_id, row.last_run_at) == (
        False,
        later(60),
        job_id,
        later(61),
    )


def test_a_deleted_or_foreign_schedule_is_not_found(events, reads):
    schedule = saved_schedule(events)
    schedules = ScheduleReads(reads, FakeSchedules())  # type: ignore[arg-type]
    for read in (schedules.get, schedules.comments, schedules.history):
        with pytest.raises(NotFoundError):
            read("acme", schedule.id)
    schedule.delete(by="alice", at=later(1))
    events.save(schedule)
    for read in (schedules.get, schedules.comments, schedules.history):
        with pytest.raises(NotFoundError, match=f"schedule {schedule.id} not found"):
            read("default", schedule.id)
    with pytest.raises(NotFoundError):
        schedules.runs("default", schedule.id, limit=10, cursor=None)


# -- batches ----------------------------------------------------------------------------------


class FakeBatches:
    def __init__(self) -> None:
        self.rows: dict[UUID, BatchRow] = {}

    def get_batch(self, tenant: str, batch_id: UUID) -> BatchRow | None:
        row = self.rows.get(batch_id)
        return row if row is not None and row.tenant == tenant else None


def test_a_batch_from_its_events_takes_its_job_counts_from_the_read_model(events, reads):
    batch = Batch.create(
        batch_id=uuid4(),
        name="pair",
        by="alice",
        at=T0,
        callbacks={
            "finally": {
                "command": "demo:noop",
                "command_line": "demo:noop",
                "arguments": {},
                "options": {},
            }
        },
    )
    batch.add_jobs(job_ids=[uuid4(), uuid4()], by="alice", at=T0)
    events.save(batch)
    fake = FakeBatches()
    batches = BatchReads(reads, fake)  # type: ignore[arg-type]
    fresh = batches.get("default", batch.id)
    row = fresh.value
    # No row yet: every job is pending.
    assert (fresh.projected, row.total, row.pending, row.processed, row.finished) == (
        False,
        2,
        2,
        0,
        False,
    )
    assert (row.finally_command, row.version) == ("demo:noop", 2)

    fake.rows[batch.id] = dataclasses.replace(
        row, seq=5, pending=1, processed=1, succeeded=1, progress=50, updated_at=later(30)
    )
    assert batches.get("default", batch.id).projected is True
    batch.cancel(by="bob", reason="enough", at=later(10))
    events.save(batch)
    cancelled = batches.get("default", batch.id, at_least=batch.version)
    row = cancelled.value
    assert (cancelled.projected, row.cancelled, row.cancelled_by, row.cancel_reason) == (
        False,
        True,
        "bob",
        "enough",
    )
    assert (row.pending, row.succeeded, row.progress, row.updated_at) == (1, 1, 50, later(30))
    with pytest.raises(NotFoundError, match=f"batch {batch.id} not found"):
        batches.get("acme", batch.id)


# -- exports ----------------------------------------------------------------------------------


class FakeExports:
    def __init__(self) -> None:
        self.rows: dict[UUID, ExportRecord] = {}

    def get_export(self, tenant: str, export_id: UUID) -> ExportRecord | None:
        row = self.rows.get(export_id)
        return row if row is not None and row.tenant == tenant else None


def test_an_export_follows_its_own_events_until_projected(events, reads):
    export = Export.request(
        export_id=uuid4(), exporter="jobs", format="csv", filters={}, by="alice", at=T0
    )
    events.save(export)
    fake = FakeExports()
    exports = ExportReads(reads, fake)  # type: ignore[arg-type]
    pending = exports.get("default", export.id, at_least=export.version)
    assert (pending.projected, pending.value.status, pending.value.requested_by) == (
        False,
        "pending",
        "alice",
    )
    fake.rows[export.id] = pending.value
    export.start(at=later(1))
    export.finish(rows=3, size=40, file_name="jobs.csv", at=later(2))
    events.save(export)
    done = exports.get("default", export.id)
    assert (done.projected, done.value.status, done.value.rows, done.value.version) == (
        False,
        "completed",
        3,
        3,
    )
    fake.rows[export.id] = done.value
    assert exports.get("default", export.id).projected is True
    with pytest.raises(NotFoundError):
        exports.get("acme", export.id)


# -- imports ----------------------------------------------------------------------------------


class FakeImports:
    def __init__(self) -> None:
        self.rows: dict[UUID, ImportRow] = {}
        self.failed: list[FailedImportRow] = []

    def get_import(self, tenant: str, import_id: UUID) -> ImportRow | None:
        row = self.rows.get(import_id)
        return row if row is not None and row.tenant == tenant else None

    def failed_rows(
        self,
        tenant: str,
        import_id: UUID,
        *,
        limit: int,
        after: int = 0,
        include_passed: bool = False,
    ) -> list[FailedImportRow]:
        return [row for row in self.failed if row.number > after][:limit]


def test_an_import_from_its_events_counts_chunks_and_retries(events, reads):
    found = Import.start(
        import_id=uuid4(),
        importer="contacts",
        file_name="people.csv",
        file_size=100,
        stored_as="x",
        by="alice",
        at=T0,
        header=["email"],
    )
    events.save(found)
    fake = FakeImports()
    imports = ImportReads(reads, fake)  # type: ignore[arg-type]
    started = imports.get("default", found.id, at_least=found.version).value
    assert (started.status, started.rows, started.progress, started.version) == (
        "processing",
        0,
        0.0,
        1,
    )
    bad = FailedRow(number=3, data={"email": "x"}, errors={"email": "not an e-mail"})
    found.record_chunk(
        chunk=0, first_row=2, last_row=4, rows_ok=2, failed_rows=[bad], at=later(1), bytes_read=100
    )
    found.complete(at=later(2))
    found.record_retry(passed=[3], still_failing=[], by="bob", at=later(3))
    events.save(found)
    current = imports.get("default", found.id)
    row = current.value
    assert current.projected is False
    assert (row.status, row.rows, row.succeeded, row.failed, row.chunks) == (
        "completed",
        3,
        3,
        0,
        1,
    )
    assert (row.finished_at, row.last_retry_at, row.duration_seconds, row.version) == (
        later(2),
        later(3),
        2.0,
        4,
    )
    fake.rows[found.id] = row
    assert imports.get("default", found.id).projected is True
    with pytest.raises(NotFoundError, match=f"import {found.id} not found"):
        imports.failed_rows("acme", found.id, limit=10)


def test_failed_rows_as_csv_keep_formulas_text(events, reads):
    fake = FakeImports()
    imports = ImportReads(reads, fake)  # type: ignore[arg-type]
    found = Import.start(
        import_id=uuid4(),
        importer="contacts",
        file_name="people.csv",
        file_size=10,
        stored_as="x",
        by="alice",
        at=T0,
        header=["email", "row"],
    )
    events.save(found)
    row = imports.get("default", found.id).value
    fake.failed = [
        FailedImportRow(
            import_id=found.id,
            number=2,
            data={"email": "=1+1", "row": "-5"},
            errors={},
            error="bad",
            passed=False,
            passed_at=None,
        )
    ]
    text = b"".join(imports.failed_rows_csv("default", row)).decode("utf-8-sig")
    assert text.splitlines() == ["_row,email,row,error", "2,'=1+1,-5,bad"]
