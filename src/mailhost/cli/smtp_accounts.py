"""`mailhost smtp add|set|list|available|remove`: the seed's SMTP accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, unlimited_or, with_runtime
from mailhost.cli.render import done, show
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime

app = typer.Typer(
    help="SMTP accounts: a user's authority to send out through the server.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    ctx: typer.Context,
    address: str,
    relay: Annotated[
        bool, typer.Option("--relay/--no-relay", help="Relay to other domains")
    ] = True,
    sender: Annotated[
        SenderScope, typer.Option(help="own: only the user's address; domain: any of the domain")
    ] = SenderScope.OWN,
    hourly: Annotated[int | None, typer.Option(min=1, help="Messages per hour")] = None,
    max_recipients: Annotated[
        int | None, typer.Option(min=1, help="Recipients per message")
    ] = None,
    max_size: Annotated[str | None, typer.Option(help="Max message size, e.g. 10MB")] = None,
) -> None:
    """Give a user an SMTP account (at most one per user)."""
    parsed = EmailAddress.hosted(address)
    size = None if max_size is None else ByteSize.parse(max_size)
    facilities = SmtpFacilities(relay, sender, hourly, max_recipients, size)
    account = with_runtime(
        ctx, lambda rt: rt.services.users.add_smtp_account(OPERATOR, parsed, facilities)
    )
    done(f"SMTP account for {parsed} added [{account.facilities.label}]")


def _count(raw: str | None, option: str) -> int | None:
    """A count option of `smtp set`: a whole number from 1, or `unlimited`."""
    if raw is None:
        return None
    try:
        count = unlimited_or(raw, int)
    except ValueError:
        count = 0
    if count is not None and count < 1:
        raise typer.BadParameter(f"{raw!r}: write a number from 1, or unlimited", param_hint=option)
    return count


@app.command("set")
def set_(
    ctx: typer.Context,
    address: str,
    relay: Annotated[
        bool | None, typer.Option("--relay/--no-relay", help="Relay to other domains")
    ] = None,
    sender: Annotated[
        SenderScope | None,
        typer.Option(help="own: only the user's address; domain: any of the domain"),
    ] = None,
    hourly: Annotated[
        str | None, typer.Option(metavar="N|unlimited", help="Messages per hour")
    ] = None,
    max_recipients: Annotated[
        str | None, typer.Option(metavar="N|unlimited", help="Recipients per message")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option(metavar="SIZE|unlimited", help="Max message size, e.g. 10MB")
    ] = None,
) -> None:
    """Change a user's SMTP account: the options given; the others stay as they are."""
    parsed = EmailAddress.hosted(address)
    per_hour = _count(hourly, "--hourly")
    recipients = _count(max_recipients, "--max-recipients")
    size = None if max_size is None else unlimited_or(max_size, ByteSize.parse)

    async def work(rt: Runtime) -> SmtpFacilities:
        current = (await rt.services.users.smtp_account(OPERATOR, parsed)).facilities
        facilities = SmtpFacilities(
            relay=current.relay if relay is None else relay,
            sender_scope=current.sender_scope if sender is None else sender,
            hourly_limit=current.hourly_limit if hourly is None else per_hour,
            max_recipients=current.max_recipients if max_recipients is None else recipients,
            max_message_size=current.max_message_size if max_size is None else size,
        )
        account = await rt.services.users.set_smtp_facilities(OPERATOR, parsed, facilities)
        return account.facilities

    changed = with_runtime(ctx, work)
    done(f"SMTP account for {parsed} changed [{changed.label}]")


@app.command("list")
def list_(
    ctx: typer.Context,
    domain: str,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the SMTP accounts of a domain with their facility identifiers."""
    name = DomainName.parse(domain)
    accounts = with_runtime(ctx, lambda rt: rt.services.users.smtp_accounts(OPERATOR, name))
    rows = [
        {"address": str(a.address), "facilities": a.facilities.label}
        if not json
        else {
            "address": str(a.address),
            "facilities": list(a.facilities.identifiers),
            "relay": a.facilities.relay,
            "sender": a.facilities.sender_scope.value,
            "hourly": a.facilities.hourly_limit,
            "max_recipients": a.facilities.max_recipients,
            "max_size_bytes": None
            if a.facilities.max_message_size is None
            else a.facilities.max_message_size.bytes,
        }
        for a in accounts
    ]
    show(
        f"SMTP accounts of {name} (R relay, D any sender of the domain, H per hour, "
        "N recipients, S size)",
        rows,
        as_json=json,
        empty=f"no SMTP accounts in {name}",
    )


@app.command("available")
def available(
    ctx: typer.Context,
    domain: str,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Users of a domain that do not have an SMTP account yet."""
    name = DomainName.parse(domain)
    users = with_runtime(ctx, lambda rt: rt.services.users.available_users(OPERATOR, name))
    rows = [{"address": str(u.address)} for u in users]
    show(
        f"Users of {name} without an SMTP account",
        rows,
        as_json=json,
        empty=f"every user of {name} has an SMTP account; add a user first "
        f"(mailhost user add NAME@{name})",
    )


@app.command("remove")
def remove(ctx: typer.Context, address: str) -> None:
    """Take a user's SMTP account away."""
    parsed = EmailAddress.hosted(address)
    with_runtime(ctx, lambda rt: rt.services.users.remove_smtp_account(OPERATOR, parsed))
    done(f"SMTP account of {parsed} removed")
