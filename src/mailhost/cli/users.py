"""`mailhost user add|set|passwd|list|remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, read_password, with_runtime
from mailhost.cli.customers import PasswordStdin
from mailhost.cli.render import done, show
from mailhost.model.names import DomainName, EmailAddress

app = typer.Typer(help="Domain Name Users: the logins for mail.", no_args_is_help=True)
# The value of `user set --recovery` that clears the recovery address.
NONE = "none"


@app.command("add")
def add(
    ctx: typer.Context,
    address: str,
    recovery: Annotated[str | None, typer.Option(help="Recovery address for resets")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (user@domain) of a hosted domain."""
    parsed = EmailAddress.hosted(address)
    password = read_password(password_stdin, str(parsed))
    with_runtime(ctx, lambda rt: rt.services.users.add_user(OPERATOR, parsed, password, recovery))
    done(f"user {parsed} added")


@app.command("set")
def set_(
    ctx: typer.Context,
    address: str,
    recovery: Annotated[
        str,
        typer.Option(
            metavar="ADDRESS|none",
            help="Where the user's reset links and login notices go; none: nowhere",
        ),
    ],
) -> None:
    """Change a user's recovery address (another address than the user's own)."""
    parsed = EmailAddress.hosted(address)
    text = recovery.strip()
    wanted = None if text.lower() == NONE else EmailAddress.parse(text)
    user = with_runtime(ctx, lambda rt: rt.services.users.set_recovery(OPERATOR, parsed, wanted))
    done(f"user {parsed} changed (recovery address {user.recovery_email or NONE})")


@app.command("passwd")
def passwd(ctx: typer.Context, address: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password."""
    parsed = EmailAddress.hosted(address)
    password = read_password(password_stdin, str(parsed))
    with_runtime(ctx, lambda rt: rt.services.users.change_password(OPERATOR, parsed, password))
    done(f"password of {parsed} changed")


@app.command("list")
def list_(
    ctx: typer.Context,
    domain: str,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the users of a domain and which facilities they have."""
    name = DomainName.parse(domain)
    users = with_runtime(ctx, lambda rt: rt.services.users.users(OPERATOR, name))
    rows = [
        {
            "address": str(u.address),
            "mailbox": u.has_mailbox,
            "smtp_account": u.has_smtp_account,
            "enabled": u.enabled,
        }
        for u in users
    ]
    show(f"Users of {name}", rows, as_json=json, empty=f"no users in {name}")


@app.command("remove")
def remove(ctx: typer.Context, address: str) -> None:
    """Remove a user with its mailbox and SMTP account."""
    parsed = EmailAddress.hosted(address)
    with_runtime(ctx, lambda rt: rt.services.users.remove_user(OPERATOR, parsed))
    done(f"user {parsed} removed, with its mailbox and SMTP account")
