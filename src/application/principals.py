"""Accounts, API tokens and telling who presents a credential.

Passwords are hashed with a slow hash (argon2id, behind the `PasswordHasher` port); a token's
secret is ≥ 32 random bytes, so its SHA-256 is enough and lets a lookup cost microseconds.
A token reads `chr_<token id in hex>_<secret>`: the prefix and id are public (a secret
scanner recognises the prefix, the id finds the row), only the secret is secret. Neither a
password nor a secret is ever stored, logged or put in an event: only their hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents
from application.ports import Clock
from application.saving import change, saved
from application.views.principals import PrincipalsQueries, TokenRow
from domain.principals import (
    Account,
    ApiToken,
    Principal,
    PrincipalKind,
    Role,
    TokenName,
    account_id,
    token_name_id,
    validate_name,
)
from domain.shared import ConflictError, NotFoundError, ValidationError

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
TOKEN_PREFIX = "chr"  # noqa: S105 - the public prefix, not a secret
SECRET_BYTES = 32
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{32}})_([A-Za-z0-9_-]{{43,128}})")


class PasswordHasher(Protocol):
    """A slow, salted password hash (argon2id in production, something fast in tests)."""

    def hash(self, password: str) -> str:
        """The encoded hash of `password` (salt and parameters included)."""
        ...

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches; False (never an error) when it does not."""
        ...


def validate_password(password: str) -> str:
    """At least 12 characters, not all blank; at most 1,024 (hashing costs time)."""
    if len(password) < MIN_PASSWORD or not password.strip():
        raise ValidationError(
            f"a password needs at least {MIN_PASSWORD} characters", field="password"
        )
    if len(password) > MAX_PASSWORD:
        raise ValidationError(f"a password has at most {MAX_PASSWORD} characters", field="password")
    return password


def password_stamp(password_hash: str) -> str:
    """A short digest of a password hash: a session keeps it, so changing the password
    ends every session opened with the old one (the hash itself is kept nowhere else)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def secret_hash(secret: str) -> str:
    """The SHA-256 hex digest of a token's secret, as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


