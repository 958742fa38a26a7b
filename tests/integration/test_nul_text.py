"""A NUL character in a job's text never stops a read model (PostgreSQL text cannot hold it)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.job import Job
from interfaces.bootstrap import Chronicle

pytestmark = pytest.mark.integration


def test_text_with_nul_is_projected_with_a_replacement_character(chronicle: Chronicle) -> None:
    now = chronicle.clock.now()
    # Saved from code, bypassing every input check: the read models must still follow.
    job = Job.dispatch(
        job_id=uuid4(),
        command="demo:echo",
        command_line="demo:echo 'a\x00b'",
        arguments={"message": "a\x00b"},
        options={},
        at=now,
    )
    job.start(worker_id="w", at=now)
    job.succeed(result="r\x00", output="out\x00put\n", duration_ms=1.0, at=now)
    chronicle.events.save(job)
    for runner in chronicle.projection_runners():
        runner.catch_up()
    row = chronicle.queries.get("default", job.id)
    assert row is not None
    # PostgreSQL gets U+FFFD for the NUL; SQLite can keep it.
    assert row.command_line in {"demo:echo 'a\ufffdb'", "demo:echo 'a\x00b'"}
    assert row.output == "out\ufffdput\n"
    assert row.status == "succeeded"
