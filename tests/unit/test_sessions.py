"""Signed-in sessions and the brake on failed sign-ins, on in-memory stores, a fake clock and
a fast fake password hash."""

# ruff: noqa: S105 - the passwords of tests are throwaway

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from application.principals import FRESH_FOR, AccountService, Authenticator, password_stamp
from application.sessions import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    FAILURES_FORGOTTEN_AFTER,
    LONGEST_LOCK,
    TOUCH_EVERY,
    SessionRecord,
    Sessions,
    SignInRefusedError,
    TooManySignInsError,
    csrf_token,
    lock_for,
    session_key,
)
from domain.principals import Principal, PrincipalKind, Role
from tests.unit.fakes import FakeClock, memory_events
from tests.unit.test_principals import FastHasher

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
WRONG = "not the password!"
ADDRESS = "10.0.0.7"
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)


class MemorySessionStore:
    """SessionStore in memory, with the SQL store's rules (`touch` only moves forward)."""

    def __init__(self) -> None:
        self.records: dict[str, SessionRecord] = {}
        self.touches: list[tuple[str, datetime]] = []

    def add(self, record: SessionRecord) -> None:
        assert record.key not in self.records
        self.records[record.key] = record

    def get(self, key: str) -> SessionRecord | None:
        return self.records.get(key)

    def touch(self, key: str, at: datetime) -> None:
        self.touches.append((key, at))
        record = self.records.get(key)
        if record is not None and record.last_seen < at:
            self.records[key] = dataclasses.replace(record, last_seen=at)

    def remove(self, key: str) -> None:
        self.records.pop(key, None)

    def remove_ended(self, idle_since: datetime, started_before: datetime) -> int:
        ended = [
            k
            for k, r in self.records.items()
            if r.last_seen < idle_since or r.created_at < started_before
        ]
        for key in ended:
            del self.records[key]
        return len(ended)


@dataclasses.dataclass
class FailureRow:
    failures: int
    last_at: datetime
    locked_until: datetime | None = None


class MemoryFailureCounts:
    """FailureCounts in memory, with the SQL store's rules."""

    def __init__(self) -> None:
        self.rows: dict[str, FailureRow] = {}

    def count(self, key: str) -> int:
        row = self.rows.get(key)
        return row.failures if row else 0

    def locked_until(self, keys: list[str]) -> datetime | None:
        locks = [
            row.locked_until
            for key in keys
            if (row := self.rows.get(key)) is not None and row.locked_until is not None
        ]
        return max(locks, default=None)

    def record(self, key: str, at: datetime, forget_before: datetime) -> int:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = FailureRow(1, at)
        elif row.last_at < forget_before:
            row.failures, row.last_at, row.locked_until = 1, at, None
        else:
            row.failures, row.last_at = row.failures + 1, at
        return row.failures

    def lock(self, key: str, until: datetime) -> None:
        if key in self.rows:
            self.rows[key].locked_until = until

    def clear(self, key: str) -> None:
        self.rows.pop(key, None)


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        self.clock = FakeClock(T0)
        self.hasher = FastHasher()
        self.accounts = AccountService(self.events, self.clock, self.hasher)
        self.auth = Authenticator(self.events, self.hasher, self.clock)
        self.store = MemorySessionStore()
        self.failures = MemoryFailureCounts()
        self.sessions = Sessions(
            self.auth, self.store, self.failures, self.clock, idle=IDLE, lifetime=LIFETIME
        )
        self.accounts.create(
            name="ada", password=PASSWORD, role=Role.OPERATOR, tenant="acme", by="cli:root"
        )

    def refused(self, name: str = "ada", password: str = WRONG, address: str = ADDRESS) -> None:
        with pytest.raises(SignInRefusedError, match="wrong name or password"):
            self.sessions.sign_in(name, password, address)

    def locked(self, name: str = "ada", password: str = WRONG, address: str = ADDRESS) -> int:
        before = self.hasher.verified
        with pytest.raises(TooManySignInsError) as raised:
            self.sessions.sign_in(name, password, address)
        assert self.hasher.verified == before  # no password was checked
        assert str(raised.value.retry_after) in str(raised.value)
        return raised.value.retry_after


