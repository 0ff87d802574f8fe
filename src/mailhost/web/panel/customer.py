"""Customer Level pages: domains with usage against the plan; add, disable or remove one, set
its manager's password; the contact address; audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import AlreadyExists, InvalidInput, MailhostError, WeakPassword
from mailhost.model.actors import CustomerActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.services.audit import MAX_ENTRIES
from mailhost.web.confirm import Confirm, ask_first, confirmation_page, is_confirmed
from mailhost.web.dependencies import Ctx, CustomerSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.lists import AUDIT, AUDIT_COLUMNS, DOMAINS, Column, panel_list
from mailhost.web.pages import render, see_other
from mailhost.web.panel.confirmations import disabling_domain, removing

router = APIRouter(prefix="/customer")
DOMAIN_COLUMNS = (
    Column("Domain", "name"),
    Column("Mail server"),
    Column("Status", "status"),
    Column(""),
    Column(""),
    Column(""),
)
FormText = Annotated[str, Form(max_length=1024)]


def _customer(session: CustomerSession) -> CustomerActor:
    actor = session.actor
    assert isinstance(actor, CustomerActor)  # customer_session checked it
    return actor


async def _dashboard(
    request: Request,
    ctx: Ctx,
    session: CustomerSession,
    exc: MailhostError | FieldRefused | None = None,
    typed: str = "",
    contact: str | None = None,
) -> Response:
    actor = _customer(session)
    (usage,) = await ctx.usage.report(actor, actor.login)
    error, errors = (None, {}) if exc is None else refusal(exc)
    if contact is None:
        contact = (await ctx.accounts.customer(actor, actor.login)).contact_email
    owned = await ctx.accounts.domains(actor)
    return await render(
        request,
        "customer/dashboard.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        contact=contact,
        usage=usage,
        limits=usage.plan.limits,
        domains=panel_list(
            request,
            owned,
            DOMAINS,
            DOMAIN_COLUMNS,
            label="Find a domain",
            empty="No domains yet: add your first one below.",
        ),
        typed=typed,
        domain_names=[domain.name for domain in owned],
    )


@router.get("/")
async def dashboard(request: Request, ctx: Ctx, session: CustomerSession) -> Response:
    return await _dashboard(request, ctx, session)


@router.post("/domains")
async def add_domain(
    request: Request, ctx: Ctx, session: CustomerSession, name: FormText, password: FormText
) -> Response:
    actor = _customer(session)
    try:
        with field("name"):
            domain = DomainName.parse(name)
        with field("name", AlreadyExists), field("password", WeakPassword):
            await ctx.accounts.add_domain(actor, domain, actor.login, password)
    except (MailhostError, FieldRefused) as exc:
        return await _dashboard(request, ctx, session, exc, typed=name)
    return see_other("/customer/", "domain_added")


@router.get("/domains/{name}/remove")
async def confirm_remove_domain(
    request: Request, ctx: Ctx, session: CustomerSession, name: str
) -> Response:
    """Before anything is deleted: how many mailboxes and how much mail go with it."""
    summary = await ctx.accounts.domain_removal(session.actor, DomainName.parse(name))
    base = f"/customer/domains/{summary.name}"
    return await confirmation_page(request, removing(summary, base, "/customer/"))


@router.post("/domains/{name}/remove")
async def remove_domain(
    request: Request, ctx: Ctx, session: CustomerSession, name: str, confirm: Confirm = ""
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/customer/domains/{name}/remove")
    try:
        await ctx.accounts.remove_domain(session.actor, DomainName.parse(name))
    except MailhostError as exc:
        return await _dashboard(request, ctx, session, exc)
    return see_other("/customer/", "domain_removed")


@router.get("/domains/{name}/disable")
async def confirm_disable_domain(
    request: Request, ctx: Ctx, session: CustomerSession, name: str
) -> Response:
    domain = await ctx.accounts.domain(session.actor, DomainName.parse(name))
    base = f"/customer/domains/{domain.name.ascii}"
    return await confirmation_page(request, disabling_domain(domain, base, "/customer/"))


@router.post("/domains/{name}/enabled")
async def set_domain_enabled(
    request: Request,
    ctx: Ctx,
    session: CustomerSession,
    name: str,
    enabled: FormText,
    confirm: Confirm = "",
) -> Response:
    if enabled != "yes" and not is_confirmed(confirm):
        return ask_first(f"/customer/domains/{name}/disable")
    try:
        domain = DomainName.parse(name)
        await ctx.accounts.set_domain_enabled(session.actor, domain, enabled == "yes")
    except MailhostError as exc:
        return await _dashboard(request, ctx, session, exc)
    return see_other("/customer/", "domain_changed")


@router.post("/contact")
async def change_contact(
    request: Request, ctx: Ctx, session: CustomerSession, email: FormText = ""
) -> Response:
    """The customer's own contact address, where notices and its reset links go."""
    actor = _customer(session)
    try:
        with field("email"):
            await ctx.accounts.set_contact(actor, actor.login, EmailAddress.parse(email))
    except FieldRefused as exc:
        return await _dashboard(request, ctx, session, exc, contact=email)
    return see_other("/customer/", "contact_changed")


@router.post("/domain-password")
async def set_domain_password(
    request: Request,
    ctx: Ctx,
    session: CustomerSession,
    domain: FormText = "",
    password: FormText = "",
    confirm: FormText = "",
) -> Response:
    """A new password for a domain's Domain Name Level login (its manager's)."""
    try:
        with field("domain"):
            name = DomainName.parse(domain)
        with field("domain_password"):
            if password != confirm:
                raise InvalidInput("the two passwords are not the same")
            await ctx.accounts.set_domain_password(session.actor, name, password)
    except FieldRefused as exc:
        return await _dashboard(request, ctx, session, exc)
    return see_other("/customer/", "domain_password_changed")


@router.get("/audit")
async def audit(request: Request, ctx: Ctx, session: CustomerSession) -> Response:
    entries = await ctx.access.audit.entries(session.actor, MAX_ENTRIES)
    listed = panel_list(
        request,
        entries,
        AUDIT,
        AUDIT_COLUMNS,
        label="Find a change",
        empty="No changes recorded yet.",
    )
    return await render(request, "customer/audit.html", entries=listed)
