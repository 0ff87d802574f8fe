"""The DNS page of a domain: the records to publish, and a live check of what is published."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.pages import render
from mailhost.web.panel.domain import managed

router = APIRouter(prefix="/domain/{domain}")


@router.get("/dns")
async def dns_records(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    found = await managed(ctx, session, domain)
    records = await ctx.access.dns.records(session.actor, found.name)
    return await render(
        request,
        "domain/dns.html",
        domain=found.name.ascii,
        checked=await ctx.dns.check(records),
    )
