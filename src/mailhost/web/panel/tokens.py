"""API tokens of the logged-in login: create (the secret is shown once) and revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import MailhostError
from mailhost.model.actors import DomainActor
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.pages import render, see_other

router = APIRouter(prefix="/tokens")


async def _page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    *,
    error: MailhostError | None = None,
    secret: str | None = None,
    status: int = 200,
) -> Response:
    actor = session.actor
    return await render(
        request,
        "tokens.html",
        status=status if error is None else status_for(error),
        error=None if error is None else error.message,
        domain=actor.domain.ascii if isinstance(actor, DomainActor) else None,
        tokens=await ctx.access.api_tokens.tokens(actor),
        secret=secret,
    )


@router.get("")
async def tokens(request: Request, ctx: Ctx, session: ManagerSession) -> Response:
    return await _page(request, ctx, session)


@router.post("")
async def create(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        _, secret = await ctx.access.api_tokens.create(session.actor, name)
    except MailhostError as exc:
        return await _page(request, ctx, session, error=exc)
    # Shown on this answer only; a redirect would have to carry the secret in a URL.
    return await _page(request, ctx, session, secret=secret, status=201)


@router.post("/{token_id}/revoke")
async def revoke(request: Request, ctx: Ctx, session: ManagerSession, token_id: int) -> Response:
    try:
        await ctx.access.api_tokens.revoke(session.actor, token_id)
    except MailhostError as exc:
        return await _page(request, ctx, session, error=exc)
    return see_other("/tokens", "token_revoked")
