"""`mailhost admin add|list`: provider admin logins for the provider panel."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, read_password, with_runtime
from mailhost.cli.customers import PasswordStdin
from mailhost.cli.render import done, show

app = typer.Typer(help="Provider admins: logins for the provider panel.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    login: str,
    email: Annotated[str, typer.Option(help="Address for this admin's password reset links")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a provider admin login."""
    password = read_password(password_stdin, f"provider admin {login}")
    admin = with_runtime(ctx, lambda rt: rt.web_access.admins.add(OPERATOR, login, email, password))
    done(f"provider admin {admin.login!r} added; log in at /login/provider")


@app.command("list")
def list_(
    ctx: typer.Context, json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """List provider admins."""
    admins = with_runtime(ctx, lambda rt: rt.web_access.admins.admins(OPERATOR))
    rows = [{"login": a.login, "email": a.contact} for a in admins]
    show("Provider admins", rows, as_json=json, empty="no provider admins")
