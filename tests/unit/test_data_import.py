"""Import aggregate: chunks counted once, an explicit final status, failed rows kept."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.data_import import FailedRow, Import, ImportStatus
from domain.shared import InvalidTransitionError, ValidationError

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def started(**overrides: object) -> Import:
    fields: dict[str, object] = {
        "import_id": uuid4(),
        "importer": "contacts",
        "file_name": "contacts.csv",
        "file_size": 1234,
        "stored_as": "imports/abc.csv",
        "by": "ops",
        "at": T0,
        "header": ["name", "email", "age", "country"],
    }
    fields.update(overrides)
    return Import.start(**fields)  # type: ignore[arg-type]


BAD = FailedRow(number=7, data={"email": "nope"}, errors={"email": "must be a valid email"})


def test_chunks_add_up_and_failures_say_so():
    job = started(mapping={"E-mail": "email"}, chunk_size=2)
    job.record_chunk(chunk=0, first_row=2, last_row=3, rows_ok=2, failed_rows=[], at=T0)
    job.record_chunk(chunk=1, first_row=4, last_row=7, rows_ok=1, failed_rows=[BAD], at=T0)
    job.complete(at=T0)
    assert job.status is ImportStatus.COMPLETED_WITH_FAILURES
    assert (job.rows, job.succeeded, job.failed) == (4, 3, 1)
    events = job.collect_events()
    assert isinstance(events[0], Import.Started)
    assert events[0].mapping == {"E-mail": "email"}
    assert isinstance(events[2], Import.ChunkProcessed)
    assert [FailedRow.from_dict(r) for r in events[2].failed_rows] == [BAD]
    completed = events[-1]
    assert isinstance(completed, Import.Completed)
    assert (completed.status, completed.rows, completed.failed) == (
        "completed_with_failures",
        4,
        1,
    )


def test_without_failed_rows_it_is_completed():
    job = started()
    job.record_chunk(chunk=0, first_row=2, last_row=10, rows_ok=9, failed_rows=[], at=T0)
    job.complete(at=T0)
    assert job.status is ImportStatus.COMPLETED


def test_a_chunk_is_counted_once():
    job = started()
    job.record_chunk(chunk=0, first_row=2, last_row=3, rows_ok=2, failed_rows=[], at=T0)
    with pytest.raises(InvalidTransitionError, match=r"chunk 0 .* already recorded"):
        job.record_chunk(chunk=0, first_row=2, last_row=3, rows_ok=2, failed_rows=[], at=T0)
    assert job.succeeded == 2


def test_a_failed_import_says_why_and_takes_nothing_more():
    job = started()
    job.fail(reason="missing required columns: email", at=T0)
    assert job.status is ImportStatus.FAILED
    assert job.failure == "missing required columns: email"
    with pytest.raises(InvalidTransitionError):
        job.record_chunk(chunk=0, first_row=2, last_row=3, rows_ok=2, failed_rows=[], at=T0)
    with pytest.raises(InvalidTransitionError):
        job.complete(at=T0)


def test_bad_settings_are_refused():
    with pytest.raises(ValidationError, match="chunk_size"):
        started(chunk_size=0)
    with pytest.raises(ValidationError, match="reason"):
        started().fail(reason=" ", at=T0)
