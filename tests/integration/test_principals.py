"""The principals read model on SQLite and PostgreSQL, sign-in with real argon2id hashes, and
no password or token secret anywhere in the stored events or the read models."""

# ruff: noqa: S105 - the passwords of tests are throwaway

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.principals import Principal, PrincipalKind, Role
from interfaces.bootstrap import PROJECTIONS, Chronicle

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


def project(app: Chronicle) -> None:
    app.runners["principals"].catch_up()


def test_accounts_and_tokens_in_the_read_model(chronicle: Chronicle):
    assert "principals" in PROJECTIONS
    app = chronicle
    app.accounts.create(name="ada", password=PASSWORD, role=Role.ADMIN, by="cli:root")
    app.accounts.create(
        name="bea", password=PASSWORD, role=Role.VIEWER, tenant="acme", by="user:ada"
    )
    app.accounts.change_role("bea", Role.OPERATOR, by="user:ada")
    app.accounts.disable("bea", by="user:ada")
    issued = app.tokens.create(
        name="ci-deploy",
        role=Role.OPERATOR,
        tenant="acme",
        expires_in=timedelta(days=30),
        by="user:ada",
    )
    app.tokens.create(name="old", role=Role.VIEWER, by="user:ada")
    app.tokens.revoke("old", by="user:ada")
    project(app)

    ada, bea = app.principals.accounts()
    assert (ada.name, ada.role, ada.tenant, ada.enabled) == ("ada", Role.ADMIN, None, True)
    assert (bea.name, bea.role, bea.tenant, bea.enabled) == ("bea", Role.OPERATOR, "acme", False)
    assert (bea.created_by, bea.changed_by) == ("user:ada", "user:ada")
    assert bea.changed_at >= bea.created_at
    assert bea.password_hash.startswith("$argon2id$")
    assert app.principals.account("bea") == bea
    assert app.principals.account("nobody") is None

    ci, old = app.principals.tokens()
    assert (ci.id, ci.name, ci.role, ci.tenant, ci.revoked) == (
        issued.token_id,
        "ci-deploy",
        Role.OPERATOR,
        "acme",
        False,
    )
    assert ci.expires_at == issued.expires_at
    assert ci.created_by == "user:ada"
    assert (old.name, old.revoked, old.revoked_by) == ("old", True, "user:ada")
    assert app.principals.token(issued.token_id) == ci

    assert app.authenticator.token(issued.token) == Principal(
        PrincipalKind.TOKEN, "ci-deploy", Role.OPERATOR, "acme"
    )
    assert app.authenticator.password("ada", PASSWORD) == Principal(
        PrincipalKind.USER, "ada", Role.ADMIN
    )
    assert app.authenticator.password("ada", "not the password") is None
    assert app.authenticator.password("bea", PASSWORD) is None  # disabled


def test_the_read_model_rebuilds_from_the_log(chronicle: Chronicle):
    app = chronicle
    app.accounts.create(name="ada", password=PASSWORD, role=Role.ADMIN, by="cli:root")
    issued = app.tokens.create(name="ci", role=Role.VIEWER, by="cli:root")
    project(app)
    before = (app.principals.accounts(), app.principals.tokens())
    app.runners["principals"].rebuild()
    assert (app.principals.accounts(), app.principals.tokens()) == before
    assert app.authenticator.token(issued.token) is not None


def _stored_values(app: Chronicle) -> list[object]:
    """Every value of every table of the read-model database (on PostgreSQL, the event
    store's tables are in the same schema: they are read too)."""
    with app.db.read() as s:
        if s.dialect == "sqlite":
            rows = s.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = s.fetchall(
                "SELECT table_name AS name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        values: list[object] = []
        for row in rows:
            for stored in s.fetchall(f"SELECT * FROM {row['name']}"):  # noqa: S608 - catalog names
                values.extend(stored.values())
    return values


def test_no_password_or_token_secret_is_stored(chronicle: Chronicle):
    app = chronicle
    app.accounts.create(name="ada", password=PASSWORD, role=Role.ADMIN, by="cli:root")
    new_password = "the second password"
    app.accounts.change_password("ada", new_password, by="user:ada")
    issued = app.tokens.create(name="ci-deploy", role=Role.OPERATOR, by="user:ada")
    secret = issued.token.split("_", 2)[2]
    project(app)
    assert app.authenticator.password("ada", new_password) is not None
    assert app.authenticator.token(issued.token) is not None

    needles = [PASSWORD, new_password, secret]
    notifications = app.events.recorder.select_notifications(start=1, limit=10_000)
    assert len(notifications) == 4
    for notification in notifications:
        for needle in needles:
            assert needle.encode() not in notification.state, notification.topic
    values = _stored_values(app)
    assert any(isinstance(v, str) and v.startswith("$argon2id$") for v in values)
    for value in values:
        text = value if isinstance(value, bytes) else str(value).encode()
        for needle in needles:
            assert needle.encode() not in text
    if app.settings.embedded:
        # The SQLite files themselves, write-ahead logs and free pages included.
        for path in app.settings.data_dir.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                for needle in needles:
                    assert needle.encode() not in content, path
