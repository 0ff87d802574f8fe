"""`mailhost plan add|list`."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, with_runtime
from mailhost.cli.render import done, show, size_text
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize

app = typer.Typer(help="Hosting plans and their limits.", no_args_is_help=True)


def _optional_size(raw: str | None) -> ByteSize | None:
    return None if raw is None or raw == "unlimited" else ByteSize.parse(raw)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str,
    domains: Annotated[
        int | None, typer.Option(min=0, help="Max domains (omit: unlimited)")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="Data storage, e.g. 2.5GB")] = None,
    transfer: Annotated[str | None, typer.Option(help="Monthly transfer, e.g. 40GB")] = None,
    accounts: Annotated[int | None, typer.Option(min=0, help="Max POP3/SMTP accounts")] = None,
) -> None:
    """Define a plan."""
    limits = PlanLimits(domains, _optional_size(storage), _optional_size(transfer), accounts)
    plan = with_runtime(ctx, lambda rt: rt.services.accounts.add_plan(OPERATOR, name, limits))
    done(f"plan {plan.name!r} added")


@app.command("list")
def list_(
    ctx: typer.Context, json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """List plans."""
    plans = with_runtime(ctx, lambda rt: rt.services.accounts.plans(OPERATOR))
    rows: list[dict[str, object]] = [
        {
            "name": p.name,
            "domains": size_text(p.limits.max_domains),
            "storage": size_text(p.limits.storage),
            "transfer": size_text(p.limits.transfer),
            "accounts": size_text(p.limits.max_accounts),
        }
        for p in plans
    ]
    if json:
        rows = [
            {
                "name": p.name,
                "max_domains": p.limits.max_domains,
                "storage_bytes": None if p.limits.storage is None else p.limits.storage.bytes,
                "transfer_bytes": None if p.limits.transfer is None else p.limits.transfer.bytes,
                "max_accounts": p.limits.max_accounts,
            }
            for p in plans
        ]
    show("Plans", rows, as_json=json, empty="no plans")
