"""`mailhost alias add|list|remove` and `mailhost catchall show|set|clear`."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, with_runtime
from mailhost.cli.render import done, show
from mailhost.model.names import DomainName, EmailAddress

app = typer.Typer(
    help="Aliases: addresses without a mailbox that send their mail to other addresses.",
    no_args_is_help=True,
)
catchall_app = typer.Typer(
    help="Catch-all: where a domain's mail for unknown addresses goes (default: refused).",
    no_args_is_help=True,
)


@app.command("add")
def add(
    ctx: typer.Context,
    address: str,
    targets: Annotated[list[str], typer.Argument(help="Mailboxes, aliases or addresses elsewhere")],
) -> None:
    """Make an alias sending to the targets, or add targets to an alias."""
    parsed = EmailAddress.hosted(address)
    to = [EmailAddress.parse(target) for target in targets]
    alias = with_runtime(ctx, lambda rt: rt.services.aliases.add_alias(OPERATOR, parsed, to))
    done(f"alias {alias.address} sends to {', '.join(str(t.address) for t in alias.targets)}")


@app.command("list")
def list_(
    ctx: typer.Context,
    domain: str,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the aliases of a domain and their targets."""
    name = DomainName.parse(domain)
    aliases = with_runtime(ctx, lambda rt: rt.services.aliases.aliases(OPERATOR, name))
    rows = [
        {
            "address": str(alias.address),
            "targets": [str(t.address) for t in alias.targets]
            if json
            else ", ".join(str(t.address) for t in alias.targets),
            "external": [str(t.address) for t in alias.targets if t.external]
            if json
            else str(sum(t.external for t in alias.targets)),
        }
        for alias in aliases
    ]
    show(f"Aliases of {name}", rows, as_json=json, empty=f"no aliases in {name}")


@app.command("remove")
def remove(
    ctx: typer.Context,
    address: str,
    targets: Annotated[
        list[str] | None, typer.Argument(help="Only these targets (default: the whole alias)")
    ] = None,
) -> None:
    """Remove an alias, or some of its targets (the alias goes with its last target)."""
    parsed = EmailAddress.hosted(address)
    only = [EmailAddress.parse(target) for target in targets or ()]
    with_runtime(ctx, lambda rt: rt.services.aliases.remove_alias(OPERATOR, parsed, only or None))
    if only:
        done(f"alias {parsed} no longer sends to {', '.join(str(t) for t in only)}")
    else:
        done(f"alias {parsed} removed")


@catchall_app.command("show")
def show_(ctx: typer.Context, domain: str) -> None:
    """Where the domain's mail for unknown addresses goes."""
    name = DomainName.parse(domain)
    found = with_runtime(ctx, lambda rt: rt.services.aliases.catch_all(OPERATOR, name))
    target = "refused (no catch-all)" if found.mailbox is None else f"to {found.mailbox}"
    typer.echo(f"unknown addresses of {name}: {target}")


@catchall_app.command("set")
def set_(ctx: typer.Context, domain: str, mailbox: str) -> None:
    """Send the domain's mail for unknown addresses to a mailbox of yours."""
    name = DomainName.parse(domain)
    to = EmailAddress.hosted(mailbox)
    found = with_runtime(ctx, lambda rt: rt.services.aliases.set_catch_all(OPERATOR, name, to))
    done(f"mail for unknown addresses of {name} goes to {found.mailbox}")


@catchall_app.command("clear")
def clear(ctx: typer.Context, domain: str) -> None:
    """Refuse the domain's mail for unknown addresses again (the default)."""
    name = DomainName.parse(domain)
    with_runtime(ctx, lambda rt: rt.services.aliases.clear_catch_all(OPERATOR, name))
    done(f"mail for unknown addresses of {name} is refused")