@pytest.fixture
def world() -> World:
    return World()


ADA = Principal(PrincipalKind.USER, "ada", Role.OPERATOR, "acme")


# -- signing in ----------------------------------------------------------------------------------


def test_signing_in_gives_a_session_of_the_account(world):
    signed_in = world.sessions.sign_in(" Ada ", PASSWORD, ADDRESS)
    assert signed_in.principal == ADA
    assert signed_in.idle_expiry == IDLE
    assert signed_in.csrf_token == csrf_token(signed_in.session_id)
    assert world.sessions.principal(signed_in.session_id) == ADA
    [record] = world.store.records.values()
    assert record.key == session_key(signed_in.session_id)
    assert (record.account, record.created_at, record.last_seen) == ("ada", T0, T0)
    assert record.stamp == password_stamp(world.accounts.get("ada").password_hash)
    assert world.failures.rows == {}


def test_an_unknown_session_has_no_principal(world):
    assert world.sessions.principal("") is None
    assert world.sessions.principal("no such session") is None


@pytest.mark.parametrize("case", ["wrong password", "unknown name", "disabled", "bad name"])
def test_refused_sign_ins_are_counted_per_name_and_address(world, case):
    name, password = "ada", PASSWORD
    if case == "wrong password":
        password = WRONG
    elif case == "unknown name":
        name = "bob"
    elif case == "disabled":
        world.accounts.disable("ada", by="cli:root")
    else:
        name = "Not A Name!"
    world.refused(name, password)
    key = name.strip().lower()
    assert world.failures.count(f"account:{key}") == 1
    assert world.failures.count(f"address:{ADDRESS}") == 1
    assert world.failures.locked_until([f"account:{key}", f"address:{ADDRESS}"]) is None
    assert world.store.records == {}


def test_the_sixth_failure_locks_the_name_for_doubling_times_up_to_15_minutes(world):
    # Each attempt from another address: only the name's count matters here.
    addresses = (f"10.0.1.{n}" for n in range(100))
    for _ in range(ACCOUNT_FREE_FAILURES):
        world.refused(address=next(addresses))
    assert world.failures.locked_until(["account:ada"]) is None
    world.refused(address=next(addresses))  # the 6th: refused, and locks for 1 s
    waits = []
    for _ in range(14):
        wait = world.locked(address=next(addresses))
        waits.append(wait)
        world.clock.advance(wait)
        world.refused(address=next(addresses))
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]
    assert world.failures.count("account:ada") == ACCOUNT_FREE_FAILURES + 15
    # The name is locked whatever its spelling, and from any address.
    assert world.locked(" ADA ", address="192.0.2.1") == 900


def test_while_locked_even_the_right_password_is_refused_unchecked_and_uncounted(world):
    for _ in range(ACCOUNT_FREE_FAILURES + 1):
        world.refused()
    assert world.locked("ada", PASSWORD) == 1
    assert world.failures.count("account:ada") == ACCOUNT_FREE_FAILURES + 1
    assert world.failures.count(f"address:{ADDRESS}") == ACCOUNT_FREE_FAILURES + 1
    world.clock.advance(0.5)
    assert world.locked("ada", PASSWORD) == 1  # 0.5 s left: rounded up
    world.clock.advance(0.5)  # the lock ends at exactly its time
    assert world.sessions.sign_in("ada", PASSWORD, ADDRESS).principal == ADA
    assert world.failures.count("account:ada") == 0


def test_retry_after_rounds_the_time_left_up(world):
    for _ in range(ACCOUNT_FREE_FAILURES + 1):
        world.refused()
    world.clock.advance(1)
    world.refused()  # the 7th: 2 s
    world.clock.advance(0.25)
    assert world.locked() == 2
    world.clock.advance(1)
    assert world.locked() == 1


