"""Sessions and failed sign-in counts in the read-model database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from application.sessions import SessionRecord
from domain.principals import Role
from infrastructure.sessions import SqlFailureCounts, SqlSessions
from interfaces.bootstrap import Chronicle

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"  # noqa: S105 - a test's throwaway password
HOUR = timedelta(hours=1)


@pytest.fixture
def sessions(chronicle: Chronicle) -> SqlSessions:
    return SqlSessions(chronicle.db)


@pytest.fixture
def failures(chronicle: Chronicle) -> SqlFailureCounts:
    return SqlFailureCounts(chronicle.db)


def record(
    key: str, *, created_at: datetime = T0, last_seen: datetime | None = None
) -> SessionRecord:
    return SessionRecord(
        key=key,
        account="ada",
        stamp="s" * 32,
        created_at=created_at,
        last_seen=last_seen or created_at,
    )


def test_sessions_are_added_read_and_removed(sessions):
    assert sessions.get("k1") is None
    added = record("k1", created_at=T0 + timedelta(microseconds=250))
    sessions.add(added)
    got = sessions.get("k1")
    assert got == added
    assert got is not None
    assert got.created_at.tzinfo is not None
    assert got.last_seen.utcoffset() == timedelta(0)
    sessions.remove("k1")
    assert sessions.get("k1") is None
    sessions.remove("k1")  # gone already: nothing to do


def test_a_key_is_added_once(sessions):
    sessions.add(record("k1"))
    with pytest.raises(Exception):  # noqa: B017 - the backend's integrity error
        sessions.add(record("k1"))


def test_touch_only_moves_the_last_use_forward(sessions):
    sessions.add(record("k1"))
    sessions.touch("k1", T0 + timedelta(seconds=30))
    assert sessions.get("k1").last_seen == T0 + timedelta(seconds=30)
    sessions.touch("k1", T0 + timedelta(seconds=10))  # a slower process, later
    assert sessions.get("k1").last_seen == T0 + timedelta(seconds=30)
    sessions.touch("k1", T0 + timedelta(seconds=30, microseconds=1))
    assert sessions.get("k1").last_seen == T0 + timedelta(seconds=30, microseconds=1)
    sessions.touch("nope", T0 + HOUR)
    assert sessions.get("nope") is None
    assert sessions.get("k1").created_at == T0


def test_touch_compares_instants_not_the_spelling_of_a_time_zone(sessions):
    sessions.add(record("k1"))
    paris = timezone(timedelta(hours=1))
    sessions.touch("k1", datetime(2026, 3, 1, 10, 0, 5, tzinfo=paris))  # T0 + 5 s
    assert sessions.get("k1").last_seen == T0 + timedelta(seconds=5)


def test_remove_ended_removes_idle_and_old_sessions(sessions):
    sessions.add(record("fresh", created_at=T0 + HOUR))
    sessions.add(record("idle", created_at=T0 + HOUR, last_seen=T0 + HOUR))
    sessions.add(record("used", created_at=T0, last_seen=T0 + 2 * HOUR))
    sessions.add(record("old", created_at=T0 - HOUR, last_seen=T0 + 2 * HOUR))
    sessions.touch("fresh", T0 + 2 * HOUR)
    removed = sessions.remove_ended(idle_since=T0 + 90 * timedelta(minutes=1), started_before=T0)
    assert removed == 2
    assert sessions.get("idle") is None
    assert sessions.get("old") is None
    assert sessions.get("fresh") is not None
    assert sessions.get("used") is not None
    # At exactly the limits a session is kept (strictly before: removed).
    assert sessions.remove_ended(idle_since=T0 + 2 * HOUR, started_before=T0) == 0
    assert sessions.remove_ended(idle_since=T0, started_before=T0 + 30 * timedelta(minutes=1)) == 1
    assert sessions.get("used") is None
    assert sessions.remove_ended(idle_since=T0, started_before=T0) == 0


def test_failures_are_counted_per_key_and_forgotten(failures):
    assert failures.record("account:ada", T0, T0 - HOUR) == 1
    assert failures.record("account:ada", T0 + timedelta(seconds=1), T0 - HOUR) == 2
    assert failures.record("address:10.0.0.7", T0, T0 - HOUR) == 1
    # Forgotten only when the last failure is strictly before `forget_before`.
    at = T0 + timedelta(seconds=1) + HOUR
    assert failures.record("account:ada", at, at - HOUR) == 3
    later = at + HOUR + timedelta(microseconds=1)
    assert failures.record("account:ada", later, later - HOUR) == 1
    assert failures.record("account:ada", later, later - HOUR) == 2
    assert failures.record("address:10.0.0.7", later, later - HOUR) == 1


def test_locks_are_the_latest_of_the_keys_and_timezone_aware(failures):
    assert failures.locked_until([]) is None
    assert failures.locked_until(["account:ada"]) is None
    failures.record("account:ada", T0, T0 - HOUR)
    failures.record("address:10.0.0.7", T0, T0 - HOUR)
    assert failures.locked_until(["account:ada", "address:10.0.0.7"]) is None  # counted only
    failures.lock("account:ada", T0 + timedelta(seconds=4))
    failures.lock("address:10.0.0.7", T0 + timedelta(seconds=16, microseconds=5))
    failures.lock("account:nobody", T0 + HOUR)  # no row: nothing to lock
    both = failures.locked_until(["account:ada", "address:10.0.0.7", "account:nobody"])
    assert both == T0 + timedelta(seconds=16, microseconds=5)
    assert isinstance(both, datetime)
    assert both.tzinfo is not None
    assert both.utcoffset() == timedelta(0)
    one = failures.locked_until(["account:ada"])
    assert one == T0 + timedelta(seconds=4)
    assert one is not None
    assert one.tzinfo is not None
    assert both > one  # comparable with aware datetimes, as Sessions does with now()
    assert failures.locked_until(["account:nobody"]) is None


def test_a_later_lock_replaces_an_earlier_one_and_the_latest_is_found_across_formats(failures):
    for key in ("a", "b"):
        failures.record(key, T0, T0 - HOUR)
    # 10:00:00 and 10:00:00.5 (written without and with microseconds) in another zone.
    paris = timezone(timedelta(hours=2))
    failures.lock("a", datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=paris))
    failures.lock("b", datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
    assert failures.locked_until(["a", "b"]) == datetime(2026, 3, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    failures.lock("b", datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC))
    assert failures.locked_until(["a", "b"]) == datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)


def test_forgetting_a_count_drops_its_lock(failures):
    failures.record("account:ada", T0, T0 - HOUR)
    failures.lock("account:ada", T0 + timedelta(minutes=15))
    at = T0 + timedelta(minutes=30)
    assert failures.record("account:ada", at, at - HOUR) == 2  # remembered: lock kept
    assert failures.locked_until(["account:ada"]) == T0 + timedelta(minutes=15)
    later = at + 2 * HOUR
    assert failures.record("account:ada", later, later - HOUR) == 1
    assert failures.locked_until(["account:ada"]) is None


def test_clear_forgets_one_key(failures):
    for _ in range(3):
        failures.record("account:ada", T0, T0 - HOUR)
        failures.record("address:10.0.0.7", T0, T0 - HOUR)
    failures.lock("account:ada", T0 + HOUR)
    failures.lock("address:10.0.0.7", T0 + timedelta(seconds=1))
    failures.clear("account:ada")
    failures.clear("account:nobody")
    assert failures.locked_until(["account:ada"]) is None
    assert failures.locked_until(["account:ada", "address:10.0.0.7"]) == T0 + timedelta(seconds=1)
    assert failures.record("account:ada", T0, T0 - HOUR) == 1
    assert failures.record("address:10.0.0.7", T0, T0 - HOUR) == 4


def test_the_chronicles_sessions_use_these_tables(chronicle):
    chronicle.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:tests")
    signed_in = chronicle.sessions.sign_in("ada", PASSWORD, "10.0.0.7")
    assert chronicle.sessions.principal(signed_in.session_id) == signed_in.principal
    chronicle.sessions.sign_out(signed_in.session_id)
    assert chronicle.sessions.principal(signed_in.session_id) is None
