"""Who is asking: panel session cookie → Actor, the CSRF check on every form, API token → Actor."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from mailhost.interfaces import LoginKind
from mailhost.model.actors import Actor, CustomerActor, ProviderActor, UserActor
from mailhost.services.accounts import AccountService
from mailhost.services.mail_queue import MailQueueService
from mailhost.services.postmaster import PostmasterService
from mailhost.services.sessions import PanelSession
from mailhost.services.two_factor import PENDING_LIFETIME
from mailhost.services.usage import UsageService
from mailhost.services.users import UserService
from mailhost.services.web_access import WebAccess
from mailhost.settings import Settings
from mailhost.web.dns_check import DnsChecker
from mailhost.web.shown_once import ShownOnce

SESSION_COOKIE = "mailhost_session"
# A right password still waiting for its two-factor code (services/two_factor.py).
PENDING_COOKIE = "mailhost_pending"
# Forms shown before login (login, forgot password, reset) are tied to this cookie.
FORM_COOKIE = "mailhost_form"


class ServiceSet(Protocol):
    @property
    def accounts(self) -> AccountService: ...
    @property
    def users(self) -> UserService: ...
    @property
    def usage(self) -> UsageService: ...
    @property
    def postmaster(self) -> PostmasterService: ...
    @property
    def mail_queue(self) -> MailQueueService: ...


class WebRuntime(Protocol):
    """What the web app needs of mailhost.runtime.Runtime (which it may not import)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def services(self) -> ServiceSet: ...
    @property
    def web_access(self) -> WebAccess: ...


@dataclass(frozen=True, slots=True)
class WebContext:
    settings: Settings
    accounts: AccountService
    users: UserService
    usage: UsageService
    postmaster: PostmasterService
    mail_queue: MailQueueService
    access: WebAccess
    dns: DnsChecker
    templates: Jinja2Templates
    shown_once: ShownOnce


def web_context(request: Request) -> WebContext:
    context = request.app.state.mailhost
    assert isinstance(context, WebContext)
    return context


Ctx = Annotated[WebContext, Depends(web_context)]


class LoginRequired(Exception):
    """No (suitable) session: the panel redirects to the login page of `level`."""

    def __init__(self, level: LoginKind | None) -> None:
        super().__init__(level or "any")
        self.level = level


class FormRejected(Exception):
    """A POST without this session's CSRF token."""


class ApiAuthRequired(Exception):
    """An API call without a valid bearer token."""


_UNRESOLVED = object()


async def optional_session(request: Request) -> PanelSession | None:
    cached = getattr(request.state, "panel_session", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached if isinstance(cached, PanelSession) else None
    token = request.cookies.get(SESSION_COOKIE)
    session = None if not token else await web_context(request).access.sessions.resolve(token)
    request.state.panel_session = session
    return session


def form_token(request: Request) -> str:
    token = getattr(request.state, "form_token", "")
    return token if isinstance(token, str) else ""


async def expected_csrf(request: Request) -> str:
    session = await optional_session(request)
    return session.csrf_token if session is not None else form_token(request)


async def check_csrf(request: Request) -> None:
    """Every POST of the panel carries the token of the session (or of the login form)."""
    if request.method != "POST":
        return
    form = await request.form()
    sent = form.get("csrf")
    expected = await expected_csrf(request)
    if not isinstance(sent, str) or not expected:
        raise FormRejected
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise FormRejected


async def any_session(request: Request) -> PanelSession:
    session = await optional_session(request)
    if session is None:
        raise LoginRequired(None)
    return session


async def provider_session(request: Request) -> PanelSession:
    session = await optional_session(request)
    if session is None or not isinstance(session.actor, ProviderActor):
        raise LoginRequired("provider")
    return session


async def customer_session(request: Request) -> PanelSession:
    session = await optional_session(request)
    if session is None or not isinstance(session.actor, CustomerActor):
        raise LoginRequired("customer")
    return session


async def manager_session(request: Request) -> PanelSession:
    """Domain Name Level pages: a domain login, or its customer or the provider."""
    session = await optional_session(request)
    if session is None or isinstance(session.actor, UserActor):
        raise LoginRequired("domain")
    return session


async def user_session(request: Request) -> PanelSession:
    session = await optional_session(request)
    if session is None or not isinstance(session.actor, UserActor):
        raise LoginRequired("user")
    return session


AnySession = Annotated[PanelSession, Depends(any_session)]
ProviderSession = Annotated[PanelSession, Depends(provider_session)]
CustomerSession = Annotated[PanelSession, Depends(customer_session)]
ManagerSession = Annotated[PanelSession, Depends(manager_session)]
UserSession = Annotated[PanelSession, Depends(user_session)]

_bearer = HTTPBearer(auto_error=False, description="An API token made in the control panel")


async def api_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise ApiAuthRequired
    actor = await web_context(request).access.api_tokens.authenticate(credentials.credentials)
    if actor is None:
        raise ApiAuthRequired
    return actor


ApiActor = Annotated[Actor, Depends(api_actor)]


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=is_tls(request),
        path="/",
    )


def set_pending_cookie(request: Request, response: Response, token: str) -> None:
    # Strict, and only for the second step's pages: its form is this site's own page.
    response.set_cookie(
        PENDING_COOKIE,
        token,
        max_age=int(PENDING_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=is_tls(request),
        path="/login/two-factor",
    )


def clear_pending_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        PENDING_COOKIE,
        httponly=True,
        samesite="strict",
        secure=is_tls(request),
        path="/login/two-factor",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=is_tls(request), path="/"
    )
