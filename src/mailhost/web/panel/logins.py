"""Recent logins of the logged-in login, at every level: its own history and no one else's."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mailhost.web.dependencies import AnySession, Ctx
from mailhost.web.pages import render

router = APIRouter(prefix="/logins")


@router.get("")
async def recent_logins(request: Request, ctx: Ctx, session: AnySession) -> Response:
    # The session's own login, never the actor's target: a customer on one of its
    # domains' pages sees the customer login's history, not the domain login's.
    return await render(
        request, "logins.html", logins=await ctx.access.history.recent(session.login)
    )
