"""Roles and what they allow, the Account and ApiToken aggregates, the account and token
services and the authenticator, on in-memory storage with a fast fake password hash."""

# ruff: noqa: S105, S106 - the passwords and hashes of tests are throwaway

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.principals import (
    FIRST_ADMIN,
    FRESH_FOR,
    AccountService,
    Authenticator,
    TokenService,
    create_first_admin,
    password_stamp,
    validate_password,
)
from application.views.principals import AccountRow, PrincipalsProjection, TokenRow
from domain.principals import (
    SHARED_ACTIONS,
    Account,
    Action,
    ApiToken,
    Principal,
    PrincipalKind,
    Role,
    TokenName,
    account_id,
    parse_role,
    required_role,
    validate_name,
)
from domain.shared import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from tests.unit.fakes import FakeClock, MemoryEventLog, memory_events

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


class FastHasher:
    """PasswordHasher without the cost: salted SHA-256, counting the verifications."""

    def __init__(self) -> None:
        self.verified = 0

    def hash(self, password: str) -> str:
        salt = uuid4().hex
        return f"fake${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        _, salt, digest = password_hash.split("$")
        return hashlib.sha256((salt + password).encode()).hexdigest() == digest


class MemoryPrincipals:
    """The principals read model in memory: PrincipalsWriter and PrincipalsQueries."""

    def __init__(self) -> None:
        self.account_rows: dict[UUID, AccountRow] = {}
        self.token_rows: dict[UUID, TokenRow] = {}

    def insert_account(self, row: AccountRow) -> None:
        self.account_rows.setdefault(row.id, row)

    def update_account(self, account_id: UUID, changes: dict[str, Any]) -> None:
        row = self.account_rows[account_id]
        self.account_rows[account_id] = dataclasses.replace(row, **changes)

    def insert_token(self, row: TokenRow) -> None:
        self.token_rows.setdefault(row.id, row)

    def revoke_token(self, token_id: UUID, by: str, at: datetime) -> None:
        row = self.token_rows[token_id]
        self.token_rows[token_id] = dataclasses.replace(row, revoked_at=at, revoked_by=by)

    def account(self, name: str) -> AccountRow | None:
        return next((r for r in self.account_rows.values() if r.name == name), None)

    def accounts(self) -> list[AccountRow]:
        return sorted(self.account_rows.values(), key=lambda r: r.name)

    def token(self, token_id: UUID) -> TokenRow | None:
        return self.token_rows.get(token_id)

    def tokens(self) -> list[TokenRow]:
        return sorted(self.token_rows.values(), key=lambda r: r.name)


class World:
    def __init__(self) -> None:
        self.events = memory_events()
        self.log = MemoryEventLog(self.events)
        self.clock = FakeClock(T0)
        self.hasher = FastHasher()
        self.read_model = MemoryPrincipals()
        self.position = 0
        self.accounts = AccountService(self.events, self.clock, self.hasher)
        self.tokens = TokenService(self.events, self.clock, self.read_model)
        self.auth = Authenticator(self.events, self.hasher, self.clock)

    def project(self) -> None:
        projection = PrincipalsProjection()
        batch = self.log.read(self.position, limit=1000, topics=projection.topics)
        projection.process(batch, self.read_model)
        self.position = self.log.head()


@pytest.fixture
def world() -> World:
    return World()


# -- roles and the policy ------------------------------------------------------------------------


def test_roles_are_ordered_and_each_includes_the_ones_below():
    assert Role.ADMIN.includes(Role.OPERATOR)
    assert Role.OPERATOR.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.OPERATOR)
    assert parse_role(" Admin ") is Role.ADMIN
    with pytest.raises(ValidationError, match="unknown role 'root'"):
        parse_role("root")


@pytest.mark.parametrize(
    ("action", "least"),
    [
        (Action.READ, Role.VIEWER),
        (Action.DISPATCH, Role.OPERATOR),
        (Action.RETRY, Role.OPERATOR),
        (Action.CANCEL, Role.OPERATOR),
        (Action.FORGET, Role.OPERATOR),
        (Action.COMMENT, Role.OPERATOR),
        (Action.MANAGE_SCHEDULES, Role.OPERATOR),
        (Action.IMPORT, Role.OPERATOR),
        (Action.EXPORT, Role.OPERATOR),
        (Action.MANAGE_BATCHES, Role.OPERATOR),
        (Action.MANAGE_PRINCIPALS, Role.ADMIN),
        (Action.REBUILD_PROJECTIONS, Role.ADMIN),
        (Action.CONTROL_QUEUES, Role.ADMIN),
    ],
)
def test_the_least_role_of_each_action(action, least):
    assert required_role(action) is least
    for role in Role:
        assert role.allows(action) == role.includes(least)