def test_an_address_is_locked_only_after_20_failures_across_names(world):
    for n in range(ADDRESS_FREE_FAILURES):
        world.refused(f"user{n}")
    assert world.failures.count(f"address:{ADDRESS}") == ADDRESS_FREE_FAILURES
    assert world.failures.locked_until([f"address:{ADDRESS}"]) is None
    world.refused("user-last")  # the 21st from this address
    assert world.locked("ada", PASSWORD) == 1  # any name, from this address
    assert world.sessions.sign_in("ada", PASSWORD, "10.0.0.8").principal == ADA
    world.clock.advance(1)
    world.refused("user-more")  # the 22nd: 2 s
    assert world.locked("someone") == 2
    world.clock.advance(2)
    assert world.sessions.sign_in("ada", PASSWORD, ADDRESS).principal == ADA


def test_the_longer_lock_of_name_and_address_counts(world):
    for n in range(ADDRESS_FREE_FAILURES + 3):  # address: 23 failures, locked 4 s
        if n > ADDRESS_FREE_FAILURES:
            world.clock.advance(world.locked(f"user{n}"))
        world.refused(f"user{n}")
    for _ in range(ACCOUNT_FREE_FAILURES + 1):  # ada: 6 failures from elsewhere, locked 1 s
        world.refused(address="10.0.0.8")
    assert world.locked("ada") == 4
    assert world.locked("ada", address="10.0.0.8") == 1


def test_success_clears_the_names_count_but_not_the_addresss(world):
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        world.refused()
    world.sessions.sign_in("ada", PASSWORD, ADDRESS)
    assert world.failures.count("account:ada") == 0
    assert world.failures.count(f"address:{ADDRESS}") == ACCOUNT_FREE_FAILURES - 1
    for _ in range(ACCOUNT_FREE_FAILURES):  # five free failures again
        world.refused()
    assert world.failures.locked_until(["account:ada"]) is None
    assert world.failures.count(f"address:{ADDRESS}") == 2 * ACCOUNT_FREE_FAILURES - 1
    world.refused()
    assert world.locked() == 1


def test_failures_are_forgotten_an_hour_after_the_last(world):
    for _ in range(ACCOUNT_FREE_FAILURES):
        world.refused()
    world.clock.advance(FAILURES_FORGOTTEN_AFTER.total_seconds() - 1)
    world.refused()  # within the hour: the 6th, locked
    assert world.locked() == 1
    world.clock.advance(FAILURES_FORGOTTEN_AFTER.total_seconds() + 1)  # an hour after the last
    world.refused()
    assert world.failures.count("account:ada") == 1
    assert world.failures.count(f"address:{ADDRESS}") == 1
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        world.refused()
    assert world.failures.locked_until(["account:ada", f"address:{ADDRESS}"]) is None


def test_a_forgotten_count_drops_its_lock_too(world):
    for _ in range(ACCOUNT_FREE_FAILURES + 10):  # locked for 512 s at the end
        world.refused()
        world.clock.advance(1000)
    world.clock.advance(FAILURES_FORGOTTEN_AFTER.total_seconds())
    world.refused()
    assert world.failures.count("account:ada") == 1
    assert world.failures.locked_until(["account:ada"]) is None


# -- sessions ------------------------------------------------------------------------------------


def test_a_session_in_use_lives_on_and_one_idle_for_idle_ends(world):
    session = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    for _ in range(5):  # used every 29:59: lives on (its last use is written)
        world.clock.advance(IDLE.total_seconds() - 1)
        assert world.sessions.principal(session) == ADA
    world.clock.advance(IDLE.total_seconds())
    assert world.sessions.principal(session) is None
    assert world.store.records == {}  # the ended session is removed
    world.clock.advance(-IDLE.total_seconds())
    assert world.sessions.principal(session) is None


def test_a_sessions_last_use_is_written_at_most_every_30_seconds(world):
    session = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    key = session_key(session)
    for _ in range(10):
        world.clock.advance(TOUCH_EVERY.total_seconds() / 10)
        assert world.sessions.principal(session) == ADA
    assert world.store.touches == [(key, T0 + TOUCH_EVERY)]
    assert world.store.records[key].last_seen == T0 + TOUCH_EVERY


