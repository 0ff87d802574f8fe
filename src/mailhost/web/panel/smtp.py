"""Mail SMTP Authentication (SendMail) Settings: the SMTP accounts of a domain, as the seed
describes the page: the accounts with their facility identifiers, and at the base an "Add"
selection ("SMTP Account:") listing only users without one, the facilities, and "Update".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import InvalidInput, MailhostError
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.quantities import ByteSize
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.pages import render, see_other
from mailhost.web.panel.domain import address_in, confirmed, managed

router = APIRouter(prefix="/domain/{domain}/smtp")
ShortText = Annotated[str, Form(max_length=254)]
Number = Annotated[str, Form(max_length=12)]


async def _page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    error: MailhostError | None = None,
) -> Response:
    found = await managed(ctx, session, domain)
    return await render(
        request,
        "domain/smtp.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        domain=found.name.ascii,
        accounts=await ctx.users.smtp_accounts(session.actor, found.name),
        available=await ctx.users.available_users(session.actor, found.name),
    )


@router.get("")
async def smtp_settings(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str
) -> Response:
    return await _page(request, ctx, session, domain)


def _number(raw: str, what: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput(f"{what} must be a whole number (leave it empty for no limit)")
    return int(text)


def facilities_from_form(
    relay: str, sender: str, hourly: str, recipients: str, max_size: str
) -> SmtpFacilities:
    if sender not in (SenderScope.OWN.value, SenderScope.DOMAIN.value):
        raise InvalidInput("choose who the user may send as: own address or any of the domain")
    return SmtpFacilities(
        relay=relay == "yes",
        sender_scope=SenderScope(sender),
        hourly_limit=_number(hourly, "the hourly limit"),
        max_recipients=_number(recipients, "recipients per message"),
        max_message_size=ByteSize.parse(max_size) if max_size.strip() else None,
    )


@router.post("")
async def update(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    add: Annotated[str, Form(max_length=20)] = "",
    username: ShortText = "",
    relay: Annotated[str, Form(max_length=10)] = "",
    sender: Annotated[str, Form(max_length=10)] = "own",
    hourly: Number = "",
    recipients: Number = "",
    max_size: Number = "",
) -> Response:
    """The "Update" button: add the SMTP account chosen in the "Add" selection."""
    try:
        found = await managed(ctx, session, domain)
        if add != "smtp":
            raise InvalidInput('choose "SMTP Account:" in the Add selection')
        if not username:
            raise InvalidInput("choose the username to give the SMTP account to")
        facilities = facilities_from_form(relay, sender, hourly, recipients, max_size)
        await ctx.users.add_smtp_account(session.actor, address_in(found, username), facilities)
    except MailhostError as exc:
        return await _page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/smtp", "smtp_added")


@router.post("/{username}/remove")
async def remove(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        confirmed(confirm, f"the SMTP account of {address}")
        await ctx.users.remove_smtp_account(session.actor, address)
    except MailhostError as exc:
        return await _page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/smtp", "smtp_removed")
