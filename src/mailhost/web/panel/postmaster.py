"""The Postmaster & abuse page of a domain: where its postmaster@ and abuse@ mail goes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import MailhostError
from mailhost.model.names import EmailAddress
from mailhost.services.postmaster import DEFAULT
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.pages import render, see_other
from mailhost.web.panel.domain import managed

router = APIRouter(prefix="/domain/{domain}")
Choice = Annotated[str, Form(max_length=10)]
Address = Annotated[str, Form(max_length=254)]


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
        "domain/postmaster.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        domain=found.name.ascii,
        record=found,
        mailboxes=await ctx.users.mailboxes(session.actor, found.name),
    )


@router.get("/postmaster")
async def postmaster(request: Request, ctx: Ctx, session: ManagerSession, domain: str) -> Response:
    return await _page(request, ctx, session, domain)


@router.post("/postmaster")
async def change(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    target: Choice = "default",
    address: Address = "",
    abuse: Choice = "",
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        to = EmailAddress.parse(address) if target == "address" else DEFAULT
        await ctx.postmaster.set_postmaster(session.actor, found.name, to=to, abuse=abuse == "yes")
    except MailhostError as exc:
        return await _page(request, ctx, session, domain, exc)
    return see_other(f"/domain/{found.name.ascii}/postmaster", "postmaster_changed")
