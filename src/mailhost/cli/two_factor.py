"""`mailhost two-factor off KIND LOGIN`: the operator turns a login's two-factor off, for
its owner who lost both the phone and the recovery codes."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, with_runtime
from mailhost.cli.render import done

app = typer.Typer(help="Two-factor authentication of panel logins.", no_args_is_help=True)


class Kind(enum.StrEnum):
    PROVIDER = "provider"
    CUSTOMER = "customer"
    DOMAIN = "domain"
    USER = "user"


@app.command("off")
def off(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="The kind of login")],
    login: Annotated[str, typer.Argument(help="Admin or customer login, domain, or address")],
) -> None:
    """Turn a login's two-factor authentication off (its phone and codes are lost).

    A login that `[auth] require_two_factor` names sets it up again at its next login.
    """
    with_runtime(ctx, lambda rt: rt.web_access.two_factor.turn_off_for(OPERATOR, kind.value, login))
    done(f"two-factor authentication is off for {kind.value} {login}")
