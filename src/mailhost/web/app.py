"""The web app: the control panel (server-rendered pages) and the REST API, one FastAPI app."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from mailhost import __version__
from mailhost.services.sessions import plausible_token
from mailhost.web import api_docs, autoconfig
from mailhost.web.api.v1 import router as api_router
from mailhost.web.body_limit import BodyLimit
from mailhost.web.dependencies import FORM_COOKIE, WebContext, WebRuntime, check_csrf, is_tls
from mailhost.web.dns_check import DnsChecker
from mailhost.web.errors import install_error_handlers
from mailhost.web.pages import load_templates
from mailhost.web.panel import (
    app_passwords,
    customer,
    deliveries,
    dns,
    domain,
    help,
    login,
    logins,
    postmaster,
    provider,
    smtp,
    tokens,
    two_factor,
    user,
)
from mailhost.web.shown_once import ShownOnce

STATIC_DIR = Path(__file__).parent / "static"

# No script runs anywhere in the panel; pages, styles and forms come from here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Reset links carry their token in the path: never send it on as a Referer.
    "Referrer-Policy": "no-referrer",
}

API_DESCRIPTION = """\
The same operations as the control panel, through the same rules.

Authenticate with an API token made in the panel (Customer Level, Domain Name
Level or provider admin): `Authorization: Bearer <token>`. A token acts with
exactly the powers of the login that made it.

Errors are JSON `{"code": "...", "message": "..."}`; `code` is stable.
401 no or bad token · 403 not permitted · 404 not found (also another
tenant's objects) · 409 already exists, or a plan limit is reached
(`plan_limit_reached`) · 422 invalid input · 503 temporary failure.

Listings take `?limit=&offset=` and answer `{"items": [...], "total": n}`.

One vocabulary in and out: what a `GET` answers can be sent back to `PATCH` as it
is (fields it cannot change must come back unchanged). Size settings (`storage`,
`transfer`, `quota`, `max_message_size`) are size strings both ways: `"250MB"`,
`"2.5GB"`, `"1GiB"`; measurements such as `used_bytes` are integers of bytes.
"""


def create_web_app(runtime: WebRuntime, *, dns_checker: DnsChecker | None = None) -> FastAPI:
    """Build the app; reads the templates from disk, so call it before serving."""
    app = FastAPI(
        title="mailhost API",
        version=__version__,
        description=API_DESCRIPTION,
        # FastAPI's own pages load their scripts from a CDN: web/api_docs.py serves them.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    services = runtime.services
    app.state.mailhost = WebContext(
        settings=runtime.settings,
        accounts=services.accounts,
        users=services.users,
        usage=services.usage,
        postmaster=services.postmaster,
        mail_queue=services.mail_queue,
        access=runtime.web_access,
        dns=dns_checker or DnsChecker(),
        templates=load_templates(),
        shown_once=ShownOnce(),
    )
    install_error_handlers(app)
    app.middleware("http")(_browser_protection)
    # Added last, so outermost: bodies are bounded before any other code sees the request.
    app.add_middleware(
        BodyLimit, limit=runtime.settings.web.max_body_size, headers=SECURITY_HEADERS
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    panel = [login, provider, customer, domain, smtp, dns, postmaster, tokens, logins, user, help]
    panel += [two_factor, app_passwords, deliveries]
    for module in panel:
        app.include_router(
            module.router, include_in_schema=False, dependencies=[Depends(check_csrf)]
        )
    app.include_router(autoconfig.router, include_in_schema=False)
    app.mount(api_docs.ASSETS_PATH, api_docs.assets(), name="api-docs-assets")
    app.include_router(api_docs.router)
    app.include_router(api_router)
    return app


async def _browser_protection(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Security headers on every answer, and the cookie that ties pre-login forms to a browser."""
    token = request.cookies.get(FORM_COOKIE, "")
    fresh = not plausible_token(token)
    if fresh:
        token = secrets.token_urlsafe(32)
    request.state.form_token = token
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if fresh and not request.url.path.startswith(("/api/", "/static/")):
        response.set_cookie(
            FORM_COOKIE, token, httponly=True, samesite="strict", secure=is_tls(request), path="/"
        )
    return response
