"""Two-factor authentication in the panel: a login's own set-up page, and the login's
second step (the code, or the set-up a provider requires) before a session opens.

The QR code is drawn here as inline SVG (no script, no request elsewhere); pages that
show a secret (the QR code, recovery codes) are sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request, Response
from markupsafe import Markup

from mailhost.errors import MailhostError, NotFound
from mailhost.model.logins import BadCredentials
from mailhost.services.sessions import Login
from mailhost.services.two_factor import Enrolment, PendingLogin
from mailhost.web.dependencies import PENDING_COOKIE, AnySession, Ctx, clear_pending_cookie
from mailhost.web.errors import status_for
from mailhost.web.pages import LEVEL_NAMES, home_of, render, see_other
from mailhost.web.panel.login import client_of, open_session

router = APIRouter()
Code = Annotated[str, Form(max_length=64)]
Proof = Annotated[str, Form(max_length=1024)]
WRONG_CODE = "The code is not correct. Type the 6 digits your app shows now, or a recovery code."


def qr_code(enrolment: Enrolment) -> Markup:
    """The otpauth:// URI as an SVG QR code; segno writes only paths from our own data."""
    svg = segno.make(enrolment.uri, error="m").svg_inline(scale=5, border=4, light="#fff")
    return Markup(svg)  # noqa: S704 - made by segno from the URI, no user text in it


async def _secret_page(
    request: Request, template: str, status: int = 200, **values: object
) -> Response:
    response = await render(request, template, status=status, **values)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _own_page(
    request: Request, ctx: Ctx, session: AnySession, error: MailhostError | None = None
) -> Response:
    state = await ctx.access.two_factor.status(session.login)
    return await _secret_page(
        request,
        "two_factor/own.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        state=state,
        qr=None if state.pending is None else qr_code(state.pending),
        login_name=session.login.subject,
    )


@router.get("/two-factor")
async def own(request: Request, ctx: Ctx, session: AnySession) -> Response:
    return await _own_page(request, ctx, session)


@router.post("/two-factor/start")
async def start(request: Request, ctx: Ctx, session: AnySession) -> Response:
    try:
        await ctx.access.two_factor.start(session.login)
    except MailhostError as exc:
        return await _own_page(request, ctx, session, exc)
    return see_other("/two-factor")


@router.post("/two-factor/confirm")
async def confirm(request: Request, ctx: Ctx, session: AnySession, code: Code) -> Response:
    try:
        codes = await ctx.access.two_factor.confirm(session.login, code, client_of(request))
    except MailhostError as exc:
        return await _own_page(request, ctx, session, exc)
    return await _codes_page(request, codes, "/two-factor", fresh=True)


@router.post("/two-factor/recovery-codes")
async def recovery_codes(request: Request, ctx: Ctx, session: AnySession, code: Code) -> Response:
    try:
        codes = await ctx.access.two_factor.new_recovery_codes(
            session.login, code, client_of(request)
        )
    except MailhostError as exc:
        return await _own_page(request, ctx, session, exc)
    return await _codes_page(request, codes, "/two-factor", fresh=False)


@router.post("/two-factor/off")
async def turn_off(request: Request, ctx: Ctx, session: AnySession, proof: Proof) -> Response:
    try:
        await ctx.access.two_factor.turn_off(session.login, proof, client_of(request))
    except MailhostError as exc:
        return await _own_page(request, ctx, session, exc)
    return see_other("/two-factor", "two_factor_off")


async def _codes_page(request: Request, codes: list[str], onward: str, *, fresh: bool) -> Response:
    return await _secret_page(
        request, "two_factor/recovery_codes.html", codes=codes, onward=onward, fresh=fresh
    )


async def _pending(request: Request, ctx: Ctx) -> PendingLogin | None:
    token = request.cookies.get(PENDING_COOKIE, "")
    return await ctx.access.two_factor.pending(token) if token else None


def _expired(request: Request) -> Response:
    """No pending login (or no longer): back to the start, to log in again."""
    response = see_other("/")
    clear_pending_cookie(request, response)
    return response


async def _step_page(
    request: Request, pending: PendingLogin, *, status: int = 200, error: str | None = None
) -> Response:
    template = "two_factor/login_code.html" if pending.enrol is None else "two_factor/enrol.html"
    return await _secret_page(
        request,
        template,
        status=status,
        error=error,
        pending=pending,
        title=LEVEL_NAMES[pending.kind],
        qr=None if pending.enrol is None else qr_code(pending.enrol),
    )


@router.get("/login/two-factor/code")
async def code_form(request: Request, ctx: Ctx) -> Response:
    pending = await _pending(request, ctx)
    if pending is None or pending.enrol is not None:
        return _expired(request) if pending is None else see_other("/login/two-factor/enrol")
    return await _step_page(request, pending)


@router.post("/login/two-factor/code")
async def code_given(request: Request, ctx: Ctx, code: Code) -> Response:
    pending = await _pending(request, ctx)
    if pending is None or pending.enrol is not None:
        return _expired(request) if pending is None else see_other("/login/two-factor/enrol")
    token = request.cookies.get(PENDING_COOKIE, "")
    try:
        outcome = await ctx.access.two_factor.finish(token, code, client_of(request))
    except NotFound:
        return _expired(request)
    if not isinstance(outcome, Login):
        return await _step_page(request, pending, status=401, error=WRONG_CODE)
    return await open_session(request, ctx, outcome, see_other(home_of(outcome.actor)))


@router.get("/login/two-factor/enrol")
async def enrol_form(request: Request, ctx: Ctx) -> Response:
    pending = await _pending(request, ctx)
    if pending is None or pending.enrol is None:
        return _expired(request) if pending is None else see_other("/login/two-factor/code")
    return await _step_page(request, pending)


@router.post("/login/two-factor/enrol")
async def enrol_given(request: Request, ctx: Ctx, code: Code) -> Response:
    pending = await _pending(request, ctx)
    if pending is None or pending.enrol is None:
        return _expired(request) if pending is None else see_other("/login/two-factor/code")
    token = request.cookies.get(PENDING_COOKIE, "")
    try:
        outcome = await ctx.access.two_factor.finish_enrolment(token, code, client_of(request))
    except NotFound:
        return _expired(request)
    if isinstance(outcome, BadCredentials):
        return await _step_page(request, pending, status=401, error=WRONG_CODE)
    login, codes = outcome
    response = await _codes_page(request, codes, home_of(login.actor), fresh=True)
    return await open_session(request, ctx, login, response)
