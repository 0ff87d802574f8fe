"""`mailhost mailbox add|set|list|remove|recount`."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, unlimited_or, with_runtime
from mailhost.cli.render import done, show, size_text
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.quotas import parse_quota
from mailhost.runtime import Runtime
from mailhost.services.mailbox_usage import Recount

app = typer.Typer(help="POP3 mailboxes.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    address: str,
    quota: Annotated[
        str | None,
        typer.Option(help="Quota, at least 1MB, e.g. 250MB (omit: no quota, if the plan allows)"),
    ] = None,
) -> None:
    """Give a user a POP3 mailbox."""
    parsed = EmailAddress.hosted(address)
    size = None if quota is None else unlimited_or(quota, parse_quota)
    with_runtime(ctx, lambda rt: rt.services.users.add_mailbox(OPERATOR, parsed, size))
    done(f"mailbox for {parsed} added (quota {size_text(size)})")


@app.command("set")
def set_(
    ctx: typer.Context,
    address: str,
    quota: Annotated[
        str,
        typer.Option(
            metavar="SIZE|unlimited",
            help="New quota, at least 1MB, e.g. 500MB; unlimited: none (if the plan allows)",
        ),
    ],
) -> None:
    """Change a mailbox's quota; a plan with a storage limit holds all quotas to it."""
    parsed = EmailAddress.hosted(address)
    size = unlimited_or(quota, parse_quota)
    box = with_runtime(ctx, lambda rt: rt.services.users.set_mailbox_quota(OPERATOR, parsed, size))
    done(f"mailbox for {parsed} changed (quota {size_text(box.quota)})")


@app.command("list")
def list_(
    ctx: typer.Context,
    domain: str,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the mailboxes of a domain with quota and usage."""
    name = DomainName.parse(domain)
    boxes = with_runtime(ctx, lambda rt: rt.services.users.mailboxes(OPERATOR, name))
    rows = [
        {
            "address": str(b.address),
            "quota": size_text(b.quota)
            if not json
            else (None if b.quota is None else b.quota.bytes),
            "used": str(ByteSize(b.used_bytes)) if not json else b.used_bytes,
        }
        for b in boxes
    ]
    show(f"POP3 mailboxes of {name}", rows, as_json=json, empty=f"no mailboxes in {name}")


@app.command("remove")
def remove(ctx: typer.Context, address: str) -> None:
    """Remove a user's POP3 mailbox."""
    parsed = EmailAddress.hosted(address)
    with_runtime(ctx, lambda rt: rt.services.users.remove_mailbox(OPERATOR, parsed))
    done(f"mailbox of {parsed} removed")


@app.command("recount")
def recount(
    ctx: typer.Context,
    domain: str,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Recount mailbox usage from the Maildir files and repair the database."""
    name = DomainName.parse(domain)

    async def work(rt: Runtime) -> list[Recount]:
        boxes = await rt.services.users.mailboxes(OPERATOR, name)
        return await rt.services.mailbox_usage.recount(boxes)

    results = with_runtime(ctx, work)
    rows = [
        {
            "address": str(r.mailbox.address),
            "recorded": r.recorded,
            "on_disk": r.on_disk,
            "repaired": r.recorded != r.on_disk,
        }
        for r in results
    ]
    show(f"Mailbox usage of {name}", rows, as_json=json, empty=f"no mailboxes in {name}")
