"""`chronicle accounts` and `chronicle tokens` on the embedded store, also while another
process (here: a Chronicle with its projection threads, as `chronicle up` runs) has it open."""

# ruff: noqa: S105 - the passwords of tests are throwaway

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.principals import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import RunnerThreads, bootstrap
from interfaces.cli.main import cli
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CHRONICLE_DATABASE_URL", "CHRONICLE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHRONICLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONICLE_LOG_LEVEL", "warning")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, input: str | None = None) -> str:  # noqa: A002
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_accounts_create_list_and_change(run):
    out = run("accounts", "create", "Ada", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "created account ada (role admin)" in out
    assert PASSWORD not in out  # the prompt hides it
    out = run(
        "accounts",
        "create",
        "bea",
        "--role",
        "viewer",
        "--tenant",
        "acme",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert "created account bea (role viewer, tenant acme)" in out
    listed = [json.loads(line) for line in run("accounts", "list", "--json").splitlines()]
    assert [(a["name"], a["role"], a["tenant"], a["enabled"]) for a in listed] == [
        ("ada", "admin", None, True),
        ("bea", "viewer", "acme", True),
    ]
    assert listed[0]["created_by"].startswith("cli:")
    assert all("password_hash" not in a for a in listed)
    assert "bea" in run("accounts", "list")
    assert "disabled account bea" in run("accounts", "disable", "bea")
    assert "enabled account bea" in run("accounts", "enable", "bea")
    assert "now has role operator" in run("accounts", "role", "bea", "operator")
    out = run("accounts", "passwd", "bea", "--password-stdin", input="another long password\n")
    assert "changed the password of account bea" in out
    [_, bea] = [json.loads(line) for line in run("accounts", "list", "--json").splitlines()]
    assert (bea["role"], bea["enabled"]) == ("operator", True)
    assert "$argon2" not in run("accounts", "list")


def test_account_errors_name_the_problem(run):
    run("accounts", "create", "ada", "--role", "admin", "--password-stdin", input=PASSWORD)
    out = run(
        "accounts", "create", "ada", "--role", "viewer", "--password-stdin", input=PASSWORD, code=1
    )
    assert "an account named 'ada' already exists" in out
    out = run("accounts", "create", "bob", "--role", "root", "--password-stdin", code=2)
    assert "'root' is not one of 'viewer', 'operator', 'admin'" in out
    out = run(
        "accounts", "create", "bob", "--role", "viewer", "--password-stdin", input="short", code=1
    )
    assert "a password needs at least 12 characters" in out
    out = run("accounts", "create", "bob", "--role", "viewer", "--password-stdin", input="", code=1)
    assert "at least 12 characters" in out
    out = run("accounts", "create", "bad name", "--role", "viewer", code=1)
    assert "must be 1 to 64 characters" in out
    assert "no account named 'ghost'" in run("accounts", "disable", "ghost", code=1)
    assert "no account named 'ghost'" in run("accounts", "passwd", "ghost", code=1)
    assert "already enabled" in run("accounts", "enable", "ada", code=1)
    assert "'nope' is not one of" in run("accounts", "role", "ada", "nope", code=2)


def test_tokens_create_list_and_revoke(run):
    out = run("tokens", "create", "ci-deploy", "--role", "operator", "--expires-in", "30")
    token = out.splitlines()[-1]
    assert token.startswith("chr_")
    assert "created token ci-deploy" in out
    shown = json.loads(run("tokens", "create", "nightly", "--role", "viewer", "--json"))
    assert shown["name"] == "nightly"
    assert shown["token"].startswith(f"chr_{shown['id'].replace('-', '')}_")
    assert shown["expires_at"] is None
    listed = [json.loads(line) for line in run("tokens", "list", "--json").splitlines()]
    assert [(t["name"], t["role"], t["revoked"]) for t in listed] == [
        ("ci-deploy", "operator", False),
        ("nightly", "viewer", False),
    ]
    assert listed[0]["expires_at"] is not None
    secrets = [token.split("_", 2)[2], shown["token"].split("_", 2)[2]]
    for output in (run("tokens", "list"), run("tokens", "list", "--json")):
        assert all(secret not in output for secret in secrets)
        assert "secret_hash" not in output
    assert "revoked token ci-deploy" in run("tokens", "revoke", "ci-deploy")
    assert "revoked token nightly" in run("tokens", "revoke", shown["id"])
    listed = [json.loads(line) for line in run("tokens", "list", "--json").splitlines()]
    assert [t["revoked"] for t in listed] == [True, True]


def test_token_errors_name_the_problem(run):
    run("tokens", "create", "ci", "--role", "viewer")
    assert "a token named 'ci' already exists" in run(
        "tokens", "create", "ci", "--role", "admin", code=1
    )
    assert "'root' is not one of" in run("tokens", "create", "x", "--role", "root", code=2)
    assert "no token with name 'ghost'" in run("tokens", "revoke", "ghost", code=1)
    assert "already revoked" not in run("tokens", "revoke", "ci")
    assert "already revoked" in run("tokens", "revoke", "ci", code=1)
    assert "--expires-in" in run(
        "tokens", "create", "y", "--role", "viewer", "--expires-in", "0", code=2
    )


def test_the_commands_work_while_the_embedded_store_is_running(run, tmp_path):
    # As under `chronicle up`: the store is open, its projections follow the log.
    app = bootstrap(Settings(data_dir=tmp_path / "data"))
    threads = RunnerThreads(list(app.runners.values())).start()
    try:
        run("accounts", "create", "ada", "--role", "operator", "--password-stdin", input=PASSWORD)
        token = run("tokens", "create", "ci", "--role", "viewer").splitlines()[-1]
        wait_until(lambda: app.authenticator.token(token) is not None)
        assert app.authenticator.password("ada", PASSWORD).role is Role.OPERATOR
        run("tokens", "revoke", "ci")
        wait_until(lambda: app.authenticator.token(token) is None)
    finally:
        threads.stop()
        app.close()
