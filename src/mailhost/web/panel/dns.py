"""The DNS page of a domain: the records to publish, a live check of what is published,
and, while the domain is pending, the check of its ownership proof ("Check now")."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mailhost.errors import MailhostError
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.pages import render, see_other
from mailhost.web.panel.domain import managed

router = APIRouter(prefix="/domain/{domain}")


async def _page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    error: MailhostError | None = None,
) -> Response:
    found = await managed(ctx, session, domain)
    records = await ctx.access.dns.records(session.actor, found.name)
    return await render(
        request,
        "domain/dns.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        domain=found.name.ascii,
        record=found,
        checked=await ctx.dns.check(records),
        server_problem=ctx.access.dns.server_problem,
    )


@router.get("/dns")
async def dns_records(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    return await _page(request, ctx, session, domain)


@router.post("/dns/verify")
async def verify(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    found = await managed(ctx, session, domain)
    try:
        await ctx.accounts.verify_domain(session.actor, found.name)
    except MailhostError as exc:
        return await _page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/dns", "domain_verified")
