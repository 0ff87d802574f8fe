"""A domain user's self-service page: mailbox usage, own password and recovery address,
mail client set-up, recent logins and the new-address login notice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import InvalidInput, MailhostError, WeakPassword
from mailhost.model.actors import UserActor
from mailhost.model.names import EmailAddress
from mailhost.services.sessions import Login
from mailhost.web.autoconfig import apple_profile, endpoints
from mailhost.web.dependencies import SESSION_COOKIE, Ctx, UserSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.pages import render, see_other
from mailhost.web.panel.login import client_of

router = APIRouter(prefix="/user")
FormText = Annotated[str, Form(max_length=1024)]
RecoveryText = Annotated[str, Form(max_length=254)]


def parse_recovery(raw: str) -> EmailAddress | None:
    """The recovery address field: empty for none."""
    text = raw.strip()
    return EmailAddress.parse(text) if text else None


def _user(session: UserSession) -> UserActor:
    actor = session.actor
    assert isinstance(actor, UserActor)  # user_session checked it
    return actor


async def _page(
    request: Request,
    ctx: Ctx,
    session: UserSession,
    exc: MailhostError | FieldRefused | None = None,
    recovery: str | None = None,
) -> Response:
    actor = _user(session)
    boxes = await ctx.users.mailboxes(actor, actor.address.domain)
    user = await ctx.users.user(actor, actor.address)
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "user/self.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        recovery=user.recovery_email or "" if recovery is None else recovery,
        user=user,
        mailbox=boxes[0] if boxes else None,
        endpoints=endpoints(ctx.settings),
        mail_host=actor.address.domain.mail_host,
        mail_domain=actor.address.domain.ascii,
        logins=await ctx.access.history.recent(session.login),
        notices=await ctx.access.history.notices_wanted(actor),
    )


@router.get("/")
async def self_service(request: Request, ctx: Ctx, session: UserSession) -> Response:
    return await _page(request, ctx, session)


@router.post("/password")
async def change_password(
    request: Request,
    ctx: Ctx,
    session: UserSession,
    current: FormText,
    password: FormText,
    confirm: FormText,
) -> Response:
    actor = _user(session)
    try:
        with field("current"):
            # Through the penalised login check: this form must not be a way to guess passwords.
            again = await ctx.access.logins.login(
                "user", str(actor.address), current, client_of(request)
            )
            if not isinstance(again, Login):
                raise InvalidInput("the current password is not correct")
        with field("confirm"):
            if password != confirm:
                raise InvalidInput("the two new passwords are not the same: type the new one twice")
        with field("password", WeakPassword):
            # This session stays; the user's other sessions and reset links end with it.
            session_token = request.cookies.get(SESSION_COOKIE)
            await ctx.users.change_password(
                actor, actor.address, password, current_session=session_token
            )
    except (MailhostError, FieldRefused) as exc:
        return await _page(request, ctx, session, exc)
    return see_other("/user/", "password_changed")


@router.post("/recovery")
async def change_recovery(
    request: Request, ctx: Ctx, session: UserSession, recovery: RecoveryText = ""
) -> Response:
    """The user's own recovery address; empty clears it."""
    actor = _user(session)
    try:
        with field("recovery"):
            await ctx.users.set_recovery(actor, actor.address, parse_recovery(recovery))
    except FieldRefused as exc:
        return await _page(request, ctx, session, exc, recovery)
    return see_other("/user/", "recovery_changed")


@router.post("/login-notices")
async def login_notices(
    ctx: Ctx, session: UserSession, wanted: Annotated[bool, Form()] = False
) -> Response:
    # An unticked checkbox sends nothing: absent means off.
    await ctx.access.history.want_notices(_user(session), wanted)
    return see_other("/user/", "notices_on" if wanted else "notices_off")


@router.get("/mail.mobileconfig")
async def mobileconfig(ctx: Ctx, session: UserSession) -> Response:
    actor = _user(session)
    filename = f"{actor.address.local}-{actor.address.domain.ascii}.mobileconfig"
    return Response(
        apple_profile(actor.address, ctx.settings),
        media_type="application/x-apple-aspen-config",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
