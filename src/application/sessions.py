"""Signed-in sessions (the dashboard's) and the brake on repeated failed sign-ins.

A session id is 32 random bytes, sent to the browser once in a cookie; the store keeps only
its SHA-256, so a copy of the database signs nobody in. The CSRF token of a session derives
from its id, so it needs no storage and nobody without the cookie can compute it.

A session lasts while it is used: it ends `idle` after its last request (30 minutes by
default) and in any case `lifetime` after it began (12 hours), when its account is disabled
or when the account's password changes.

Failed sign-ins are counted per account name and per client address in the database, so
every API process sees the same counts. After `ACCOUNT_FREE_FAILURES` failures for a name
(`ADDRESS_FREE_FAILURES` for an address) each further failure locks it out for twice as long
as the one before (1 s, 2 s, 4 s ... at most 15 minutes): sign-ins are refused with the time to
wait, without checking the password. A count is forgotten an hour after its last failure; a
successful sign-in clears its name's count (not its address's, or one good account would let
its owner guess others' passwords without limit).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from application.ports import Clock
from application.principals import Authenticator
from domain.principals import Principal
from domain.shared import DomainError

log = structlog.get_logger("chronicle.sessions")

DEFAULT_IDLE = timedelta(minutes=30)
DEFAULT_LIFETIME = timedelta(hours=12)
#: A session's last use is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=30)

ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20
FIRST_LOCK = timedelta(seconds=1)
LONGEST_LOCK = timedelta(minutes=15)
FAILURES_FORGOTTEN_AFTER = timedelta(hours=1)
SESSION_ID_BYTES = 32


class SignInRefusedError(DomainError):
    """No account with this name and password, or the account is disabled (which one is
    not said)."""


class TooManySignInsError(DomainError):
    """Too many failed sign-ins for this name or address: try again in `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins: try again in {retry_after} s",
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class SessionRecord:
    """A session as stored: `key` is the SHA-256 of its id, never the id."""

    key: str
    account: str
    stamp: str
    created_at: datetime
    last_seen: datetime


class SessionStore(Protocol):
    def add(self, record: SessionRecord) -> None: ...
    def get(self, key: str) -> SessionRecord | None: ...
    def touch(self, key: str, at: datetime) -> None: ...
    def remove(self, key: str) -> None: ...
    def remove_ended(self, idle_since: datetime, started_before: datetime) -> int:
        """Removes the sessions last used before `idle_since` or begun before
        `started_before`; returns how many."""
        ...


class FailureCounts(Protocol):
    """Failed sign-ins by key (`account:ada`, `address:10.0.0.7`)."""

    def locked_until(self, keys: list[str]) -> datetime | None:
        """The latest lock of any of `keys` (None: none is locked)."""
        ...

    def record(self, key: str, at: datetime, forget_before: datetime) -> int:
        """Counts a failure of `key` at `at`, after forgetting its count if its last failure
        was before `forget_before`; returns the count."""
        ...

    def lock(self, key: str, until: datetime) -> None: ...

    def clear(self, key: str) -> None: ...


def lock_for(failures: int, free: int) -> timedelta | None:
    """How long `failures` failures lock a key that may fail `free` times for nothing."""
    if failures <= free:
        return None
    return min(FIRST_LOCK * (1 << min(failures - free - 1, 20)), LONGEST_LOCK)


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: sent back by the page with every unsafe request."""
    return hashlib.sha256(f"csrf:{session_id}".encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """A session just begun: `session_id` goes in the cookie, `csrf_token` to the page."""

    session_id: str
    csrf_token: str
    principal: Principal
    idle_expiry: timedelta


class Sessions:
    """Signs accounts in and out and tells the principal of a session."""

    def __init__(
        self,
        authenticator: Authenticator,
        store: SessionStore,
        failures: FailureCounts,
        clock: Clock,
        *,
        idle: timedelta = DEFAULT_IDLE,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self._authenticator = authenticator
        self._store = store
        self._failures = failures
        self._clock = clock
        self.idle = idle
        self.lifetime = lifetime

    def sign_in(self, username: str, password: str, address: str) -> SignedIn:
        """A new session for the account, or TooManySignInsError / SignInRefusedError."""
        now = self._clock.now()
        name = username.strip().lower()[:64]
        keys = [f"account:{name}", f"address:{address}"]
        locked = self._failures.locked_until(keys)
        if locked is not None and locked > now:
            wait = max(1, math.ceil((locked - now).total_seconds()))
            log.warning("sign-in refused: locked out", account=name, address=address, wait=wait)
            raise TooManySignInsError(wait)
        principal = self._authenticator.password(username, password)
        if principal is None:
            self._failed(keys, now)
            raise SignInRefusedError("wrong name or password, or the account is disabled")
        self._failures.clear(keys[0])
        stamp = self._authenticator.stamp(principal.name)
        if stamp is None:  # pragma: no cover - the account was just read
            raise SignInRefusedError("wrong name or password, or the account is disabled")
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        self._store.remove_ended(now - self.idle, now - self.lifetime)
        self._store.add(
            SessionRecord(
                key=session_key(session_id),
                account=principal.name,
                stamp=stamp,
                created_at=now,
                last_seen=now,
            )
        )
        log.info("signed in", account=principal.name, address=address)
        return SignedIn(session_id, csrf_token(session_id), principal, self.idle)

    def _failed(self, keys: list[str], now: datetime) -> None:
        forget_before = now - FAILURES_FORGOTTEN_AFTER
        for key, free in zip(keys, (ACCOUNT_FREE_FAILURES, ADDRESS_FREE_FAILURES), strict=True):
            count = self._failures.record(key, now, forget_before)
            lock = lock_for(count, free)
            if lock is not None:
                self._failures.lock(key, now + lock)
            log.warning(
                "sign-in failed",
                key=key,
                failures=count,
                locked_for=lock.total_seconds() if lock else None,
            )

    def principal(self, session_id: str) -> Principal | None:
        """The principal of a live session; None for an unknown, ended or idle one, or one
        whose account is disabled or has changed its password since."""
        record = self._store.get(session_key(session_id))
        if record is None:
            return None
        now = self._clock.now()
        if now - record.last_seen >= self.idle or now - record.created_at >= self.lifetime:
            self._store.remove(record.key)
            return None
        principal = self._authenticator.account(record.account, stamp=record.stamp)
        if principal is None:
            # Ended for good: enabling the account again does not bring the session back.
            self._store.remove(record.key)
            return None
        if now - record.last_seen >= TOUCH_EVERY:
            self._store.touch(record.key, now)
        return principal

    def sign_out(self, session_id: str) -> None:
        self._store.remove(session_key(session_id))
