"""`mailhost usage`: each customer's use against its plan."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, with_runtime
from mailhost.cli.render import show, size_text
from mailhost.model.quantities import ByteSize
from mailhost.model.records import UsageRecord


def _of(used: str, limit: object) -> str:
    return f"{used} / {size_text(limit)}"


def _row(u: UsageRecord) -> dict[str, object]:
    limits = u.plan.limits
    return {
        "customer": u.customer_login,
        "plan": u.plan.name,
        "domains": _of(str(u.domains), limits.max_domains),
        "accounts": _of(str(u.accounts), limits.max_accounts),
        "storage": _of(str(ByteSize(u.storage_bytes)), limits.storage),
        f"transfer {u.month}": _of(str(ByteSize(u.transfer_bytes)), limits.transfer),
    }


def _json_row(u: UsageRecord) -> dict[str, object]:
    limits = u.plan.limits
    return {
        "customer": u.customer_login,
        "plan": u.plan.name,
        "month": u.month,
        "domains": u.domains,
        "max_domains": limits.max_domains,
        "accounts": u.accounts,
        "max_accounts": limits.max_accounts,
        "storage_bytes": u.storage_bytes,
        "storage_limit_bytes": None if limits.storage is None else limits.storage.bytes,
        "transfer_bytes": u.transfer_bytes,
        "transfer_limit_bytes": None if limits.transfer is None else limits.transfer.bytes,
    }


def usage(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show usage against the plan (domains, accounts, storage, transfer this month)."""
    records = with_runtime(ctx, lambda rt: rt.services.usage.report(OPERATOR, customer))
    rows = [_json_row(u) if json else _row(u) for u in records]
    show("Usage", rows, as_json=json, empty="no customers")
