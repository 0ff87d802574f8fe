"""`mailhost customer add|set|list|disable|enable|remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, Yes, confirm_removal, read_password, with_runtime
from mailhost.cli.render import done, show
from mailhost.model.names import EmailAddress
from mailhost.model.records import CustomerRecord
from mailhost.runtime import Runtime

app = typer.Typer(help="Customers: who owns domains under a plan.", no_args_is_help=True)
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


@app.command("add")
def add(
    ctx: typer.Context,
    login: str,
    plan: Annotated[str, typer.Option(help="Plan name, e.g. 'Bulk Hosting'")],
    email: Annotated[str, typer.Option(help="Contact address for notices and password resets")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a customer on a plan."""
    password = read_password(password_stdin, f"customer {login}")
    customer = with_runtime(
        ctx, lambda rt: rt.services.accounts.add_customer(OPERATOR, login, plan, email, password)
    )
    done(f"customer {customer.login!r} added on plan {customer.plan.name!r}")


@app.command("set")
def set_(
    ctx: typer.Context,
    login: str,
    email: Annotated[
        str | None, typer.Option(help="New contact address for notices and password resets")
    ] = None,
    plan: Annotated[str | None, typer.Option(help="New plan name, e.g. 'Bulk Hosting'")] = None,
) -> None:
    """Change a customer's contact address or plan; what is not given stays as it is."""
    if email is None and plan is None:
        raise typer.BadParameter("give --email, --plan or both", param_hint="options")
    contact = None if email is None else EmailAddress.parse(email)

    async def work(rt: Runtime) -> CustomerRecord:
        # The plan first: it is the change a rule may refuse, and then nothing has changed.
        found = await rt.services.accounts.customer(OPERATOR, login)
        if plan is not None and plan != found.plan.name:
            found = await rt.services.accounts.change_plan(OPERATOR, login, plan)
        if contact is not None:
            found = await rt.services.accounts.set_contact(OPERATOR, login, contact)
        return found

    changed = with_runtime(ctx, work)
    done(
        f"customer {changed.login!r} changed (contact {changed.contact_email}, "
        f"plan {changed.plan.name!r})"
    )


@app.command("disable")
def disable(ctx: typer.Context, login: str) -> None:
    """Stop a customer's mail and logins (mail waits with 4xx; nothing is deleted)."""
    found = with_runtime(
        ctx, lambda rt: rt.services.accounts.set_customer_enabled(OPERATOR, login, False)
    )
    done(f"customer {found.login!r} disabled")


@app.command("enable")
def enable(ctx: typer.Context, login: str) -> None:
    """Let a disabled customer's domains receive, send and log in again."""
    found = with_runtime(
        ctx, lambda rt: rt.services.accounts.set_customer_enabled(OPERATOR, login, True)
    )
    done(f"customer {found.login!r} enabled")


@app.command("remove")
def remove(ctx: typer.Context, login: str, yes: Yes = False) -> None:
    """Remove a customer with its domains, their users, mailboxes and mail (asks first)."""
    summary = with_runtime(ctx, lambda rt: rt.services.accounts.customer_removal(OPERATOR, login))
    confirm_removal(summary, yes)
    with_runtime(ctx, lambda rt: rt.services.accounts.remove_customer(OPERATOR, login))
    done(f"customer {summary.name!r} removed")


@app.command("list")
def list_(
    ctx: typer.Context, json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """List customers."""
    customers = with_runtime(ctx, lambda rt: rt.services.accounts.customers(OPERATOR))
    rows = [
        {"login": c.login, "plan": c.plan.name, "email": c.contact_email, "enabled": c.enabled}
        for c in customers
    ]
    show("Customers", rows, as_json=json, empty="no customers")
