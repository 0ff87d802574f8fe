"""API tokens of the logged-in login: create (the secret is shown once, after the redirect)
and revoke (after a confirmation page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import InvalidInput, MailhostError, NotFound
from mailhost.model.actors import DomainActor
from mailhost.web.confirm import Confirm, Confirmation, ask_first, confirmation_page, is_confirmed
from mailhost.web.dependencies import Ctx, ManagerSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.pages import render, see_other

router = APIRouter(prefix="/tokens")


async def _page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    *,
    error: MailhostError | FieldRefused | None = None,
    secret: str | None = None,
    name: str = "",
) -> Response:
    actor = session.actor
    refused, errors = (None, {}) if error is None else refusal(error)
    response = await render(
        request,
        "tokens.html",
        status=200 if refused is None else status_for(refused),
        error=None if refused is None or errors else refused.message,
        errors=errors,
        name=name,
        domain=actor.domain.ascii if isinstance(actor, DomainActor) else None,
        tokens=await ctx.access.api_tokens.tokens(actor),
        secret=secret,
    )
    if secret is not None:
        response.headers["Cache-Control"] = "no-store"  # the token is on this page only
    return response


@router.get("")
async def tokens(request: Request, ctx: Ctx, session: ManagerSession, shown: str = "") -> Response:
    kept = ctx.shown_once.take(session.csrf_token, shown) if shown else None
    return await _page(request, ctx, session, secret=None if kept is None else kept[0])


@router.post("")
async def create(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        with field("name", InvalidInput):
            _, secret = await ctx.access.api_tokens.create(session.actor, name)
    except (MailhostError, FieldRefused) as exc:
        return await _page(request, ctx, session, error=exc, name=name)
    # The secret waits for the page this redirects to; never in the URL itself.
    return see_other(f"/tokens?shown={ctx.shown_once.keep(session.csrf_token, secret)}")


@router.get("/{token_id}/revoke")
async def confirm_revoke(
    request: Request, ctx: Ctx, session: ManagerSession, token_id: int
) -> Response:
    owned = {t.id: t for t in await ctx.access.api_tokens.tokens(session.actor)}
    token = owned.get(token_id)
    if token is None or token.revoked_at is not None:
        raise NotFound(f"no active API token {token_id} of this login")
    consequences = (
        f"Scripts that use the token “{token.name}” get 401 Unauthorized from their next call.",
        "The login's password and its other tokens keep working.",
    )
    return await confirmation_page(
        request,
        Confirmation(
            f"Revoke the API token “{token.name}”?",
            consequences,
            f"Revoke {token.name}",
            f"/tokens/{token.id}/revoke",
            "/tokens",
        ),
    )


@router.post("/{token_id}/revoke")
async def revoke(
    request: Request, ctx: Ctx, session: ManagerSession, token_id: int, confirm: Confirm = ""
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/tokens/{token_id}/revoke")
    try:
        await ctx.access.api_tokens.revoke(session.actor, token_id)
    except MailhostError as exc:
        return await _page(request, ctx, session, error=exc)
    return see_other("/tokens", "token_revoked")
