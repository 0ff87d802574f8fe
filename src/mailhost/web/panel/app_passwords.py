"""App passwords in the panel: a user's own (create, see once, revoke), and a user's page
for the domain's managers (its app passwords to revoke, its two-factor to turn off).

The services check every address against the login, so a crafted URL for another
tenant's user answers like a missing one (404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import InvalidInput, MailhostError, NotFound
from mailhost.model.actors import Actor, UserActor
from mailhost.model.names import EmailAddress
from mailhost.model.records import AppPasswordRecord
from mailhost.web.confirm import Confirm, Confirmation, ask_first, confirmation_page, is_confirmed
from mailhost.web.dependencies import Ctx, ManagerSession, UserSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.pages import render, see_other
from mailhost.web.panel.domain import address_in, managed
from mailhost.web.panel.user import parse_recovery

router = APIRouter()
Name = Annotated[str, Form(max_length=200)]


def _user(session: UserSession) -> UserActor:
    actor = session.actor
    assert isinstance(actor, UserActor)  # user_session checked it
    return actor


async def _own_page(
    request: Request,
    ctx: Ctx,
    session: UserSession,
    *,
    error: MailhostError | FieldRefused | None = None,
    created: tuple[str, str] | None = None,
    name: str = "",
) -> Response:
    actor = _user(session)
    refused, errors = (None, {}) if error is None else refusal(error)
    response = await render(
        request,
        "user/app_passwords.html",
        status=200 if refused is None else status_for(refused),
        error=None if refused is None or errors else refused.message,
        errors=errors,
        name=name,
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
async def own(request: Request, ctx: Ctx, session: UserSession, shown: str = "") -> Response:
    kept = ctx.shown_once.take(session.csrf_token, shown) if shown else None
    created = None if kept is None else (kept[0], kept[1])
    return await _own_page(request, ctx, session, created=created)


@router.post("/user/app-passwords")
async def create(request: Request, ctx: Ctx, session: UserSession, name: Name) -> Response:
    actor = _user(session)
    try:
        with field("name", InvalidInput):
            record, secret = await ctx.access.app_passwords.create(actor, actor.address, name)
    except (MailhostError, FieldRefused) as exc:
        return await _own_page(request, ctx, session, error=exc, name=name)
    # The password waits for the page this redirects to; never in the URL itself.
    shown = ctx.shown_once.keep(session.csrf_token, record.name, secret)
    return see_other(f"/user/app-passwords?shown={shown}")


@router.get("/user/app-passwords/{app_password_id}/revoke")
async def confirm_revoke_own(
    request: Request, ctx: Ctx, session: UserSession, app_password_id: int
) -> Response:
    actor = _user(session)
    revoked = await _app_password(ctx, actor, actor.address, app_password_id)
    action = f"/user/app-passwords/{revoked.id}/revoke"
    return await confirmation_page(
        request, _revoking(revoked, actor.address, action, "/user/app-passwords")
    )


@router.post("/user/app-passwords/{app_password_id}/revoke")
async def revoke_own(
    request: Request, ctx: Ctx, session: UserSession, app_password_id: int, confirm: Confirm = ""
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/user/app-passwords/{app_password_id}/revoke")
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


@router.get("/domain/{domain}/users/{username}/app-passwords/{app_password_id}/revoke")
async def confirm_revoke_for_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    app_password_id: int,
) -> Response:
    found = await managed(ctx, session, domain)
    address = address_in(found, username)
    here = f"/domain/{found.name.ascii}/users/{address.local}"
    revoked = await _app_password(ctx, session.actor, address, app_password_id)
    return await confirmation_page(
        request, _revoking(revoked, address, f"{here}/app-passwords/{revoked.id}/revoke", here)
    )


async def _app_password(
    ctx: Ctx, actor: Actor, address: EmailAddress, app_password_id: int
) -> AppPasswordRecord:
    """One of the user's app passwords, or not found (also for another user's)."""
    for app_password in await ctx.access.app_passwords.app_passwords(actor, address):
        if app_password.id == app_password_id:
            return app_password
    raise NotFound(f"{address} has no app password {app_password_id}")


def _revoking(
    app_password: AppPasswordRecord, address: EmailAddress, action: str, back: str
) -> Confirmation:
    return Confirmation(
        f"Revoke the app password “{app_password.name}” of {address}?",
        (
            "The mail program or device that uses it can no longer fetch or send mail "
            f"as {address}, from the next login on.",
            "The account's password and its other app passwords keep working.",
        ),
        f"Revoke {app_password.name}",
        action,
        back,
    )


@router.post("/domain/{domain}/users/{username}/app-passwords/{app_password_id}/revoke")
async def revoke_for_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    app_password_id: int,
    confirm: Confirm = "",
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(
            f"/domain/{domain}/users/{username}/app-passwords/{app_password_id}/revoke"
        )
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
        await ctx.access.app_passwords.revoke(session.actor, address, app_password_id)
    except MailhostError as exc:
        return await _user_page(request, ctx, session, domain, username, exc)
    return see_other(f"/domain/{found.name.ascii}/users/{address.local}", "app_password_revoked")


@router.get("/domain/{domain}/users/{username}/two-factor/off")
async def confirm_two_factor_off_for_user(
    request: Request, ctx: Ctx, session: ManagerSession, domain: str, username: str
) -> Response:
    found = await managed(ctx, session, domain)
    user = await ctx.users.user(session.actor, address_in(found, username))
    here = f"/domain/{found.name.ascii}/users/{user.address.local}"
    if not await ctx.access.two_factor.user_enabled(session.actor, user.address):
        raise NotFound(f"{user.address} has no two-factor authentication to turn off")
    consequences = (
        f"{user.address} then logs in to the panel with the password alone.",
        "Its authenticator app and recovery codes stop working; it can set up "
        "two-factor authentication again from its own page.",
    )
    return await confirmation_page(
        request,
        Confirmation(
            f"Turn off two-factor authentication of {user.address}?",
            consequences,
            "Turn it off",
            f"{here}/two-factor/off",
            here,
            deletes=False,
        ),
    )


@router.post("/domain/{domain}/users/{username}/two-factor/off")
async def two_factor_off_for_user(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    username: str,
    confirm: Confirm = "",
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/domain/{domain}/users/{username}/two-factor/off")
    try:
        found = await managed(ctx, session, domain)
        address = address_in(found, username)
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
