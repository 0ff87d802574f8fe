"""`mailhost domain add|list|remove`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, read_password, with_runtime
from mailhost.cli.customers import PasswordStdin
from mailhost.cli.render import done, show
from mailhost.interfaces import DkimRecord
from mailhost.model.names import DomainName
from mailhost.outbound.dkim import zone_line
from mailhost.runtime import Runtime

app = typer.Typer(help="Hosted domains.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    domain: str,
    customer: Annotated[str, typer.Option(help="Login of the owning customer")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Host a domain for a customer; the password is for its Domain Name Level panel."""
    name = DomainName.parse(domain)
    password = read_password(password_stdin, f"the panel of {name}")
    added = with_runtime(
        ctx, lambda rt: rt.services.accounts.add_domain(OPERATOR, name, customer, password)
    )
    done(f"domain {added.name} added for customer {added.customer_login!r}")
    _print_dkim(ctx, name)


@app.command("dkim")
def dkim(ctx: typer.Context, domain: str) -> None:
    """Print the DKIM DNS TXT records to publish for a domain (keys made if missing)."""
    _print_dkim(ctx, DomainName.parse(domain))


def _print_dkim(ctx: typer.Context, name: DomainName) -> None:
    async def records(rt: Runtime) -> Sequence[DkimRecord]:
        await rt.services.accounts.domain(OPERATOR, name)  # hosted and visible, or refused
        return await rt.dkim.ensure_keys(name)

    found = with_runtime(ctx, records)
    done(f"Publish these DNS TXT records so receivers can verify mail signed for {name}:")
    for record in found:
        done(zone_line(record))


@app.command("list")
def list_(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer's domains")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List hosted domains."""
    domains = with_runtime(ctx, lambda rt: rt.services.accounts.domains(OPERATOR, customer))
    rows = [
        {
            "domain": d.name.ascii,
            "unicode": d.name.unicode,
            "customer": d.customer_login,
            "enabled": d.enabled,
        }
        for d in domains
    ]
    show("Domains", rows, as_json=json, empty="no domains")


@app.command("remove")
def remove(ctx: typer.Context, domain: str) -> None:
    """Remove a domain with its users, mailboxes and SMTP accounts."""
    name = DomainName.parse(domain)
    with_runtime(ctx, lambda rt: rt.services.accounts.remove_domain(OPERATOR, name))
    done(f"domain {name} removed")
