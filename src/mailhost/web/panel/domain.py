"""Domain Name Level pages: the portal, Domain Name Users and POP3 Mailbox Usage.

Every page names its domain in the URL; the services check it against the
login (a domain login sees only itself, a customer its own domains), so a
crafted URL for another tenant's domain answers "not hosted here".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import InvalidAddress, MailhostError, UserExists, WeakPassword
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import DomainRecord, MailboxRecord
from mailhost.web.confirm import Confirm, Confirmation, ask_first, confirmation_page, is_confirmed
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.lists import MAILBOXES, USERS, Column, panel_list
from mailhost.web.pages import render, see_other

router = APIRouter(prefix="/domain/{domain}")
USER_COLUMNS = (
    Column("Username", "name"),
    Column("Address"),
    Column("POP3 mailbox", "mailbox"),
    Column("SMTP account", "smtp"),
    Column("New password"),
    Column(""),
)
MAILBOX_COLUMNS = (
    Column("Mailbox", "name"),
    Column("Used", "used", numeric=True),
    Column("Quota", "quota", numeric=True),
    Column("Usage", "percent", numeric=True),
    Column(""),
    Column(""),
)
FormText = Annotated[str, Form(max_length=1024)]
ShortText = Annotated[str, Form(max_length=254)]


async def managed(ctx: Ctx, session: ManagerSession, domain: str) -> DomainRecord:
    return await ctx.accounts.domain(session.actor, DomainName.parse(domain))


def address_in(domain: DomainRecord, username: str) -> EmailAddress:
    return EmailAddress.hosted(f"{username}@{domain.name.ascii}")


@router.get("/")
async def portal(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    found = await managed(ctx, session, domain)
    users = await ctx.users.users(session.actor, found.name)
    return await render(
        request,
        "domain/portal.html",
        domain=found.name.ascii,
        record=found,
        users=users,
        free=[u for u in users if not u.has_smtp_account],
    )


async def _users_page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    exc: MailhostError | FieldRefused | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    found = await managed(ctx, session, domain)
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "domain/users.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        values=typed or {"username": "", "recovery": ""},
        domain=found.name.ascii,
        users=panel_list(
            request,
            await ctx.users.users(session.actor, found.name),
            USERS,
            USER_COLUMNS,
            label="Find a user",
            empty="No users yet.",
        ),
    )


@router.get("/users")
async def users(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    return await _users_page(request, ctx, session, domain)


@router.post("/users")
async def add_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: ShortText,
    password: FormText,
    recovery: ShortText = "",
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        with field("username"):
            address = address_in(found, username)
        # One call checks all three: each refusal kind belongs to one field.
        with (
            field("username", UserExists),
            field("recovery", InvalidAddress),
            field("password", WeakPassword),
        ):
            await ctx.users.add_user(session.actor, address, password, recovery.strip() or None)
    except (MailhostError, FieldRefused) as exc:
        typed = {"username": username, "recovery": recovery}  # never the password
        return await _users_page(request, ctx, session, domain, exc, typed)
    return see_other(f"/domain/{found.name.ascii}/users", "user_added")


@router.post("/users/{username}/password")
async def change_password(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    password: FormText,
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        await ctx.users.change_password(session.actor, address_in(found, username), password)
    except MailhostError as exc:
        return await _users_page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/users", "password_changed")


@router.get("/users/{username}/remove")
async def confirm_remove_user(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    found = await managed(ctx, session, domain)
    user = await ctx.users.user(session.actor, address_in(found, username))
    address, here = user.address, f"/domain/{found.name.ascii}/users"
    consequences = [f"{address} is deleted, with its password, app passwords and logins."]
    if user.has_mailbox:
        mailbox = await ctx.users.mailbox(session.actor, address)
        consequences.append(_mail_lost(mailbox))
    if user.has_smtp_account:
        consequences.append("Its SMTP account goes too: it can no longer send mail from here.")
    consequences.append(f"Mail to {address} is refused from then on.")
    return await confirmation_page(
        request,
        Confirmation(
            f"Remove user {address}?",
            tuple(consequences),
            f"Remove {address}",
            f"{here}/{address.local}/remove",
            here,
        ),
    )


def _mail_lost(mailbox: MailboxRecord) -> str:
    if mailbox.used_bytes == 0:
        return "Its POP3 mailbox is deleted; it holds no mail."
    return f"Its POP3 mailbox is deleted with the {ByteSize(mailbox.used_bytes)} of mail in it."


@router.post("/users/{username}/remove")
async def remove_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    confirm: Confirm = "",
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/domain/{domain}/users/{username}/remove")
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        await ctx.users.remove_user(session.actor, address)
    except MailhostError as exc:
        return await _users_page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/users", "user_removed")


def parse_quota(raw: str) -> ByteSize | None:
    """The quota field: empty or "unlimited" for none."""
    with field("quota"):
        text = raw.strip()
        return None if text.lower() in ("", "unlimited") else ByteSize.parse(text)


async def _mailboxes_page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    exc: MailhostError | FieldRefused | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    shown = await ctx.users.domain_mailboxes(session.actor, DomainName.parse(domain))
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "domain/mailboxes.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        errors=errors,
        values=typed or {"username": "", "quota": "250MB"},
        allocation=shown.allocation,
        domain=shown.domain.name.ascii,
        mailboxes=panel_list(
            request,
            shown.mailboxes,
            MAILBOXES,
            MAILBOX_COLUMNS,
            label="Find a mailbox",
            empty="No POP3 mailboxes yet.",
        ),
        without=shown.without_mailbox,
    )


@router.get("/mailboxes")
async def mailboxes(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    return await _mailboxes_page(request, ctx, session, domain)


@router.post("/mailboxes")
async def add_mailbox(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: ShortText,
    quota: ShortText = "",
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        size = parse_quota(quota)
        with field("quota"):
            await ctx.users.add_mailbox(session.actor, address_in(found, username), size)
    except (MailhostError, FieldRefused) as exc:
        typed = {"username": username, "quota": quota}
        return await _mailboxes_page(request, ctx, session, domain, exc, typed)
    return see_other(f"/domain/{found.name.ascii}/mailboxes", "mailbox_added")


async def _mailbox_page(
    request: Request,
    domain: str,
    mailbox: MailboxRecord,
    quota: str,
    exc: MailhostError | FieldRefused | None = None,
) -> Response:
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "domain/mailbox.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        quota=quota,
        domain=domain,
        mailbox=mailbox,
    )


@router.get("/mailboxes/{username}")
async def mailbox(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    """The form to change one mailbox's quota, filled in with the quota it has now."""
    found = await managed(ctx, session, domain)
    current = await ctx.users.mailbox(session.actor, address_in(found, username))
    quota = "unlimited" if current.quota is None else current.quota.exact
    return await _mailbox_page(request, found.name.ascii, current, quota)


