"""App passwords in the panel: a user's own (create, see once, revoke), and a user's page
for the domain's managers (its app passwords to revoke, its two-factor to turn off).

The services check every address against the login, so a crafted URL for another
tenant's user answers like a missing one (404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import MailhostError
from mailhost.model.actors import UserActor
from mailhost.web.dependencies import Ctx, ManagerSession, UserSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.pages import render, see_other
from mailhost.web.panel.domain import address_in, confirmed, managed
from mailhost.web.panel.user import parse_recovery

router = APIRouter()
Name = Annotated[str, Form(max_length=200)]
Confirm = Annotated[str, Form(max_length=10)]


def _user(session: UserSession) -> UserActor:
    actor = session.actor
    assert isinstance(actor, UserActor)  # user_session checked it
    return actor


async def _own_page(
    request: Request,
    ctx: Ctx,
    session: UserSession,
    *,
    error: MailhostError | None = None,
    created: tuple[str, str] | None = None,
) -> Response:
    actor = _user(session)
    response = await render(
        request,
        "user/app_passwords.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        address=actor.address,
        app_passwords=await ctx.access.app_passwords.app_passwords(actor, actor.address),
        two_factor=await ctx.access.two_factor.user_enabled(actor, actor.address),
        created=created,
        mail_host=actor.address.domain.mail_host,
    )
    if created is not None:
        response.headers["Cache-Control"] = "no-store"  # the password is on this page only
    return response


@router.get("/user/app-passwords")
async def own(request: Request, ctx: Ctx, session: UserSession) -> Response:
    return await _own_page(request, ctx, session)


@router.post("/user/app-passwords")
async def create(request: Request, ctx: Ctx, session: UserSession, name: Name) -> Response:
    actor = _user(session)
    try:
        record, secret = await ctx.access.app_passwords.create(actor, actor.address, name)
    except MailhostError as exc:
        return await _own_page(request, ctx, session, error=exc)
    return await _own_page(request, ctx, session, created=(record.name, secret))


@router.post("/user/app-passwords/{app_password_id}/revoke")
async def revoke_own(
    request: Request, ctx: Ctx, session: UserSession, app_password_id: int
) -> Response:
    actor = _user(session)
    try:
        await ctx.access.app_passwords.revoke(actor, actor.address, app_password_id)
    except MailhostError as exc:
        return await _own_page(request, ctx, session, error=exc)
    return see_other("/user/app-passwords", "app_password_revoked")


async def _user_page(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    exc: MailhostError | FieldRefused | None = None,
    recovery: str | None = None,
) -> Response:
    found = await managed(ctx, session, domain)
    address = address_in(found, username)
    user = await ctx.users.user(session.actor, address)
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "domain/user.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        recovery=user.recovery_email or "" if recovery is None else recovery,
        domain=found.name.ascii,
        user=user,
        app_passwords=await ctx.access.app_passwords.app_passwords(session.actor, address),
        two_factor=await ctx.access.two_factor.user_enabled(session.actor, address),
    )


@router.get("/domain/{domain}/users/{username}")
async def user_page(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    return await _user_page(request, ctx, session, domain, username)


@router.post("/domain/{domain}/users/{username}/app-passwords/{app_password_id}/revoke")
async def revoke_for_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    app_password_id: int,
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        await ctx.access.app_passwords.revoke(session.actor, address, app_password_id)
    except MailhostError as exc:
        return await _user_page(request, ctx, session, domain, username, exc)
    return see_other(f"/domain/{found.name.ascii}/users/{address.local}", "app_password_revoked")


@router.post("/domain/{domain}/users/{username}/two-factor/off")
async def two_factor_off_for_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    confirm: Confirm = "",
) -> Response:
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        confirmed(confirm, f"two-factor authentication of {address}")
        await ctx.access.two_factor.turn_off_for(session.actor, "user", str(address))
    except MailhostError as exc:
        return await _user_page(request, ctx, session, domain, username, exc)
    return see_other(f"/domain/{found.name.ascii}/users/{address.local}", "two_factor_off")


@router.post("/domain/{domain}/users/{username}/recovery")
async def change_recovery(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    recovery: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    """The user's recovery address, set by the domain's manager; empty clears it."""
    found = await managed(ctx, session, domain)
    address = address_in(found, username)
    try:
        with field("recovery"):
            await ctx.users.set_recovery(session.actor, address, parse_recovery(recovery))
    except FieldRefused as exc:
        return await _user_page(request, ctx, session, domain, username, exc, recovery)
    return see_other(f"/domain/{found.name.ascii}/users/{address.local}", "recovery_changed")
