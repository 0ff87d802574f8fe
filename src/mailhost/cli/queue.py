"""`mailhost queue list|retry|delete|log`: the outbound queue and its delivery log."""

from __future__ import annotations

from typing import Annotated

import typer

from mailhost.cli.context import OPERATOR, with_runtime
from mailhost.cli.render import done, show
from mailhost.errors import InvalidInput
from mailhost.model.delivery_log import MAX_PAGE, STATUSES, DeliveryLogQuery

app = typer.Typer(
    help="Outbound mail waiting for delivery, and what became of it.", no_args_is_help=True
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("list")
def list_(ctx: typer.Context, json: Json = False) -> None:
    """Recipients still waiting for delivery, oldest first."""
    queued = with_runtime(ctx, lambda rt: rt.services.mail_queue.queued(OPERATOR))
    rows = [
        {
            "id": d.id,
            "message": d.message_id,
            "sender": d.sender or "<>",
            "recipient": d.recipient,
            "size": d.size,
            "attempts": d.attempts,
            "next attempt": d.next_attempt_at.isoformat(timespec="seconds"),
            "expires": d.expires_at.isoformat(timespec="seconds"),
            "last reply": d.last_reply,
        }
        for d in queued
    ]
    show("Outbound queue", rows, as_json=json, empty="the queue is empty")


@app.command("retry")
def retry(
    ctx: typer.Context,
    delivery_id: Annotated[int | None, typer.Argument(help="Queue id (from `queue list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every queued recipient")] = False,
) -> None:
    """Try a queued recipient (or all of them) again now."""
    if (delivery_id is None) == (not all_):
        raise InvalidInput("give a queue id or --all (not both)")
    count = with_runtime(ctx, lambda rt: rt.services.mail_queue.retry(OPERATOR, delivery_id))
    done(f"{count} queued deliver{'y' if count == 1 else 'ies'} due now")


@app.command("delete")
def delete(
    ctx: typer.Context,
    delivery_id: Annotated[int, typer.Argument(help="Queue id (from `queue list`)")],
) -> None:
    """Drop a queued recipient without a bounce; the delivery log records it."""
    removed = with_runtime(ctx, lambda rt: rt.services.mail_queue.delete(OPERATOR, delivery_id))
    done(f"deleted queued delivery {removed.id} to {removed.recipient}")


@app.command("log")
def log(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_PAGE, help="How many entries, newest first")
    ] = 100,
    search: Annotated[
        str, typer.Option("--search", help="Part of the sender, recipient or message id")
    ] = "",
    status: Annotated[str, typer.Option("--status", help=f"One of {', '.join(STATUSES)}")] = "",
    domain: Annotated[str, typer.Option("--domain", help="Only mail of this hosted domain")] = "",
    json: Json = False,
) -> None:
    """Delivery attempts and their outcomes, newest first."""
    query = DeliveryLogQuery.parse(search, status, domain, limit=limit)
    page = with_runtime(ctx, lambda rt: rt.services.mail_queue.delivery_log(OPERATOR, query))
    rows = [
        {
            "at": e.at.isoformat(timespec="seconds"),
            "id": e.delivery_id,
            "message": e.message_id,
            "sender": e.sender or "<>",
            "recipient": e.recipient,
            "status": e.status,
            "reply": e.remote_reply,
        }
        for e in page.entries
    ]
    filtered = bool(query.search or query.status or query.domain)
    show(
        "Delivery log",
        rows,
        as_json=json,
        empty="no deliveries match" if filtered else "no deliveries yet",
    )
