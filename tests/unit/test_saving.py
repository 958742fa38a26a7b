"""Saving: a conflict told from a failure, groups saved together else alone, `change` retries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError

from application.event_log import ChronicleEvents
from application.saving import CHANGE_ATTEMPTS, change, collected, save_groups, saved
from domain.job import Job
from domain.shared import ConflictError
from tests.unit.fakes import memory_events

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class CountingSave:
    """The event store's save, counting transactions; fails with an outage when told to."""

    def __init__(self, events: ChronicleEvents) -> None:
        self.events = events
        self.calls: list[int] = []
        self.fail_at: int | None = None

    def __call__(self, *items: Any) -> object:
        self.calls.append(len(items))
        if self.fail_at == len(self.calls):
            raise OperationalError("connection refused")
        return self.events.save(*items)


def new_job(events: ChronicleEvents) -> Job:
    job = Job.dispatch(
        job_id=uuid4(),
        command="demo:noop",
        command_line="demo:noop",
        arguments={},
        options={},
        at=NOW,
    )
    events.save(job)
    return job


def comment(job: Job, text: str = "note") -> Job:
    job.add_comment(comment_id=uuid4(), author="op", text=text, at=NOW)
    return job


def stale_copy(events: ChronicleEvents, job_id: UUID) -> Job:
    """A copy loaded before someone else saved the job: its next save conflicts."""
    copy: Job = events.repository.get(job_id)
    events.save(comment(events.repository.get(job_id), "theirs"))
    return copy


def comments(events: ChronicleEvents, job_id: UUID) -> list[str]:
    return [e.text for e in events.events.get(job_id) if isinstance(e, Job.CommentAdded)]


def version(events: ChronicleEvents, job_id: UUID) -> int:
    job: Job = events.repository.get(job_id)
    return job.version


@pytest.fixture
def events() -> ChronicleEvents:
    return memory_events()


# -- saved ---------------------------------------------------------------------------------


def test_saved_is_true_when_the_save_went_through(events: ChronicleEvents):
    job = new_job(events)
    assert saved(events.save, comment(job)) is True
    assert version(events, job.id) == 2


def test_saved_is_false_when_another_writer_saved_first_and_nothing_is_stored(
    events: ChronicleEvents,
):
    job, other = new_job(events), new_job(events)
    ours = comment(stale_copy(events, job.id))
    assert saved(events.save, ours, comment(other)) is False
    # One transaction: the other job's event was not stored either.
    assert (version(events, job.id), version(events, other.id)) == (2, 1)


def test_saved_recognises_the_conflict_a_save_function_reports():
    def committer_save(*_events: Any) -> None:
        raise ConflictError("another writer saved the same aggregate first")

    assert saved(committer_save) is False


def test_saved_lets_other_errors_through(events: ChronicleEvents):
    save = CountingSave(events)
    save.fail_at = 1
    with pytest.raises(OperationalError):
        saved(save, comment(new_job(events)))


# -- save_groups -----------------------------------------------------------------------------


def test_groups_are_saved_together_in_one_transaction(events: ChronicleEvents):
    jobs = [new_job(events) for _ in range(3)]
    save = CountingSave(events)
    assert save_groups(save, [collected(comment(job)) for job in jobs]) == [True] * 3
    assert save.calls == [3]
    assert [version(events, job.id) for job in jobs] == [2, 2, 2]


def test_on_conflict_each_group_is_saved_alone_and_only_the_loser_is_reported(
    events: ChronicleEvents,
):
    jobs = [new_job(events) for _ in range(4)]
    loser = comment(stale_copy(events, jobs[2].id))
    groups = [collected(comment(job)) for job in jobs[:2]]
    groups += [collected(loser), collected(comment(jobs[3]))]
    save = CountingSave(events)
    heard: list[bool] = []
    assert save_groups(save, groups, settled=heard.append) == [True, True, False, True]
    assert heard == [True, True, False, True]
    # One failed transaction, then one per group; the events collected once were saved.
    assert save.calls == [4, 1, 1, 1, 1]
    assert [version(events, job.id) for job in jobs] == [2, 2, 2, 2]
    assert comments(events, jobs[2].id) == ["theirs"]


def test_a_lone_group_that_conflicts_is_not_saved_again(events: ChronicleEvents):
    job = new_job(events)
    save = CountingSave(events)
    assert save_groups(save, [collected(comment(stale_copy(events, job.id)))]) == [False]
    assert save.calls == [1]


def test_no_groups_no_transaction(events: ChronicleEvents):
    save = CountingSave(events)
    assert save_groups(save, []) == []
    assert save.calls == []


def test_halves_find_a_rare_conflict_in_fewer_transactions(events: ChronicleEvents):
    jobs = [new_job(events) for _ in range(8)]
    loser = comment(stale_copy(events, jobs[5].id))
    groups = [collected(loser if i == 5 else comment(job)) for i, job in enumerate(jobs)]
    save = CountingSave(events)
    results = save_groups(save, groups, halves=True)
    assert results == [i != 5 for i in range(8)]
    # All 8, then halves in order, each split again only while it conflicts: seven
    # transactions rather than nine.
    assert save.calls == [8, 4, 4, 2, 1, 1, 2]
    assert [version(events, job.id) for job in jobs] == [2] * 8


def test_an_outage_while_saving_alone_stops_at_once(events: ChronicleEvents):
    jobs = [new_job(events) for _ in range(3)]
    groups = [collected(comment(stale_copy(events, jobs[0].id)))]
    groups += [collected(comment(job)) for job in jobs[1:]]
    save = CountingSave(events)
    save.fail_at = 3  # together (conflict), first alone (conflict), second alone: outage
    heard: list[bool] = []
    with pytest.raises(OperationalError):
        save_groups(save, groups, settled=heard.append)
    # Only the first group was settled; the caller keeps the others for later.
    assert heard == [False]
    assert len(save.calls) == 3
    assert [version(events, job.id) for job in jobs[1:]] == [1, 1]


# -- change ----------------------------------------------------------------------------------


def test_change_decides_again_on_the_current_state_after_a_conflict(events: ChronicleEvents):
    job = new_job(events)
    loads = [0]

    def load() -> Job:
        loads[0] += 1
        # The first time, someone else saves the job right after we loaded it.
        return stale_copy(events, job.id) if loads[0] == 1 else events.repository.get(job.id)

    changed = change(events, load, comment, f"job {job.id}")
    assert loads[0] == 2
    assert changed.version == 3  # dispatched, their comment, ours
    assert comments(events, job.id) == ["theirs", "note"]


def test_change_gives_up_with_a_conflict_error(events: ChronicleEvents):
    job = new_job(events)
    loads = [0]

    def load() -> Job:
        loads[0] += 1
        return stale_copy(events, job.id)

    with pytest.raises(ConflictError, match=f"job {job.id} is changing too fast"):
        change(events, load, comment, f"job {job.id}")
    assert loads[0] == CHANGE_ATTEMPTS
