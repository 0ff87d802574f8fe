"""Mail SMTP Authentication (SendMail) Settings: the SMTP accounts of a domain, as the seed
describes the page: the accounts with their facility identifiers, and at the base an "Add"
selection ("SMTP Account:") listing only users without one, the facilities, and "Update".
Each account's facilities can be changed in place on a page of its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from mailhost.errors import InvalidInput, MailhostError
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.quantities import ByteSize
from mailhost.model.records import SmtpAccountRecord
from mailhost.web.confirm import Confirm, Confirmation, ask_first, confirmation_page, is_confirmed
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.lists import SMTP_ACCOUNTS, Column, panel_list
from mailhost.web.pages import render, see_other
from mailhost.web.panel.domain import address_in, managed

router = APIRouter(prefix="/domain/{domain}/smtp")
COLUMNS = (Column("User", "name"), Column("Facilities", "facilities"), Column(""), Column(""))
ShortText = Annotated[str, Form(max_length=254)]
Number = Annotated[str, Form(max_length=12)]
# What the facility fields hold: as typed after a refusal, else the account's or the defaults.
FormValues = dict[str, str | bool]
NEW_ACCOUNT: FormValues = {
    "relay": True,
    "sender": "own",
    "hourly": "",
    "recipients": "",
    "max_size": "",
}


def values_of(facilities: SmtpFacilities) -> FormValues:
    size = facilities.max_message_size
    return {
        "relay": facilities.relay,
        "sender": facilities.sender_scope.value,
        "hourly": "" if facilities.hourly_limit is None else str(facilities.hourly_limit),
        "recipients": "" if facilities.max_recipients is None else str(facilities.max_recipients),
        "max_size": "" if size is None else size.exact,
    }


class FacilityForm:
    """The facility fields of the add and the change form, as typed (a FastAPI dependency)."""

    def __init__(
        self,
        relay: Annotated[str, Form(max_length=10)] = "",
        sender: Annotated[str, Form(max_length=10)] = "own",
        hourly: Number = "",
        recipients: Number = "",
        max_size: Number = "",
    ) -> None:
        self.values: FormValues = {
            "relay": relay == "yes",
            "sender": sender,
            "hourly": hourly,
            "recipients": recipients,
            "max_size": max_size,
        }
        self._raw = (sender, hourly, recipients, max_size)

    def facilities(self) -> SmtpFacilities:
        """The facilities typed; a refusal names the field it is about."""
        sender, hourly, recipients, max_size = self._raw
        with field("sender"):
            if sender not in (SenderScope.OWN.value, SenderScope.DOMAIN.value):
                raise InvalidInput(
                    "choose who the user may send as: own address or any of the domain"
                )
        with field("hourly"):
            hourly_limit = _number(hourly, "the hourly limit")
        with field("recipients"):
            max_recipients = _number(recipients, "recipients per message")
        with field("max_size"):
            size = ByteSize.parse(max_size) if max_size.strip() else None
        return SmtpFacilities(
            relay=self.values["relay"] is True,
            sender_scope=SenderScope(sender),
            hourly_limit=hourly_limit,
            max_recipients=max_recipients,
            max_message_size=size,
        )


Facilities = Annotated[FacilityForm, Depends()]


async def _page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    exc: MailhostError | FieldRefused | None = None,
    values: FormValues | None = None,
) -> Response:
    found = await managed(ctx, session, domain)
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "domain/smtp.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        errors=errors,
        values=values or NEW_ACCOUNT,
        domain=found.name.ascii,
        accounts=panel_list(
            request,
            await ctx.users.smtp_accounts(session.actor, found.name),
            SMTP_ACCOUNTS,
            COLUMNS,
            label="Find an SMTP account",
            empty="No SMTP accounts yet.",
        ),
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


@router.post("")
async def update(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    form: Facilities,
    add: Annotated[str, Form(max_length=20)] = "",
    username: ShortText = "",
) -> Response:
    """The "Update" button: add the SMTP account chosen in the "Add" selection."""
    try:
        found = await managed(ctx, session, domain)
        if add != "smtp":
            raise InvalidInput('choose "SMTP Account:" in the Add selection')
        if not username:
            raise InvalidInput("choose the username to give the SMTP account to")
        facilities = form.facilities()
        await ctx.users.add_smtp_account(session.actor, address_in(found, username), facilities)
    except (MailhostError, FieldRefused) as exc:
        return await _page(request, ctx, session, domain, exc, form.values)
    return see_other(f"/domain/{found.name.ascii}/smtp", "smtp_added")


async def _account_page(
    request: Request,
    domain: str,
    account: SmtpAccountRecord,
    values: FormValues,
    exc: MailhostError | FieldRefused | None = None,
) -> Response:
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "domain/smtp_account.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        values=values,
        domain=domain,
        account=account,
    )


@router.get("/{username}")
async def account(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    """The form to change one account's facilities, filled in with what it has now."""
    found = await managed(ctx, session, domain)
    current = await ctx.users.smtp_account(session.actor, address_in(found, username))
    return await _account_page(request, found.name.ascii, current, values_of(current.facilities))


@router.post("/{username}")
async def change(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    form: Facilities,
) -> Response:
    found = await managed(ctx, session, domain)
    address = address_in(found, username)
    current = await ctx.users.smtp_account(session.actor, address)
    try:
        await ctx.users.set_smtp_facilities(session.actor, address, form.facilities())
    except (MailhostError, FieldRefused) as exc:
        return await _account_page(request, found.name.ascii, current, form.values, exc)
    return see_other(f"/domain/{found.name.ascii}/smtp", "smtp_changed")


@router.get("/{username}/remove")
async def confirm_remove(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    found = await managed(ctx, session, domain)
    account = await ctx.users.smtp_account(session.actor, address_in(found, username))
    address, here = account.address, f"/domain/{found.name.ascii}/smtp"
    consequences = (
        f"{address} can no longer send mail through this server "
        f"(its facilities now: {' '.join(account.facilities.identifiers)}).",
        "The user, any POP3 mailbox and mail already queued to go out stay.",
    )
    return await confirmation_page(
        request,
        Confirmation(
            f"Remove the SMTP account of {address}?",
            consequences,
            f"Remove the SMTP account of {address}",
            f"{here}/{address.local}/remove",
            here,
            deletes=False,
        ),
    )


@router.post("/{username}/remove")
async def remove(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    confirm: Confirm = "",
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/domain/{domain}/smtp/{username}/remove")
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        await ctx.users.remove_smtp_account(session.actor, address)
    except MailhostError as exc:
        return await _page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/smtp", "smtp_removed")
