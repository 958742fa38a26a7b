"""`chronicle tokens`: API tokens for programs, shown once when created."""

from __future__ import annotations

from datetime import timedelta

import click
import msgspec

from application.views.principals import TokenRow
from domain.principals import Role
from interfaces.cli.accounts import ROLES
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle


def token_json(row: TokenRow) -> dict[str, object]:
    """A token as `tokens list --json` prints it: never its secret or hash."""
    return {
        "id": str(row.id),
        "name": row.name,
        "role": row.role.value,
        "tenant": row.tenant,
        "expires_at": row.expires_at,
        "revoked": row.revoked,
        "revoked_at": row.revoked_at,
        "revoked_by": row.revoked_by,
        "created_at": row.created_at,
        "created_by": row.created_by,
    }


@click.group()
def tokens() -> None:
    """API tokens (`Authorization: Bearer chr_…`); only a hash of each secret is stored."""


@tokens.command("create")
@click.argument("name")
@click.option("--role", required=True, type=ROLES, help="viewer, operator or admin.")
@click.option("--tenant", default=None, help="Bind the token to this tenant (default: any).")
@click.option(
    "--expires-in",
    type=click.IntRange(1, 3650),
    default=None,
    metavar="DAYS",
    help="Days until it expires (default: never).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, token included.")
def tokens_create(
    name: str, role: str, tenant: str | None, expires_in: int | None, as_json: bool
) -> None:
    """Create the token NAME and print it, alone on the last line: it is never shown again."""
    with open_chronicle() as app:
        issued = app.tokens.create(
            name=name,
            role=Role(role.lower()),
            tenant=tenant,
            expires_in=timedelta(days=expires_in) if expires_in is not None else None,
            by=cli_actor(),
        )
    if as_json:
        shown = {
            "id": str(issued.token_id),
            "name": issued.name,
            "role": issued.role.value,
            "tenant": issued.tenant,
            "expires_at": issued.expires_at,
            "token": issued.token,
        }
        click.echo(msgspec.json.encode(shown).decode())
        return
    bound = f", tenant {issued.tenant}" if issued.tenant else ""
    expires = f", expires {fmt_time(issued.expires_at)} UTC" if issued.expires_at else ""
    click.echo(
        f"created token {issued.name} (id {issued.token_id}, role {issued.role}{bound}{expires})"
    )
    click.echo("copy it now, it is not shown again:", err=True)
    click.echo(issued.token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def tokens_list(as_json: bool) -> None:
    """Every token with its role, tenant binding, expiry and state (never the secret)."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows = app.tokens.list()
    if as_json:
        for row in rows:
            click.echo(msgspec.json.encode(token_json(row)).decode())
        return
    click.echo(
        f"{'id':<38}{'name':<24}{'role':<10}{'tenant':<16}{'expires':<21}{'state':<9}created by"
    )
    for row in rows:
        state = "revoked" if row.revoked else "active"
        click.echo(
            f"{row.id!s:<38}{row.name:<24}{row.role.value:<10}{row.tenant or '*':<16}"
            f"{fmt_time(row.expires_at) if row.expires_at else 'never':<21}{state:<9}"
            f"{row.created_by}"
        )


@tokens.command("revoke")
@click.argument("name_or_id")
def tokens_revoke(name_or_id: str) -> None:
    """Revoke the token of this name or id: it is refused from now on."""
    with open_chronicle() as app:
        token = app.tokens.revoke(name_or_id, by=cli_actor())
    click.echo(f"revoked token {token.name} ({token.id})")
