"""QueueControl aggregate and the paused set a worker acts on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.queue_control import paused_queues
from application.views.queue_pauses import QueuePause
from domain.queue_control import QueueControl, queue_control_id
from domain.shared import InvalidTransitionError, ValidationError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
QUEUES = ("high", "default", "low")


def test_one_control_per_tenant_with_a_stable_id():
    control = QueueControl.open(tenant="acme", at=T0)
    assert control.id == queue_control_id("acme")
    assert queue_control_id("acme") != queue_control_id("default")
    [opened] = control.collect_events()
    assert isinstance(opened, QueueControl.Opened)
    assert opened.tenant == "acme"


def test_pause_and_resume_record_who_why_and_when():
    control = QueueControl.open(at=T0)
    control.pause(queue="default", by="alice", reason="deploying", at=T0)
    control.resume(queue="default", by="bob", at=T0 + timedelta(minutes=5))
    _, paused, resumed = control.collect_events()
    assert isinstance(paused, QueueControl.Paused)
    assert (paused.queue, paused.by, paused.reason, paused.at) == (
        "default",
        "alice",
        "deploying",
        T0,
    )
    assert isinstance(resumed, QueueControl.Resumed)
    assert (resumed.queue, resumed.by) == ("default", "bob")
    assert not control.is_paused("default")


def test_maintenance_pause_is_independent_of_queue_pauses():
    control = QueueControl.open(at=T0)
    control.pause(queue="low", by="ops", reason="", at=T0)
    control.pause(queue=None, by="ops", reason="db upgrade", at=T0)
    assert control.is_paused(None)
    assert control.is_paused("low")
    control.resume(queue=None, by="ops", at=T0)
    assert not control.is_paused(None)
    assert control.is_paused("low")  # lifting maintenance does not resume a paused queue


def test_unknown_queue_is_a_validation_error():
    control = QueueControl.open(at=T0)
    with pytest.raises(ValidationError) as info:
        control.pause(queue="urgent", by="ops", reason="", at=T0)
    assert info.value.field == "queue"
    with pytest.raises(ValidationError):
        control.resume(queue="urgent", by="ops", at=T0)


@pytest.mark.parametrize("queue", ["default", None])
def test_pausing_twice_or_resuming_a_running_queue_is_refused(queue: str | None):
    control = QueueControl.open(at=T0)
    with pytest.raises(InvalidTransitionError, match="not paused"):
        control.resume(queue=queue, by="ops", at=T0)
    control.pause(queue=queue, by="ops", reason="", at=T0)
    with pytest.raises(InvalidTransitionError, match="already paused"):
        control.pause(queue=queue, by="ops", reason="", at=T0)
    assert len(control.collect_events()) == 2  # opened, paused: refusals record nothing


def test_reason_length_and_naive_times_are_refused():
    control = QueueControl.open(at=T0)
    with pytest.raises(ValidationError) as info:
        control.pause(queue="high", by="ops", reason="x" * 501, at=T0)
    assert info.value.field == "reason"
    with pytest.raises(ValidationError):
        control.pause(queue="high", by="ops", reason="", at=datetime(2026, 3, 1))  # noqa: DTZ001


def pause(tenant: str, queue: str | None) -> QueuePause:
    return QueuePause(tenant, queue, "ops", "", T0)


def test_a_queue_is_skipped_when_every_tenant_waiting_in_it_paused_it():
    paused = paused_queues(
        [pause("default", "default"), pause("acme", "default")],
        [("default", "default"), ("acme", "default"), ("acme", "high")],
        QUEUES,
    )
    assert paused.skipped == {"default"}
    assert paused.is_paused("acme", "default")
    assert not paused.is_paused("acme", "high")


def test_another_tenants_waiting_jobs_keep_the_queue_consumed():
    paused = paused_queues(
        [pause("acme", "default")], [("acme", "default"), ("default", "default")], QUEUES
    )
    # The worker keeps taking from `default`; the executor defers acme's jobs only.
    assert paused.skipped == frozenset()
    assert paused.is_paused("acme", "default")
    assert not paused.is_paused("default", "default")


def test_maintenance_pause_holds_every_queue_of_its_tenant():
    paused = paused_queues([pause("default", None)], [("default", "low")], QUEUES)
    assert paused.skipped == set(QUEUES)
    assert all(paused.is_paused("default", q) for q in QUEUES)
    assert not paused.is_paused("acme", "low")


def test_nothing_paused_skips_nothing():
    paused = paused_queues([], [("default", "default")], QUEUES)
    assert paused.skipped == frozenset()
    assert not paused.is_paused("default", "default")