class AccountService:
    """Creates and changes accounts; every change records who made it (`by`)."""

    def __init__(self, events: ChronicleEvents, clock: Clock, hasher: PasswordHasher) -> None:
        self._events = events
        self._clock = clock
        self._hasher = hasher

    def create(
        self, *, name: str, password: str, role: Role, tenant: str | None = None, by: str
    ) -> Account:
        """A new enabled account; another of the same name is a `ConflictError`."""
        normalised = validate_name(name, "account name")
        validate_password(password)
        if self._find(normalised) is not None:
            raise ConflictError(f"an account named {normalised!r} already exists")
        account = Account.register(
            name=normalised,
            password_hash=self._hasher.hash(password),
            role=role,
            tenant=tenant,
            by=by,
            at=self._clock.now(),
        )
        if not saved(self._events.save, account):
            raise ConflictError(f"an account named {normalised!r} already exists")
        return account

    def get(self, name: str) -> Account:
        account = self._find(validate_name(name, "account name"))
        if account is None:
            raise NotFoundError(f"no account named {name!r}")
        return account

    def change_role(self, name: str, role: Role, *, by: str) -> Account:
        return self._change(name, lambda a: a.change_role(role, by=by, at=self._clock.now()))

    def disable(self, name: str, *, by: str) -> Account:
        return self._change(name, lambda a: a.disable(by=by, at=self._clock.now()))

    def enable(self, name: str, *, by: str) -> Account:
        return self._change(name, lambda a: a.enable(by=by, at=self._clock.now()))

    def change_password(self, name: str, password: str, *, by: str) -> Account:
        password_hash = self._hasher.hash(validate_password(password))
        return self._change(
            name, lambda a: a.change_password(password_hash, by=by, at=self._clock.now())
        )

    def _change(self, name: str, command: Callable[[Account], object]) -> Account:
        return change(self._events, lambda: self.get(name), command, f"account {name!r}")

    def _find(self, name: str) -> Account | None:
        try:
            account: Account = self._events.repository.get(account_id(name))
        except AggregateNotFoundError:
            return None
        return account


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: `token` is the only time its full string exists."""

    token_id: UUID
    name: str
    role: Role
    tenant: str | None
    expires_at: datetime | None
    token: str


class TokenService:
    """Creates, revokes and lists API tokens."""

    def __init__(self, events: ChronicleEvents, clock: Clock, queries: PrincipalsQueries) -> None:
        self._events = events
        self._clock = clock
        self._queries = queries

    def create(
        self,
        *,
        name: str,
        role: Role,
        tenant: str | None = None,
        expires_in: timedelta | None = None,
        by: str,
    ) -> IssuedToken:
        """A new token; the string returned is shown once and stored only as a hash."""
        normalised = validate_name(name, "token name")
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValidationError("a token's lifetime must be positive", field="expires_in")
        if self._claim(normalised) is not None:
            raise ConflictError(f"a token named {normalised!r} already exists")
        now = self._clock.now()
        token_id = uuid4()
        secret = secrets.token_urlsafe(SECRET_BYTES)
        token, claim = ApiToken.issue(
            id=token_id,
            name=normalised,
            role=role,
            tenant=tenant,
            expires_at=now + expires_in if expires_in is not None else None,
            secret_hash=secret_hash(secret),
            by=by,
            at=now,
        )
        # The claim on the name and the token in one transaction: a racing creation of the
        # same name saves neither.
        if not saved(self._events.save, token, claim):
            raise ConflictError(f"a token named {normalised!r} already exists")
        return IssuedToken(
            token_id=token_id,
            name=normalised,
            role=token.role,
            tenant=token.tenant,
            expires_at=token.expires_at,
            token=f"{TOKEN_PREFIX}_{token_id.hex}_{secret}",
        )

    def get(self, name_or_id: str) -> ApiToken:
        """The token of this id (as printed by `tokens list`) or name."""
        token_id = _as_uuid(name_or_id)
        token = self._load(token_id) if token_id is not None else None
        if token is not None:
            return token
        try:
            name = validate_name(name_or_id, "token name")
        except ValidationError:
            name = None
        claim = self._claim(name) if name is not None else None
        token = self._load(claim.token_id) if claim is not None else None
        if token is None:
            what = "id" if token_id is not None else "name"
            raise NotFoundError(f"no token with {what} {name_or_id!r}")
        return token

    def _load(self, token_id: UUID) -> ApiToken | None:
        try:
            token: object = self._events.repository.get(token_id)
        except AggregateNotFoundError:
            return None
        return token if isinstance(token, ApiToken) else None

    def revoke(self, name_or_id: str, *, by: str) -> ApiToken:
        token_id = self.get(name_or_id).id

        def load() -> ApiToken:
            token: ApiToken = self._events.repository.get(token_id)
            return token

        return change(
            self._events,
            load,
            lambda token: token.revoke(by=by, at=self._clock.now()),
            f"token {name_or_id!r}",
        )

    def list(self) -> list[TokenRow]:
        return self._queries.tokens()

    def _claim(self, name: str) -> TokenName | None:
        try:
            claim: TokenName = self._events.repository.get(token_name_id(name))
        except AggregateNotFoundError:
            return None
        return claim


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


#: How long the authenticator trusts what it last read of a token or an account: a revoked or
#: expired token, or a disabled account, is refused at most this long after the change.
FRESH_FOR = timedelta(seconds=2)
_CACHE_LIMIT = 10_000


class Authenticator:
    """Tells the principal behind a token, a name and password, or a signed-in account.

    It reads the accounts and tokens from the event store, not from the read model: a
    revocation or a disabled account counts as soon as it is saved, in every process, however
    far behind the projector is. What it read of a token or account is trusted for
    `fresh_for` (2 s), so a busy API does not load the same token for every request; a
    password is always checked against the account as it is now."""

    def __init__(
        self,
        events: ChronicleEvents,
        hasher: PasswordHasher,
        clock: Clock,
        *,
        fresh_for: timedelta = FRESH_FOR,
    ) -> None:
        self._events = events
        self._hasher = hasher
        self._clock = clock
        self._fresh_for = fresh_for
        self._dummy_hash: str | None = None
        self._cache: dict[UUID, tuple[datetime, Account | ApiToken]] = {}
        self._lock = threading.Lock()

    def token(self, raw: str) -> Principal | None:
        """The principal of a valid token; None for a malformed, unknown, wrong, revoked
        or expired one."""
        match = _TOKEN.fullmatch(raw.strip())
        if match is None:
            return None
        token = self._fresh(UUID(hex=match.group(1)))
        if not isinstance(token, ApiToken):
            return None
        presented = secret_hash(match.group(2))
        if not hmac.compare_digest(presented.encode(), token.secret_hash.encode()):
            return None
        if token.revoked:
            return None
        if token.expires_at is not None and self._clock.now() >= token.expires_at:
            return None
        return Principal(PrincipalKind.TOKEN, token.name, token.role, token.tenant)

    def password(self, name: str, password: str) -> Principal | None:
        """The principal of an enabled account whose password this is; None otherwise.

        A name without an account still costs one hash verification, so the time taken
        does not tell which names exist."""
        try:
            normalised = validate_name(name, "account name")
        except ValidationError:
            normalised = None
        account = self._load(account_id(normalised)) if normalised is not None else None
        if not isinstance(account, Account):
            self._hasher.verify(self._dummy(), password)
            return None
        if not self._hasher.verify(account.password_hash, password) or not account.enabled:
            return None
        self._remember(account)
        return Principal(PrincipalKind.USER, account.name, account.role, account.tenant)

    def account(self, name: str, *, stamp: str | None = None) -> Principal | None:
        """The principal of the enabled account `name` (a signed-in session's), as of at
        most `fresh_for` ago; None when it is disabled or gone, or, given the `stamp` of the
        password its session was opened with, when the password has changed since."""
        try:
            account = self._fresh(account_id(name))
        except ValidationError:
            return None
        if not isinstance(account, Account) or not account.enabled:
            return None
        if stamp is not None and not hmac.compare_digest(
            stamp.encode(), password_stamp(account.password_hash).encode()
        ):
            return None
        return Principal(PrincipalKind.USER, account.name, account.role, account.tenant)

    def stamp(self, name: str) -> str | None:
        """The stamp of the account's current password (see `password_stamp`)."""
        account = self._fresh(account_id(name))
        return password_stamp(account.password_hash) if isinstance(account, Account) else None

    def _fresh(self, aggregate_id: UUID) -> Account | ApiToken | None:
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(aggregate_id)
        if cached is not None and now - cached[0] < self._fresh_for:
            return cached[1]
        loaded = self._load(aggregate_id)
        if loaded is not None:
            self._remember(loaded, now)
        return loaded

    def _remember(self, aggregate: Account | ApiToken, at: datetime | None = None) -> None:
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[aggregate.id] = (at or self._clock.now(), aggregate)

    def _load(self, aggregate_id: UUID) -> Account | ApiToken | None:
        try:
            loaded: object = self._events.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return loaded if isinstance(loaded, Account | ApiToken) else None

    def _dummy(self) -> str:
        # Hashed on first use, not when the process starts: most never check a password.
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


#: The account `chronicle up` creates on a store that has none.
FIRST_ADMIN = "admin"


def create_first_admin(
    accounts: AccountService, principals: PrincipalsQueries, password: str | None
) -> str | None:
    """On a store with no account yet (`principals` caught up), the `admin` account: role
    admin, bound to no tenant, with `password` or else a random one. Returns the password
    to show once, or None when there were accounts already (or another process made it)."""
    if principals.accounts():
        return None
    chosen = password or secrets.token_urlsafe(18)
    try:
        accounts.create(name=FIRST_ADMIN, password=chosen, role=Role.ADMIN, by="system")
    except ConflictError:
        return None
    return chosen
