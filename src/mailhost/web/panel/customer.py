"""Customer Level pages: domains with usage against the plan; add, disable or remove one; audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import InvalidInput, MailhostError
from mailhost.model.actors import CustomerActor
from mailhost.model.names import DomainName
from mailhost.web.dependencies import Ctx, CustomerSession
from mailhost.web.errors import status_for
from mailhost.web.pages import render, see_other

router = APIRouter(prefix="/customer")
FormText = Annotated[str, Form(max_length=1024)]


def _customer(session: CustomerSession) -> CustomerActor:
    actor = session.actor
    assert isinstance(actor, CustomerActor)  # customer_session checked it
    return actor


async def _dashboard(
    request: Request,
    ctx: Ctx,
    session: CustomerSession,
    error: MailhostError | None = None,
    typed: str = "",
) -> Response:
    actor = _customer(session)
    (usage,) = await ctx.usage.report(actor, actor.login)
    return await render(
        request,
        "customer/dashboard.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        usage=usage,
        limits=usage.plan.limits,
        domains=await ctx.accounts.domains(actor),
        typed=typed,
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
        await ctx.accounts.add_domain(actor, DomainName.parse(name), actor.login, password)
    except MailhostError as exc:
        return await _dashboard(request, ctx, session, exc, typed=name)
    return see_other("/customer/", "domain_added")


@router.get("/domains/{name}/remove")
async def confirm_remove_domain(
    request: Request, ctx: Ctx, session: CustomerSession, name: str
) -> Response:
    """Before anything is deleted: how many mailboxes and how much mail go with it."""
    summary = await ctx.accounts.domain_removal(session.actor, DomainName.parse(name))
    return await render(
        request,
        "confirm_removal.html",
        summary=summary,
        what="its users, POP3 mailboxes and SMTP accounts",
        action=f"/customer/domains/{summary.name}/remove",
        back="/customer/",
    )


@router.post("/domains/{name}/remove")
async def remove_domain(
    request: Request,
    ctx: Ctx,
    session: CustomerSession,
    name: str,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        if confirm != "yes":
            raise InvalidInput(f"tick the box to confirm removing {name} and all its users")
        await ctx.accounts.remove_domain(session.actor, DomainName.parse(name))
    except MailhostError as exc:
        return await _dashboard(request, ctx, session, exc)
    return see_other("/customer/", "domain_removed")


@router.post("/domains/{name}/enabled")
async def set_domain_enabled(
    request: Request, ctx: Ctx, session: CustomerSession, name: str, enabled: FormText
) -> Response:
    try:
        domain = DomainName.parse(name)
        await ctx.accounts.set_domain_enabled(session.actor, domain, enabled == "yes")
    except MailhostError as exc:
        return await _dashboard(request, ctx, session, exc)
    return see_other("/customer/", "domain_changed")


@router.get("/audit")
async def audit(request: Request, ctx: Ctx, session: CustomerSession) -> Response:
    entries = await ctx.access.audit.entries(session.actor, 200)
    return await render(request, "customer/audit.html", entries=entries)
