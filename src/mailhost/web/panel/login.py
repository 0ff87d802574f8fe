"""The four logins, logout, and "Forgot password" with its reset links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response

from mailhost.errors import InvalidInput, MailhostError, WeakPassword
from mailhost.interfaces import LoginKind
from mailhost.model.logins import ClientInfo
from mailhost.services.sessions import Login
from mailhost.services.two_factor import SecondStep
from mailhost.web.dependencies import (
    SESSION_COOKIE,
    Ctx,
    clear_pending_cookie,
    clear_session_cookie,
    optional_session,
    set_pending_cookie,
    set_session_cookie,
)
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.pages import LEVEL_NAMES, home_of, render, see_other

router = APIRouter()

LOGIN_LABELS: dict[LoginKind, str] = {
    "provider": "Admin login",
    "customer": "Customer login",
    "domain": "Domain name",
    "user": "Email address",
}
Level = Annotated[LoginKind, Path()]
FormText = Annotated[str, Form(max_length=1024)]


def client_of(request: Request) -> ClientInfo:
    return ClientInfo(request.client.host if request.client else "unknown", "web")


@router.get("/")
async def start(request: Request) -> Response:
    session = await optional_session(request)
    if session is not None:
        return see_other(home_of(session.actor))
    return await render(request, "login/index.html", levels=LEVEL_NAMES)


async def _login_page(
    request: Request, level: LoginKind, *, status: int = 200, error: str | None = None
) -> Response:
    return await render(
        request,
        "login/form.html",
        status=status,
        error=error,
        kind=level,
        title=LEVEL_NAMES[level],
        label=LOGIN_LABELS[level],
    )


@router.get("/login/{level}")
async def login_form(request: Request, level: Level) -> Response:
    return await _login_page(request, level)


@router.post("/login/{level}")
async def login(
    request: Request, ctx: Ctx, level: Level, login: FormText, password: FormText
) -> Response:
    outcome = await ctx.access.logins.login(level, login, password, client_of(request))
    if not isinstance(outcome, Login):
        message = "The login or the password is not correct."
        return await _login_page(request, level, status=401, error=message)
    step = await ctx.access.two_factor.after_password(outcome)
    if isinstance(step, SecondStep):
        # No session yet: a code (or, when required, setting two-factor up) comes first.
        response = see_other("/login/two-factor/enrol" if step.enrol else "/login/two-factor/code")
        set_pending_cookie(request, response, step.token)
        return response
    return await open_session(request, ctx, outcome, see_other(home_of(outcome.actor)))


async def open_session(request: Request, ctx: Ctx, login: Login, response: Response) -> Response:
    """`response` with the cookie of a new session for `login`, in place of any other."""
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await ctx.access.sessions.close(old)
    token, _ = await ctx.access.sessions.open(login)
    set_session_cookie(request, response, token)
    clear_pending_cookie(request, response)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await ctx.access.sessions.close(token)
    response = see_other("/", "logged_out")
    clear_session_cookie(request, response)
    return response


@router.get("/forgot/{level}")
async def forgot_form(request: Request, level: Level) -> Response:
    return await render(
        request,
        "login/forgot.html",
        kind=level,
        title=LEVEL_NAMES[level],
        label=LOGIN_LABELS[level],
    )


@router.post("/forgot/{level}")
async def forgot(request: Request, ctx: Ctx, level: Level, login: FormText) -> Response:
    # The link's base comes from the configuration only: a Host header is the
    # client's to choose, and a reset link to the client's host hands it the token.
    base = ctx.settings.web.public_url
    # Answered before the lookup and the mail are done, so the time taken does not
    # tell whether the login exists.
    ctx.access.resets.submit(
        level, login, lambda token: f"{base}/reset/{token}", client_of(request)
    )
    minutes = int(ctx.access.resets.lifetime.total_seconds() // 60)
    # The same page whatever the login: it must not tell who exists.
    return await render(
        request, "login/forgot_sent.html", kind=level, title=LEVEL_NAMES[level], minutes=minutes
    )


Token = Annotated[str, Path(max_length=128)]


@router.get("/reset/{token}")
async def reset_form(request: Request, ctx: Ctx, token: Token) -> Response:
    credential = await ctx.access.resets.check(token)
    return await render(
        request, "login/reset.html", token=token, kind=credential.kind, login=credential.login
    )


@router.post("/reset/{token}")
async def reset(
    request: Request, ctx: Ctx, token: Token, password: FormText, confirm: FormText
) -> Response:
    credential = await ctx.access.resets.check(token)
    try:
        with field("confirm"):
            if password != confirm:
                raise InvalidInput("the two passwords are not the same: type the new one twice")
        with field("password", WeakPassword):
            await ctx.access.resets.complete(token, password)
    except (MailhostError, FieldRefused) as exc:
        error, errors = refusal(exc)
        return await render(
            request,
            "login/reset.html",
            status=status_for(error),
            error=None if errors else error.message,
            errors=errors,
            token=token,
            kind=credential.kind,
            login=credential.login,
        )
    response = see_other(f"/login/{credential.kind}", "password_reset")
    clear_session_cookie(request, response)
    return response