@router.post("/mailboxes/{username}")
async def change_mailbox(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    quota: ShortText = "",
) -> Response:
    found = await managed(ctx, session, domain)
    address = address_in(found, username)
    current = await ctx.users.mailbox(session.actor, address)
    try:
        size = parse_quota(quota)
        with field("quota"):
            await ctx.users.set_mailbox_quota(session.actor, address, size)
    except (MailhostError, FieldRefused) as exc:
        return await _mailbox_page(request, found.name.ascii, current, quota, exc)
    return see_other(f"/domain/{found.name.ascii}/mailboxes", "mailbox_changed")


@router.get("/mailboxes/{username}/remove")
async def confirm_remove_mailbox(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    found = await managed(ctx, session, domain)
    mailbox = await ctx.users.mailbox(session.actor, address_in(found, username))
    address, here = mailbox.address, f"/domain/{found.name.ascii}/mailboxes"
    consequences = (
        _mail_lost(mailbox),
        f"New mail to {address} is refused; the user and any SMTP account stay.",
    )
    return await confirmation_page(
        request,
        Confirmation(
            f"Remove the POP3 mailbox of {address}?",
            consequences,
            f"Remove the mailbox of {address}",
            f"{here}/{address.local}/remove",
            here,
        ),
    )


@router.post("/mailboxes/{username}/remove")
async def remove_mailbox(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    confirm: Confirm = "",
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/domain/{domain}/mailboxes/{username}/remove")
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        await ctx.users.remove_mailbox(session.actor, address)
    except MailhostError as exc:
        return await _mailboxes_page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/mailboxes", "mailbox_removed")
