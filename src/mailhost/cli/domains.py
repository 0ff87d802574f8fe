"""`mailhost domain add|passwd|list|remove|verify|enable|disable|dkim|postmaster`."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, Yes, confirm_removal, read_password, with_runtime
from mailhost.cli.customers import PasswordStdin
from mailhost.cli.render import done, show
from mailhost.errors import InvalidInput
from mailhost.interfaces import DkimRecord
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import DomainRecord
from mailhost.outbound.dkim import zone_line
from mailhost.runtime import Runtime
from mailhost.services.postmaster import DEFAULT

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
            "status": d.status,
        }
        for d in domains
    ]
    show("Domains", rows, as_json=json, empty="no domains")


@app.command("verify")
def verify(
    ctx: typer.Context,
    domain: str,
    trust: Annotated[
        bool, typer.Option("--trust", help="Mark it verified without looking at its DNS")
    ] = False,
) -> None:
    """Check a pending domain's TXT record (mailhost-verification=...) and mark it verified."""
    name = DomainName.parse(domain)

    def check(rt: Runtime) -> Awaitable[DomainRecord]:
        accounts = rt.services.accounts
        if trust:
            return accounts.trust_domain(OPERATOR, name)
        return accounts.verify_domain(OPERATOR, name)

    found = with_runtime(ctx, check)
    done(f"domain {found.name} is verified: it receives mail")


@app.command("disable")
def disable(ctx: typer.Context, domain: str) -> None:
    """Stop a domain's mail and logins (mail waits with 4xx; nothing is deleted)."""
    name = DomainName.parse(domain)
    with_runtime(ctx, lambda rt: rt.services.accounts.set_domain_enabled(OPERATOR, name, False))
    done(f"domain {name} disabled")


@app.command("enable")
def enable(ctx: typer.Context, domain: str) -> None:
    """Let a disabled domain receive, send and log in again."""
    name = DomainName.parse(domain)
    with_runtime(ctx, lambda rt: rt.services.accounts.set_domain_enabled(OPERATOR, name, True))
    done(f"domain {name} enabled")


@app.command("remove")
def remove(ctx: typer.Context, domain: str, yes: Yes = False) -> None:
    """Remove a domain with its users, mailboxes, SMTP accounts and mail (asks first)."""
    name = DomainName.parse(domain)
    summary = with_runtime(ctx, lambda rt: rt.services.accounts.domain_removal(OPERATOR, name))
    confirm_removal(summary, yes)
    with_runtime(ctx, lambda rt: rt.services.accounts.remove_domain(OPERATOR, name))
    done(f"domain {name} removed")


@app.command("postmaster")
def postmaster(
    ctx: typer.Context,
    domain: str,
    to: Annotated[
        str | None, typer.Option("--to", help="Mailbox of yours, or an address elsewhere")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Back to the customer's contact address")
    ] = False,
    abuse: Annotated[
        bool | None, typer.Option("--abuse/--no-abuse", help="abuse@ goes there too")
    ] = None,
) -> None:
    """Where postmaster@ (and abuse@) mail of a domain goes without a mailbox of that name."""
    name = DomainName.parse(domain)
    if to is not None and default:
        raise InvalidInput("give --to ADDRESS or --default (not both)")
    target = DEFAULT if default else None if to is None else EmailAddress.parse(to)

    def change(rt: Runtime) -> Awaitable[DomainRecord]:
        if target is None and abuse is None:
            return rt.services.accounts.domain(OPERATOR, name)  # only show it
        return rt.services.postmaster.set_postmaster(OPERATOR, name, to=target, abuse=abuse)

    found = with_runtime(ctx, change)
    where = found.postmaster_address or "the customer's contact address"
    done(f"postmaster@{found.name} goes to {where} (a mailbox of that name comes first)")
    if found.abuse_enabled:
        done(f"abuse@{found.name} goes there too")
    else:
        done(f"abuse@{found.name} is off: refused unless a mailbox has that name")


@app.command("passwd")
def passwd(ctx: typer.Context, domain: str, password_stdin: PasswordStdin = False) -> None:
    """Set the password of a domain's Domain Name Level panel (its manager's login)."""
    name = DomainName.parse(domain)
    password = read_password(password_stdin, f"the panel of {name}")
    with_runtime(ctx, lambda rt: rt.services.accounts.set_domain_password(OPERATOR, name, password))
    done(f"password of the Domain Name Level panel of {name} changed")