def test_every_action_has_a_rule():
    assert {required_role(action) for action in Action} <= set(Role)


def test_shared_queues_need_a_principal_bound_to_no_tenant():
    assert Action.CONTROL_QUEUES in SHARED_ACTIONS
    unbound = Principal(PrincipalKind.USER, "ada", Role.ADMIN)
    bound = Principal(PrincipalKind.USER, "bea", Role.ADMIN, tenant="acme")
    assert unbound.may(Action.CONTROL_QUEUES)
    assert not bound.may(Action.CONTROL_QUEUES)
    assert bound.may(Action.REBUILD_PROJECTIONS)
    assert bound.may_use_tenant("acme")
    assert not bound.may_use_tenant("other")
    assert unbound.may_use_tenant("other")
    viewer = Principal(PrincipalKind.TOKEN, "ci", Role.VIEWER)
    assert viewer.may(Action.READ)
    assert not viewer.may(Action.DISPATCH)


def test_actors_name_the_kind_of_principal():
    assert Principal(PrincipalKind.USER, "ada", Role.VIEWER).actor == "user:ada"
    assert Principal(PrincipalKind.TOKEN, "ci-deploy", Role.VIEWER).actor == "token:ci-deploy"
    assert Principal(PrincipalKind.CLI, "root", Role.ADMIN).actor == "cli:root"
    assert Principal(PrincipalKind.SYSTEM, "scheduler", Role.ADMIN).actor == "scheduler"


# -- aggregates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a" * 65, "ada lovelace", "ada@example", "ädä", "a/b"])
def test_bad_names_are_refused(name):
    with pytest.raises(ValidationError, match="must be 1 to 64 characters"):
        validate_name(name)


def test_names_are_normalised_and_give_the_account_id():
    assert validate_name(" Ada.L_1-x ") == "ada.l_1-x"
    assert account_id("Ada") == account_id("ada")
    account = Account.register(
        name="Ada", password_hash="h", role=Role.VIEWER, tenant=None, by="cli:root", at=T0
    )
    assert account.id == account_id("ada")
    assert account.name == "ada"


def test_account_changes_are_events_with_who_did_them():
    account = Account.register(
        name="ada", password_hash="h1", role=Role.VIEWER, tenant="acme", by="cli:root", at=T0
    )
    account.change_role(Role.ADMIN, by="user:bob", at=T0)
    account.disable(by="user:bob", at=T0)
    account.enable(by="user:bob", at=T0)
    account.change_password("h2", by="user:ada", at=T0)
    kinds = [type(e) for e in account.collect_events()]
    assert kinds == [
        Account.Created,
        Account.RoleChanged,
        Account.Disabled,
        Account.Enabled,
        Account.PasswordChanged,
    ]
    assert (account.role, account.enabled, account.password_hash) == (Role.ADMIN, True, "h2")
    with pytest.raises(InvalidTransitionError, match="already enabled"):
        account.enable(by="x", at=T0)
    account.disable(by="x", at=T0)
    with pytest.raises(InvalidTransitionError, match="already disabled"):
        account.disable(by="x", at=T0)
    with pytest.raises(InvalidTransitionError, match="already has role admin"):
        account.change_role(Role.ADMIN, by="x", at=T0)


def test_a_token_claims_its_name_and_is_revoked_once():
    token, claim = ApiToken.issue(
        id=uuid4(),
        name="CI-Deploy",
        role=Role.OPERATOR,
        tenant=None,
        expires_at=None,
        secret_hash="0" * 64,
        by="cli:root",
        at=T0,
    )
    assert isinstance(claim, TokenName)
    assert (claim.name, claim.token_id, token.name) == ("ci-deploy", token.id, "ci-deploy")
    token.revoke(by="cli:root", at=T0)
    with pytest.raises(InvalidTransitionError, match="already revoked"):
        token.revoke(by="cli:root", at=T0)
    with pytest.raises(ValidationError, match="expire after"):
        ApiToken.issue(
            id=uuid4(),
            name="x",
            role=Role.VIEWER,
            tenant=None,
            expires_at=T0,
            secret_hash="0" * 64,
            by="a",
            at=T0,
        )