def test_a_session_ends_at_its_lifetime_however_much_it_is_used(world):
    session = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    step = timedelta(minutes=10)
    while world.clock.now() + step < T0 + LIFETIME:
        world.clock.advance(step.total_seconds())
        assert world.sessions.principal(session) == ADA
    world.clock.current = T0 + LIFETIME - timedelta(seconds=1)
    assert world.sessions.principal(session) == ADA
    world.clock.advance(1)
    assert world.sessions.principal(session) is None
    assert world.store.records == {}


def test_signing_out_ends_the_session_only(world):
    first = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    second = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    world.sessions.sign_out(first)
    assert world.sessions.principal(first) is None
    assert world.sessions.principal(second) == ADA
    world.sessions.sign_out(first)  # again: nothing to do
    world.sessions.sign_out("never was")
    assert list(world.store.records) == [session_key(second)]


def test_signing_in_removes_ended_sessions(world):
    old = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    world.clock.advance(IDLE.total_seconds() + 1)
    new = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    assert session_key(old) not in world.store.records
    assert session_key(new) in world.store.records
    assert world.sessions.principal(old) is None


def test_a_disabled_accounts_session_is_refused_after_fresh_for(world):
    session = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    world.accounts.disable("ada", by="cli:root")
    assert world.sessions.principal(session) == ADA  # what was read is trusted ...
    world.clock.advance(FRESH_FOR.total_seconds())
    assert world.sessions.principal(session) is None  # ... for fresh_for only
    world.clock.advance(60)
    assert world.sessions.principal(session) is None
    world.refused("ada", PASSWORD)


def test_a_session_opened_before_a_password_change_is_refused_after_fresh_for(world):
    session = world.sessions.sign_in("ada", PASSWORD, ADDRESS).session_id
    world.accounts.change_password("ada", "a brand new password", by="user:ada")
    world.clock.advance(FRESH_FOR.total_seconds())
    assert world.sessions.principal(session) is None
    world.refused("ada", PASSWORD)
    fresh = world.sessions.sign_in("ada", "a brand new password", ADDRESS).session_id
    assert world.sessions.principal(fresh) == ADA
    world.clock.advance(FRESH_FOR.total_seconds())
    assert world.sessions.principal(session) is None
    assert world.sessions.principal(fresh) == ADA


def test_the_session_id_is_never_stored(world):
    signed_in = [world.sessions.sign_in("ada", PASSWORD, ADDRESS) for _ in range(3)]
    ids = [s.session_id for s in signed_in]
    assert len(set(ids)) == 3
    assert all(len(i) >= 43 for i in ids)  # 32 random bytes, base64url
    assert set(world.store.records) == {session_key(i) for i in ids}
    for record in world.store.records.values():
        stored = repr(dataclasses.astuple(record))
        assert not any(i in stored for i in ids)
    assert all(session_key(i) != i for i in ids)
    assert len(session_key(ids[0])) == 64


def test_the_csrf_token_differs_per_session_and_is_not_the_session_id(world):
    signed_in = [world.sessions.sign_in("ada", PASSWORD, ADDRESS) for _ in range(3)]
    tokens = {s.csrf_token for s in signed_in}
    assert len(tokens) == 3
    for s in signed_in:
        assert s.csrf_token == csrf_token(s.session_id)
        assert s.csrf_token not in (s.session_id, session_key(s.session_id))
        assert s.session_id not in s.csrf_token


@pytest.mark.parametrize(
    ("failures", "free", "lock"),
    [
        (0, 5, None),
        (5, 5, None),
        (6, 5, 1),
        (7, 5, 2),
        (8, 5, 4),
        (14, 5, 256),
        (15, 5, 512),
        (16, 5, 900),
        (1_000, 5, 900),
        (10**9, 5, 900),
        (20, 20, None),
        (21, 20, 1),
        (22, 20, 2),
        (1, 0, 1),
    ],
)
def test_lock_for(failures, free, lock):
    expected = None if lock is None else timedelta(seconds=lock)
    assert lock_for(failures, free) == expected
    assert lock is None or expected <= LONGEST_LOCK
