"""`chronicle accounts`: the people who sign in, with their role and tenant binding."""

from __future__ import annotations

import sys

import click
import msgspec

from application.views.principals import AccountRow
from domain.principals import Role, validate_name, validate_tenant
from domain.shared import DomainError
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle

ROLES = click.Choice([role.value for role in Role], case_sensitive=False)


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice, hidden."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt(
        "Password (at least 12 characters)", hide_input=True, confirmation_prompt=True
    )
    return password


def check(name: str, tenant: str | None = None) -> None:
    """Refuse a bad name or tenant before asking for a password."""
    try:
        validate_name(name, "account name")
        validate_tenant(tenant)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None


def account_json(row: AccountRow) -> dict[str, object]:
    """An account as `accounts list --json` prints it: never its password hash."""
    return {
        "id": str(row.id),
        "name": row.name,
        "role": row.role.value,
        "tenant": row.tenant,
        "enabled": row.enabled,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "changed_at": row.changed_at,
        "changed_by": row.changed_by,
    }


@click.group()
def accounts() -> None:
    """Accounts of the people who sign in (passwords are stored as argon2id hashes)."""


@accounts.command("create")
@click.argument("name")
@click.option("--role", required=True, type=ROLES, help="viewer, operator or admin.")
@click.option("--tenant", default=None, help="Bind the account to this tenant (default: any).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def accounts_create(name: str, role: str, tenant: str | None, password_stdin: bool) -> None:
    """Create the account NAME (a-z, 0-9, '.', '_', '-'); the password is asked twice."""
    check(name, tenant)
    password = read_password(password_stdin)
    with open_chronicle() as app:
        account = app.accounts.create(
            name=name, password=password, role=Role(role.lower()), tenant=tenant, by=cli_actor()
        )
    bound = f", tenant {account.tenant}" if account.tenant else ""
    click.echo(f"created account {account.name} (role {account.role}{bound})")


@accounts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def accounts_list(as_json: bool) -> None:
    """Every account with its role, tenant binding and state."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows = app.principals.accounts()
    if as_json:
        for row in rows:
            click.echo(msgspec.json.encode(account_json(row)).decode())
        return
    click.echo(f"{'name':<24}{'role':<10}{'tenant':<16}{'state':<10}{'created':<21}created by")
    for row in rows:
        click.echo(
            f"{row.name:<24}{row.role.value:<10}{row.tenant or '*':<16}"
            f"{'enabled' if row.enabled else 'disabled':<10}{fmt_time(row.created_at):<21}"
            f"{row.created_by}"
        )


@accounts.command("disable")
@click.argument("name")
def accounts_disable(name: str) -> None:
    """Disable NAME: it can no longer sign in."""
    with open_chronicle() as app:
        account = app.accounts.disable(name, by=cli_actor())
    click.echo(f"disabled account {account.name}")


@accounts.command("enable")
@click.argument("name")
def accounts_enable(name: str) -> None:
    """Enable NAME again."""
    with open_chronicle() as app:
        account = app.accounts.enable(name, by=cli_actor())
    click.echo(f"enabled account {account.name}")


@accounts.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def accounts_passwd(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME."""
    check(name)
    with open_chronicle() as app:
        app.accounts.get(name)  # no password asked for an account that does not exist
        account = app.accounts.change_password(name, read_password(password_stdin), by=cli_actor())
    click.echo(f"changed the password of account {account.name}")


@accounts.command("role")
@click.argument("name")
@click.argument("role", type=ROLES)
def accounts_role(name: str, role: str) -> None:
    """Give NAME the role ROLE (viewer, operator or admin)."""
    with open_chronicle() as app:
        account = app.accounts.change_role(name, Role(role.lower()), by=cli_actor())
    click.echo(f"account {account.name} now has role {account.role}")