# -- services ------------------------------------------------------------------------------------


def test_passwords_need_twelve_characters():
    validate_password("x" * 12)
    for weak in ("", "short", "x" * 11, " " * 20):
        with pytest.raises(ValidationError, match="at least 12 characters"):
            validate_password(weak)


def test_accounts_are_created_once_per_name(world):
    world.accounts.create(name="ada", password=PASSWORD, role=Role.OPERATOR, by="cli:root")
    with pytest.raises(ConflictError, match="an account named 'ada' already exists"):
        world.accounts.create(name="ADA", password=PASSWORD, role=Role.VIEWER, by="cli:root")
    [created] = [e for e in world.log.read(0, limit=10) if isinstance(e.event, Account.Created)]
    assert created.event.password_hash != PASSWORD
    assert PASSWORD not in repr(vars(created.event))


def test_account_changes_through_the_service(world):
    world.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:root")
    assert world.accounts.change_role("ada", Role.ADMIN, by="cli:root").role is Role.ADMIN
    assert not world.accounts.disable("ada", by="cli:root").enabled
    assert world.accounts.enable("ada", by="cli:root").enabled
    before = world.accounts.get("ada").password_hash
    world.accounts.change_password("ada", "another long password", by="cli:root")
    assert world.accounts.get("ada").password_hash != before
    with pytest.raises(NotFoundError, match="no account named 'bob'"):
        world.accounts.disable("bob", by="cli:root")
    with pytest.raises(ValidationError, match="at least 12"):
        world.accounts.change_password("ada", "short", by="cli:root")


def test_tokens_are_shown_once_and_stored_as_a_hash(world):
    issued = world.tokens.create(name="ci-deploy", role=Role.OPERATOR, by="cli:root")
    prefix, token_hex, secret = issued.token.split("_", 2)
    assert (prefix, UUID(hex=token_hex)) == ("chr", issued.token_id)
    assert len(secret) >= 43  # 32 random bytes, base64url
    [created] = [
        e.event for e in world.log.read(0, limit=10) if isinstance(e.event, ApiToken.Created)
    ]
    assert created.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(vars(created))
    with pytest.raises(ConflictError, match="a token named 'ci-deploy' already exists"):
        world.tokens.create(name="ci-deploy", role=Role.VIEWER, by="cli:root")


def test_tokens_are_revoked_by_name_or_id(world):
    first = world.tokens.create(name="one", role=Role.VIEWER, by="cli:root")
    world.tokens.create(name="two", role=Role.VIEWER, by="cli:root")
    second = world.tokens.create(name="three", role=Role.VIEWER, by="cli:root")
    assert world.tokens.revoke("one", by="cli:root").revoked
    assert world.tokens.revoke(second.token_id.hex, by="cli:root").name == "three"
    with pytest.raises(InvalidTransitionError, match="already revoked"):
        world.tokens.revoke(str(first.token_id), by="cli:root")
    with pytest.raises(NotFoundError, match="no token with name 'four'"):
        world.tokens.revoke("four", by="cli:root")
    with pytest.raises(NotFoundError, match="no token with id"):
        world.tokens.revoke(str(uuid4()), by="cli:root")
    hex_named = world.tokens.create(name=uuid4().hex, role=Role.VIEWER, by="cli:root")
    assert world.tokens.revoke(hex_named.name, by="cli:root").id == hex_named.token_id
    world.project()
    listed = [(t.name, t.revoked) for t in world.tokens.list() if t.name != hex_named.name]
    assert listed == [("one", True), ("three", True), ("two", False)]


# -- the authenticator ---------------------------------------------------------------------------


def test_a_good_token_gives_its_principal(world):
    issued = world.tokens.create(name="ci-deploy", role=Role.OPERATOR, tenant="acme", by="cli:root")
    world.project()
    principal = world.auth.token(issued.token)
    assert principal == Principal(PrincipalKind.TOKEN, "ci-deploy", Role.OPERATOR, "acme")
    assert principal.actor == "token:ci-deploy"


