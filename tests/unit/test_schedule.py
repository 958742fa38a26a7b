"""Schedule aggregate and ticks: settings checked, edits recorded with what changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from domain.schedule import Schedule, SkipReason, job_id_for, skip, tick_id, trigger
from domain.shared import InvalidTransitionError, ValidationError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def make(**overrides: object) -> Schedule:
    fields: dict[str, object] = {
        "schedule_id": uuid4(),
        "name": "nightly report",
        "command": "demo:echo",
        "command_line": "demo:echo hi",
        "arguments": {"message": "hi"},
        "options": {},
        "frequency": {"expression": "0 2 * * *"},
        "timezone": "Europe/Rome",
        "by": "ops",
        "at": T0,
    }
    fields.update(overrides)
    return Schedule.create(**fields)  # type: ignore[arg-type]


def test_created_carries_every_setting_and_who():
    schedule = make(queue="low", without_overlapping=True, missed_runs="run_once")
    [created] = schedule.collect_events()
    assert isinstance(created, Schedule.Created)
    assert (created.queue, created.without_overlapping, created.missed_runs) == (
        "low",
        True,
        "run_once",
    )
    assert created.by == "ops"
    assert schedule.active


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "  "}, "name"),
        ({"queue": "urgent"}, "queue"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"missed_runs": "catch_all"}, "missed_runs"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(overrides, field):
    with pytest.raises(ValidationError) as error:
        make(**overrides)
    assert error.value.field == field


def test_edit_records_only_what_changed():
    schedule = make()
    schedule.collect_events()
    changed = schedule.edit(changes={"queue": "high", "name": "nightly report"}, by="ana", at=T0)
    assert changed
    [edited] = schedule.collect_events()
    assert isinstance(edited, Schedule.Edited)
    assert edited.changes == {"queue": {"from": "default", "to": "high"}}
    assert edited.by == "ana"
    assert schedule.queue == "high"
    assert not schedule.edit(changes={"queue": "high"}, by="ana", at=T0)
    with pytest.raises(ValidationError, match="cannot edit tenant"):
        schedule.edit(changes={"tenant": "other"}, by="ana", at=T0)


def test_pause_resume_delete_rules():
    schedule = make()
    schedule.pause(by="op", at=T0)
    assert not schedule.active
    with pytest.raises(InvalidTransitionError, match="already paused"):
        schedule.pause(by="op", at=T0)
    schedule.resume(by="op", at=T0)
    with pytest.raises(InvalidTransitionError, match="not paused"):
        schedule.resume(by="op", at=T0)
    schedule.delete(by="op", at=T0)
    with pytest.raises(InvalidTransitionError, match="deleted"):
        schedule.edit(changes={"queue": "low"}, by="op", at=T0)


def test_comments_need_text():
    schedule = make()
    with pytest.raises(ValidationError, match="some text"):
        schedule.add_comment(comment_id=uuid4(), author="a", text="  ", at=T0)
    schedule.add_comment(comment_id=uuid4(), author="a", text="moved to 3am", at=T0)
    assert isinstance(schedule.collect_events()[-1], Schedule.CommentAdded)


def test_tick_and_job_ids_derive_from_schedule_and_due_time():
    schedule_id = uuid4()
    due = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    in_rome = due.astimezone(timezone(timedelta(hours=2)))
    assert tick_id(schedule_id, due) == tick_id(schedule_id, in_rome)
    assert tick_id(schedule_id, due) != tick_id(schedule_id, due + timedelta(seconds=1))
    assert job_id_for(schedule_id, due) != tick_id(schedule_id, due)
    triggered = trigger(schedule_id, tenant="default", due_at=due, job_id=uuid4(), at=due)
    skipped = skip(schedule_id, tenant="default", due_at=due, reason=SkipReason.OVERLAP, at=due)
    # Both claim the same id: the event store lets only one of them exist.
    assert triggered.id == skipped.id
