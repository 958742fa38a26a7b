"""Idempotency keys: a dispatch or batch sent again with its key is answered, not repeated."""

from __future__ import annotations

import threading
from datetime import timedelta
from uuid import UUID

import pytest

from application.batches import BatchRequest, BatchService
from application.jobs import DispatchRequest, JobService
from domain.job import Job
from domain.shared import ValidationError
from tests.unit.fakes import FakeClock, demo_registry, memory_events


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        registry = demo_registry()
        self.clock = FakeClock()
        self.jobs = JobService(
            self.events, registry, self.clock, idempotency_retention=timedelta(hours=24)
        )

    def jobs_saved(self) -> int:
        return sum(
            1
            for n in self.events.recorder.select_notifications(start=1, limit=10_000)
            if n.topic.endswith("Job.Dispatched")
        )


@pytest.fixture
def world() -> World:
    return World()


ECHO = DispatchRequest(command_line="demo:echo hi", requested_by="api")


def test_the_same_key_and_request_return_the_first_job(world: World) -> None:
    first = world.jobs.dispatch_once([ECHO], idempotency_key="order-42")
    again = world.jobs.dispatch_once([ECHO], idempotency_key="order-42")
    assert first.created
    assert not again.created
    assert again.ids == first.ids
    assert world.jobs_saved() == 1
    # Another key (or another tenant's same key) is another request.
    other = world.jobs.dispatch_once([ECHO], idempotency_key="order-43")
    acme = world.jobs.dispatch_once(
        [DispatchRequest(command_line="demo:echo hi", tenant="acme")], idempotency_key="order-42"
    )
    assert other.created
    assert acme.created
    assert len({first.ids[0], other.ids[0], acme.ids[0]}) == 3


def test_a_key_sent_with_another_request_is_refused(world: World) -> None:
    world.jobs.dispatch_once([ECHO], idempotency_key="k")
    with pytest.raises(ValidationError, match="different request") as raised:
        world.jobs.dispatch_once(
            [DispatchRequest(command_line="demo:echo bye")], idempotency_key="k"
        )
    assert raised.value.field == "idempotency_key"
    assert world.jobs_saved() == 1


def test_a_key_past_its_retention_starts_a_new_job(world: World) -> None:
    first = world.jobs.dispatch_once([ECHO], idempotency_key="daily")
    world.clock.advance(24 * 3600)
    later = world.jobs.dispatch_once(
        [DispatchRequest(command_line="demo:echo tomorrow")], idempotency_key="daily"
    )
    assert later.created
    assert later.ids != first.ids
    assert (
        world.jobs.dispatch_once(
            [DispatchRequest(command_line="demo:echo tomorrow")], idempotency_key="daily"
        ).ids
        == later.ids
    )


def test_concurrent_requests_with_one_key_create_one_job(world: World) -> None:
    barrier = threading.Barrier(8)
    answers: list[list[UUID]] = []

    def send() -> None:
        barrier.wait()
        answers.append(world.jobs.dispatch_once([ECHO], idempotency_key="race").ids)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({tuple(a) for a in answers}) == 1
    assert world.jobs_saved() == 1
    job: Job = world.events.repository.get(answers[0][0])
    assert job.command_line == "demo:echo hi"


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "é"])
def test_malformed_keys_are_refused(world: World, key: str) -> None:
    with pytest.raises(ValidationError, match="printable ASCII"):
        world.jobs.dispatch_once([ECHO], idempotency_key=key)


def test_dispatch_many_and_batches_take_a_key(world: World) -> None:
    requests = [ECHO, DispatchRequest(command_line="demo:noop")]
    ids = world.jobs.dispatch_many(requests, idempotency_key="many")
    assert world.jobs.dispatch_many(requests, idempotency_key="many") == ids
    assert world.jobs_saved() == 2

    class NoQueries:
        pass

    batches = BatchService(world.events, world.jobs, world.clock, NoQueries())  # type: ignore[arg-type]
    request = BatchRequest(name="nightly", jobs=requests, tenant="default", by="api")
    batch_id = batches.create(request, idempotency_key="batch-1")
    assert batches.create(request, idempotency_key="batch-1") == batch_id
    assert world.jobs_saved() == 4
    # A key is bound to what it made: the jobs' key cannot answer for a batch.
    with pytest.raises(ValidationError, match="different request"):
        batches.create(request, idempotency_key="many")