def test_bad_revoked_expired_and_malformed_tokens_are_refused(world):
    good = world.tokens.create(
        name="ci", role=Role.VIEWER, expires_in=timedelta(days=1), by="cli:root"
    ).token
    world.project()
    prefix, token_hex, secret = good.split("_", 2)
    wrong_secret = f"{prefix}_{token_hex}_{'A' * len(secret)}"
    unknown_id = f"{prefix}_{uuid4().hex}_{secret}"
    for raw in (
        "",
        "chr_",
        secret,
        f"xyz_{token_hex}_{secret}",
        f"{prefix}_{token_hex}",
        f"{prefix}_{token_hex.upper()}_{secret}",
        f"{prefix}_{token_hex}_{secret[:20]}",
        good + "\u00e9",
        wrong_secret,
        unknown_id,
    ):
        assert world.auth.token(raw) is None, raw
    assert world.auth.token(good) is not None
    world.clock.advance(timedelta(days=1).total_seconds())
    assert world.auth.token(good) is None  # expired at exactly its expiry time


def test_a_token_works_before_the_read_model_is_projected(world):
    issued = world.tokens.create(name="ci", role=Role.VIEWER, by="cli:root")
    world.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:root")
    assert world.read_model.token(issued.token_id) is None  # nothing projected
    assert world.read_model.account("ada") is None
    assert world.auth.token(issued.token) == Principal(PrincipalKind.TOKEN, "ci", Role.VIEWER)
    assert world.auth.password("ada", PASSWORD) is not None
    assert world.auth.account("ada") == Principal(PrincipalKind.USER, "ada", Role.VIEWER)
    assert world.auth.stamp("ada") == password_stamp(world.accounts.get("ada").password_hash)


def test_a_revoked_token_is_trusted_for_fresh_for_then_refused(world):
    issued = world.tokens.create(name="ci", role=Role.VIEWER, by="cli:root")
    assert world.auth.token(issued.token) is not None  # read now, at T0
    world.tokens.revoke("ci", by="cli:root")
    assert world.auth.token(issued.token) is not None  # what was read is trusted ...
    world.clock.advance(FRESH_FOR.total_seconds() - 0.001)
    assert world.auth.token(issued.token) is not None  # ... for fresh_for
    world.clock.advance(0.001)
    assert world.auth.token(issued.token) is None  # read again: revoked
    world.clock.advance(60)
    assert world.auth.token(issued.token) is None


def test_a_token_revoked_before_its_first_read_is_refused_at_once(world):
    issued = world.tokens.create(name="ci", role=Role.VIEWER, by="cli:root")
    world.tokens.revoke("ci", by="cli:root")
    assert world.auth.token(issued.token) is None


def test_fresh_for_is_a_parameter(world):
    auth = Authenticator(world.events, world.hasher, world.clock, fresh_for=timedelta(0))
    issued = world.tokens.create(name="ci", role=Role.VIEWER, by="cli:root")
    assert auth.token(issued.token) is not None
    world.tokens.revoke("ci", by="cli:root")
    assert auth.token(issued.token) is None  # nothing trusted: read every time


def test_a_disabled_account_is_trusted_for_fresh_for_then_refused(world):
    world.accounts.create(name="ada", password=PASSWORD, role=Role.OPERATOR, by="cli:root")
    assert world.auth.account("ada") is not None
    world.accounts.disable("ada", by="cli:root")
    # A password is always checked against the account as it is now ...
    assert world.auth.password("ada", PASSWORD) is None
    world.accounts.enable("ada", by="cli:root")
    assert world.auth.password("ada", PASSWORD) is not None  # read (and remembered) at T0
    world.accounts.disable("ada", by="cli:root")
    # ... but a session's account is trusted as last read for fresh_for.
    assert world.auth.account("ada") is not None
    world.clock.advance(FRESH_FOR.total_seconds() - 0.001)
    assert world.auth.account("ada") is not None
    world.clock.advance(0.001)
    assert world.auth.account("ada") is None
    world.accounts.enable("ada", by="cli:root")
    assert world.auth.account("ada") is None  # a refusal is re-read only ...
    world.clock.advance(FRESH_FOR.total_seconds())
    assert world.auth.account("ada") is not None  # ... after fresh_for as well


