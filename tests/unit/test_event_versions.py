"""Stored events of older class versions still load: upcasters fill what they lacked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from application.event_log import ChronicleEvents
from domain.job import Job


def test_retried_version_1_is_upcast_with_an_unknown_previous_attempt():
    events = ChronicleEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()},
        "queue": "default",
        "by": "ops",
        "attempt_limit": 6,
        "at": {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()},
    }
    stored = StoredEvent(
        originator_id=uuid4(),
        originator_version=5,
        topic="domain.job:Job.Retried",
        state=json.dumps(state).encode(),
    )
    event = events.mapper.to_domain_event(stored)
    assert isinstance(event, Job.Retried)
    assert event.previous_attempts == -1
    assert event.by == "ops"
