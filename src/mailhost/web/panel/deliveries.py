"""The Delivery page (like cPanel's Track Delivery): the delivery log, searched and paged.

One page at three levels: the provider's (/provider/deliveries, all mail, mailhost's
own too), a customer's (/customer/deliveries, its domains') and a domain's
(/domain/<name>/deliveries). The search is a GET form, so a result can be bookmarked;
the service decides what each login may read.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from mailhost.errors import MailhostError
from mailhost.model.actors import Actor
from mailhost.model.delivery_log import (
    DEFAULT_PAGE,
    MAX_SEARCH,
    STATUSES,
    DeliveryLogQuery,
    parse_status,
)
from mailhost.model.names import DomainName
from mailhost.web.dependencies import Ctx, CustomerSession, ManagerSession, ProviderSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.pages import render
from mailhost.web.panel.domain import managed

router = APIRouter()
Search = Annotated[str, Query(max_length=MAX_SEARCH)]
Short = Annotated[str, Query(max_length=253)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


async def _page(
    request: Request,
    ctx: Ctx,
    actor: Actor,
    *,
    path: str,
    typed: dict[str, str],
    offset: int,
    fixed_domain: DomainName | None = None,
    domains: list[str] | None = None,
) -> Response:
    """`typed` is the form as sent (kept as it was on a refusal); `domains` the choices
    of a customer's domain filter (None: a text field for the provider, or no field)."""
    error: MailhostError | None = None
    errors: dict[str, str] = {}
    page = None
    query = DeliveryLogQuery()
    try:
        with field("status"):
            status = parse_status(typed["status"])
        with field("domain"):
            domain = DomainName.parse(typed["domain"]) if typed["domain"] else fixed_domain
            query = DeliveryLogQuery(typed["q"].strip(), status, domain, DEFAULT_PAGE, offset)
            page = await ctx.mail_queue.delivery_log(actor, query)
    except (MailhostError, FieldRefused) as exc:
        error, errors = refusal(exc)
    return await render(
        request,
        "deliveries.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        path=path,
        typed=typed,
        query=query,
        page=page,
        statuses=STATUSES,
        domains=domains,
        domain_field=fixed_domain is None,
        domain=None if fixed_domain is None else fixed_domain.ascii,
        links=_links(path, typed, query, page.total if page is not None else 0),
    )


def _links(path: str, typed: dict[str, str], query: DeliveryLogQuery, total: int) -> dict[str, str]:
    """The newer and older pages, with the same search."""
    kept = {name: value for name, value in typed.items() if value}
    links = {"newer": "", "older": ""}
    if query.offset > 0:
        newer = {**kept, "offset": str(query.newer)} if query.newer else kept
        links["newer"] = f"{path}?{urlencode(newer)}" if newer else path
    if query.older < total:
        links["older"] = f"{path}?{urlencode({**kept, 'offset': str(query.older)})}"
    return links


def _typed(q: str, status: str, domain: str = "") -> dict[str, str]:
    return {"q": q, "status": status.strip(), "domain": domain.strip()}


@router.get("/provider/deliveries")
async def provider_deliveries(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    q: Search = "",
    status: Short = "",
    domain: Short = "",
    offset: Offset = 0,
) -> Response:
    return await _page(
        request,
        ctx,
        session.actor,
        path="/provider/deliveries",
        typed=_typed(q, status, domain),
        offset=offset,
    )


@router.get("/customer/deliveries")
async def customer_deliveries(
    request: Request,
    ctx: Ctx,
    session: CustomerSession,
    q: Search = "",
    status: Short = "",
    domain: Short = "",
    offset: Offset = 0,
) -> Response:
    owned = await ctx.accounts.domains(session.actor)
    return await _page(
        request,
        ctx,
        session.actor,
        path="/customer/deliveries",
        typed=_typed(q, status, domain),
        offset=offset,
        domains=sorted(d.name.ascii for d in owned),
    )


@router.get("/domain/{domain}/deliveries")
async def domain_deliveries(
    request: Request,
    ctx: Ctx,
    session: ManagerSession,
    domain: str,
    q: Search = "",
    status: Short = "",
    offset: Offset = 0,
) -> Response:
    found = await managed(ctx, session, domain)  # another tenant's domain: "not hosted here"
    return await _page(
        request,
        ctx,
        session.actor,
        path=f"/domain/{found.name.ascii}/deliveries",
        typed=_typed(q, status),
        offset=offset,
        fixed_domain=found.name,
    )
