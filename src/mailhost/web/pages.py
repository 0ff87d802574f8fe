"""Rendering panel pages: templates loaded once, the values every page shows, redirects."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from mailhost.interfaces import LoginKind
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
from mailhost.model.quantities import ByteSize
from mailhost.services.audit_text import describe as describe_audit_entry
from mailhost.web.dependencies import expected_csrf, optional_session, web_context

TEMPLATES_DIR = Path(__file__).parent / "templates"

LEVEL_NAMES: dict[LoginKind, str] = {
    "provider": "Provider admin",
    "customer": "Customer Level",
    "domain": "Domain Name Level",
    "user": "Domain user",
}

# Shown after a change (?done=key); fixed texts, so a crafted link cannot put words on a page.
NOTICES = {
    "user_added": "The user was added.",
    "user_removed": "The user was removed, with its mailbox and SMTP account.",
    "password_changed": "The password was changed.",
    "mailbox_added": "The POP3 mailbox was added.",
    "mailbox_removed": "The POP3 mailbox was removed.",
    "smtp_added": "The SMTP account was added.",
    "smtp_changed": "The SMTP account's facilities were changed; they apply to the next session.",
    "mailbox_changed": "The mailbox quota was changed.",
    "smtp_removed": "The SMTP account was removed.",
    "domain_added": "The domain was added.",
    "domain_removed": "The domain was removed, with its users and their mail.",
    "domain_verified": "The domain is verified: it receives mail.",
    "domain_changed": "The domain was changed.",
    "postmaster_changed": "Postmaster and abuse mail go where you chose.",
    "plan_added": "The plan was added.",
    "customer_added": "The customer was added.",
    "customer_changed": "The customer was changed.",
    "contact_changed": "The contact address was changed.",
    "recovery_changed": "The recovery address was changed.",
    "domain_password_changed": "The Domain Name Level password was changed.",
    "customer_removed": "The customer was removed, with its domains and their mail.",
    "token_revoked": "The API token was revoked.",
    "two_factor_off": "Two-factor authentication is off.",
    "app_password_revoked": "The app password was revoked: it no longer opens the mailbox.",
    "notices_on": "New-address login notices are on.",
    "notices_off": "New-address login notices are off.",
    "password_reset": "Your new password is set. Log in with it.",
    "logged_out": "You are logged out.",
}


def load_templates() -> Jinja2Templates:
    """Read every template once (blocking: call before serving, or in a thread)."""
    sources = {
        str(path.relative_to(TEMPLATES_DIR)): path.read_text(encoding="utf-8")
        for path in TEMPLATES_DIR.rglob("*.html")
    }
    environment = jinja2.Environment(
        loader=jinja2.DictLoader(sources),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["size"] = _size
    environment.filters["when"] = _when
    environment.filters["audit_sentence"] = describe_audit_entry
    return Jinja2Templates(env=environment)


def _size(value: int | ByteSize | None) -> str:
    if value is None:
        return "unlimited"
    return str(value if isinstance(value, ByteSize) else ByteSize(max(0, value)))


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def home_of(actor: Actor) -> str:
    """The first page of a login's level."""
    if isinstance(actor, ProviderActor):
        return "/provider/"
    if isinstance(actor, CustomerActor):
        return "/customer/"
    if isinstance(actor, DomainActor):
        return f"/domain/{actor.domain.ascii}/"
    return "/user/"


async def render(
    request: Request, template: str, *, status: int = 200, **values: object
) -> Response:
    context = web_context(request)
    session = await optional_session(request)
    done = request.query_params.get("done", "")
    page: dict[str, object] = {
        "session": session,
        "actor": None if session is None else session.actor,
        "level": None if session is None else LEVEL_NAMES[session.login.kind],
        "home": None if session is None else home_of(session.actor),
        "csrf": await expected_csrf(request),
        "notice": NOTICES.get(done),
        "error": None,
        "errors": {},  # field name -> refusal, shown at that field (web/forms.py)
        "domain": None,
        "server": context.settings.server.hostname,
    }
    page.update(values)
    return context.templates.TemplateResponse(request, template, page, status_code=status)


def see_other(url: str, done: str | None = None) -> Response:
    """Post/redirect/get: a reload after a change does not repeat it."""
    return RedirectResponse(url if done is None else f"{url}?done={done}", status_code=303)