def test_a_changed_password_ends_the_old_stamp_after_fresh_for(world):
    world.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:root")
    old = world.auth.stamp("ada")
    assert old is not None
    assert world.auth.account("ada", stamp=old) is not None
    world.accounts.change_password("ada", "a brand new password", by="user:ada")
    assert world.auth.account("ada", stamp=old) is not None  # trusted as read
    assert world.auth.stamp("ada") == old
    world.clock.advance(FRESH_FOR.total_seconds())
    assert world.auth.account("ada", stamp=old) is None
    new = world.auth.stamp("ada")
    assert new is not None
    assert new != old
    assert new == password_stamp(world.accounts.get("ada").password_hash)
    assert world.auth.account("ada", stamp=new) is not None
    assert world.auth.account("ada") is not None  # no stamp: not checked


def test_account_refuses_a_stale_or_wrong_stamp_and_unknown_names(world):
    world.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:root")
    stamp = world.auth.stamp("ada")
    assert stamp is not None
    assert len(stamp) == 32
    assert world.auth.account("Ada", stamp=stamp) is not None
    assert world.auth.account("ada", stamp="0" * 32) is None
    assert world.auth.account("ada", stamp="") is None
    assert world.auth.account("ada", stamp=password_stamp("another hash")) is None
    assert world.auth.account("bob") is None
    assert world.auth.account("not a valid name!") is None
    assert world.auth.stamp("bob") is None


def test_the_password_stamp_is_a_short_digest_of_the_hash():
    assert password_stamp("h1") == password_stamp("h1")
    assert password_stamp("h1") != password_stamp("h2")
    assert len(password_stamp("h1")) == 32
    assert "h1" not in password_stamp("h1")


def test_a_password_signs_in_an_enabled_account_only(world):
    world.accounts.create(
        name="ada", password=PASSWORD, role=Role.ADMIN, tenant="acme", by="cli:root"
    )
    world.project()
    principal = world.auth.password("Ada", PASSWORD)
    assert principal == Principal(PrincipalKind.USER, "ada", Role.ADMIN, "acme")
    assert principal.actor == "user:ada"
    assert world.auth.password("ada", PASSWORD + "x") is None
    assert world.auth.password("ada", "") is None
    world.accounts.disable("ada", by="cli:root")
    world.project()
    assert world.auth.password("ada", PASSWORD) is None
    world.accounts.enable("ada", by="cli:root")
    world.accounts.change_password("ada", "a brand new password", by="user:ada")
    world.project()
    assert world.auth.password("ada", PASSWORD) is None
    assert world.auth.password("ada", "a brand new password") is not None


def test_an_unknown_name_costs_one_verification_too(world):
    world.accounts.create(name="ada", password=PASSWORD, role=Role.VIEWER, by="cli:root")
    world.project()
    for name in ("bob", "not a valid name!", ""):
        before = world.hasher.verified
        assert world.auth.password(name, PASSWORD) is None
        assert world.hasher.verified == before + 1
    before = world.hasher.verified
    world.auth.password("ada", "wrong password!!")
    assert world.hasher.verified == before + 1


# -- the first admin -------------------------------------------------------------------------


def test_a_store_with_no_account_gets_an_admin_with_a_random_password_once(world):
    password = create_first_admin(world.accounts, world.read_model, None)
    assert password is not None
    assert len(password) >= 12
    world.project()
    admin = world.read_model.account(FIRST_ADMIN)
    assert admin is not None
    assert (admin.role, admin.tenant, admin.enabled) == (Role.ADMIN, None, True)
    signed_in = world.auth.password(FIRST_ADMIN, password)
    assert signed_in is not None
    assert signed_in.role is Role.ADMIN
    # Accounts exist now: nothing is made again, no password is shown again.
    assert create_first_admin(world.accounts, world.read_model, None) is None
    assert create_first_admin(World().accounts, world.read_model, None) is None


def test_the_first_admin_takes_the_given_password_and_only_on_an_empty_store(world):
    assert create_first_admin(world.accounts, world.read_model, PASSWORD) == PASSWORD
    world.project()
    assert world.auth.password(FIRST_ADMIN, PASSWORD) is not None
    other = World()
    other.accounts.create(name="ada", password=PASSWORD, role=Role.ADMIN, by="cli:root")
    other.project()
    assert create_first_admin(other.accounts, other.read_model, PASSWORD) is None
    assert other.read_model.account(FIRST_ADMIN) is None
