"""The Export aggregate's rules: a completed export is never written again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.export import (
    MAX_REASON,
    Export,
    ExportFormat,
    ExportStatus,
    export_job_id,
    parse_format,
)
from domain.shared import GoneError, InvalidTransitionError, ValidationError

AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def requested(fmt: str = "csv") -> Export:
    export = Export.request(
        export_id=uuid4(),
        exporter="jobs",
        format=fmt,
        filters={"status": "failed"},
        by="alice",
        at=AT,
        tenant="acme",
        job_id=uuid4(),
    )
    export.collect_events()
    return export


def state(export: Export) -> tuple[ExportStatus, int, str | None]:
    return export.status, export.attempts, export.failure


def completed() -> Export:
    export = requested()
    export.start(at=AT)
    export.finish(rows=3, size=120, file_name=f"{export.id}.csv", at=AT + timedelta(seconds=2))
    export.collect_events()
    return export


def test_request_records_what_was_asked() -> None:
    export_id, job_id = uuid4(), uuid4()
    export = Export.request(
        export_id=export_id,
        exporter="jobs",
        format=" XLSX ",
        filters={"queue": "high"},
        by="alice",
        at=AT,
        tenant="acme",
        job_id=job_id,
    )
    (event,) = export.collect_events()
    assert isinstance(event, Export.Requested)
    assert (event.format, event.filters, event.job_id, event.by) == (
        "xlsx",
        {"queue": "high"},
        job_id,
        "alice",
    )
    assert export.status is ExportStatus.PENDING
    assert export.format is ExportFormat.XLSX
    assert (export.tenant, export.requested_by, export.requested_at) == ("acme", "alice", AT)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"format": "pdf"}, "format"),
        ({"tenant": ""}, "tenant"),
        ({"exporter": ""}, "exporter"),
        ({"at": datetime(2026, 1, 5)}, "at"),  # noqa: DTZ001 - naive on purpose
    ],
)
def test_request_refuses_bad_input(changes: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {
        "export_id": uuid4(),
        "exporter": "jobs",
        "format": "csv",
        "filters": {},
        "by": "alice",
        "at": AT,
        **changes,
    }
    with pytest.raises(ValidationError) as raised:
        Export.request(**fields)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_parse_format_names_the_known_formats() -> None:
    assert parse_format("csv") is ExportFormat.CSV
    with pytest.raises(ValidationError, match="unknown export format 'pdf'; use csv or xlsx"):
        parse_format("pdf")


def test_start_then_finish_completes_with_the_file() -> None:
    export = requested()
    export.start(at=AT)
    assert (export.status, export.attempts, export.started_at) == (ExportStatus.RUNNING, 1, AT)
    export.finish(rows=3, size=120, file_name=f"{export.id}.csv", at=AT + timedelta(seconds=1))
    events = export.collect_events()
    assert [type(event) for event in events] == [Export.Started, Export.Finished]
    assert export.status is ExportStatus.COMPLETED
    assert (export.rows, export.size, export.file_name) == (3, 120, f"{export.id}.csv")
    assert export.require_file() == f"{export.id}.csv"


def test_a_completed_export_is_never_started_again() -> None:
    export = completed()
    with pytest.raises(InvalidTransitionError, match="is completed: its file is not written again"):
        export.start(at=AT)
    assert export.collect_events() == []


def test_finish_needs_a_running_export_and_a_plain_file_name() -> None:
    export = requested()
    with pytest.raises(InvalidTransitionError, match="is pending, it cannot finish"):
        export.finish(rows=1, size=1, file_name="x.csv", at=AT)
    export.start(at=AT)
    for name in ["../x.csv", "a/b.csv", "a\\b.csv", "..", ".hidden", "", "x\x00.csv"]:
        with pytest.raises(ValidationError, match="plain file name"):
            export.finish(rows=1, size=1, file_name=name, at=AT)
    with pytest.raises(ValidationError, match="negative"):
        export.finish(rows=-1, size=1, file_name="x.csv", at=AT)


def test_a_failed_attempt_records_the_reason_and_may_be_started_again() -> None:
    export = requested()
    export.start(at=AT)
    export.fail(reason="RuntimeError: database went away", at=AT)
    assert export.status is ExportStatus.FAILED
    assert export.failure == "RuntimeError: database went away"
    with pytest.raises(InvalidTransitionError, match="is failed: RuntimeError"):
        export.require_file()
    # The job's retry runs it again.
    export.start(at=AT + timedelta(seconds=5))
    assert state(export) == (ExportStatus.RUNNING, 2, None)
    export.finish(rows=0, size=10, file_name="x.csv", at=AT)
    assert state(export) == (ExportStatus.COMPLETED, 2, None)


def test_fail_from_pending_when_the_job_gave_up_but_never_once_done() -> None:
    export = requested()
    export.fail(reason="its job was cancelled", at=AT)
    assert export.status is ExportStatus.FAILED
    with pytest.raises(InvalidTransitionError):
        export.fail(reason="again", at=AT)
    with pytest.raises(InvalidTransitionError):
        completed().fail(reason="late", at=AT)


def test_failure_reasons_are_clipped() -> None:
    export = requested()
    export.start(at=AT)
    export.fail(reason="x" * (MAX_REASON * 2), at=AT)
    assert export.failure is not None
    assert len(export.failure) == MAX_REASON


def test_file_of_an_unfinished_export_is_a_conflict_naming_its_status() -> None:
    export = requested()
    with pytest.raises(InvalidTransitionError, match="is pending; its file is ready once"):
        export.require_file()
    export.start(at=AT)
    with pytest.raises(InvalidTransitionError, match="is running"):
        export.require_file()


def test_expire_removes_the_file_from_a_completed_export_only() -> None:
    with pytest.raises(InvalidTransitionError, match="only a completed export expires"):
        requested().expire(retention_hours=1, at=AT)
    export = completed()
    export.expire(retention_hours=168, at=AT + timedelta(days=7))
    (event,) = export.collect_events()
    assert isinstance(event, Export.Expired)
    assert export.status is ExportStatus.EXPIRED
    with pytest.raises(GoneError, match=r"removed on 2026-01-12 12:00:00 UTC.*168 hours"):
        export.require_file()
    with pytest.raises(InvalidTransitionError):
        export.expire(retention_hours=168, at=AT)
    with pytest.raises(InvalidTransitionError):
        export.start(at=AT)


def test_the_job_id_derives_from_the_export_id() -> None:
    export_id = uuid4()
    assert export_job_id(export_id) == export_job_id(export_id)
    assert export_job_id(export_id) != export_job_id(uuid4())
