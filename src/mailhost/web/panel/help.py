"""Help & Information pages, filled in with the reader's own domain, server names and ports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from mailhost.errors import InvalidInput, NotFound
from mailhost.model.actors import DomainActor, UserActor
from mailhost.model.names import DomainName
from mailhost.web.autoconfig import endpoints
from mailhost.web.dependencies import Ctx, optional_session
from mailhost.web.pages import render

router = APIRouter(prefix="/help")
TOPICS: dict[str, str] = {
    "users": "Domain Name Users",
    "pop3": "POP3 Mailbox Usage",
    "smtp": "SMTP Accounts",
    "postmaster": "Postmaster & abuse",
    "clients": "Setting up your mail program",
    "security": "Two-factor & app passwords",
}
DomainQuery = Annotated[str | None, Query(max_length=253)]


async def _domain(request: Request, raw: str | None) -> DomainName | None:
    if raw:
        try:
            return DomainName.parse(raw)
        except InvalidInput:
            return None
    session = await optional_session(request)
    if session is not None and isinstance(session.actor, DomainActor | UserActor):
        actor = session.actor
        return actor.domain if isinstance(actor, DomainActor) else actor.address.domain
    return None


async def _render(
    request: Request, ctx: Ctx, template: str, domain: str | None, title: str = ""
) -> Response:
    name = await _domain(request, domain)
    return await render(
        request,
        template,
        topics=TOPICS,
        domain=None if name is None else name.ascii,
        mail_domain="yourdomain.tld" if name is None else name.unicode,
        mail_host="mail.yourdomain.tld" if name is None else name.mail_host,
        endpoints=endpoints(ctx.settings),
        title=title,
    )


@router.get("/")
async def index(request: Request, ctx: Ctx, domain: DomainQuery = None) -> Response:
    return await _render(request, ctx, "help/index.html", domain)


@router.get("/{topic}")
async def topic(request: Request, ctx: Ctx, topic: str, domain: DomainQuery = None) -> Response:
    if topic not in TOPICS:
        raise NotFound(f"there is no help page {topic!r}")
    return await _render(request, ctx, f"help/{topic}.html", domain, title=TOPICS[topic])
