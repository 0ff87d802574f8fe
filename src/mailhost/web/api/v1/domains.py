"""/api/v1/domains: list, add, show, disable, verify and remove domains, and their DNS records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mailhost.errors import InvalidInput
from mailhost.model.actors import Actor, CustomerActor
from mailhost.model.listing import ListQuery
from mailhost.model.names import EmailAddress
from mailhost.services import access
from mailhost.services.postmaster import DEFAULT
from mailhost.web.api.schemas import (
    DnsRecordOut,
    DnsRecordPage,
    DomainIn,
    DomainOut,
    DomainPage,
    DomainPatch,
    PasswordIn,
    window,
)
from mailhost.web.api.v1.lists import list_query
from mailhost.web.api.v1.params import (
    DomainPath,
    Limit,
    Offset,
    allowed,
    customer_login,
    domain_name,
)
from mailhost.web.dependencies import ApiActor, Ctx
from mailhost.web.lists import DOMAINS

router = APIRouter(tags=["domains"])
CustomerQuery = Annotated[str | None, Query(min_length=1, max_length=64)]
DomainMaker = Annotated[Actor, allowed(access.require_owner, "add domains")]
DomainQuery = Annotated[ListQuery, list_query(DOMAINS)]


@router.get("/domains", summary="List domains")
async def domains(
    ctx: Ctx,
    actor: ApiActor,
    query: DomainQuery,
    customer: CustomerQuery = None,
) -> DomainPage:
    """The domains the token's login may see, optionally of one customer; `q` looks in
    the name (either form of an international one), customer and status."""
    login = None if customer is None else customer_login(customer)
    page = DOMAINS.apply(await ctx.accounts.domains(actor, login), query)
    return DomainPage(items=[DomainOut.of(d) for d in page.items], total=page.total)


@router.post("/domains", status_code=201, summary="Add a domain")
async def add_domain(ctx: Ctx, actor: DomainMaker, domain: DomainIn) -> DomainOut:
    """Add a domain with its Domain Name Level password; refused at the plan's domain limit.
    A customer's token adds to its own customer; the provider names the customer."""
    if domain.customer is not None:
        owner = customer_login(domain.customer)
    elif isinstance(actor, CustomerActor):
        owner = actor.login
    else:
        raise InvalidInput("name the customer who owns the new domain")
    created = await ctx.accounts.add_domain(actor, domain_name(domain.name), owner, domain.password)
    return DomainOut.of(created)


@router.get("/domains/{domain}", summary="Show a domain")
async def domain(ctx: Ctx, actor: ApiActor, domain: DomainPath) -> DomainOut:
    """Its answer can be sent back to PATCH as it is."""
    return DomainOut.of(await ctx.accounts.domain(actor, domain_name(domain)))


@router.patch("/domains/{domain}", summary="Change a domain")
async def change_domain(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, change: DomainPatch
) -> DomainOut:
    """Disable or enable a domain (its customer or the provider); `verified: true`
    marks it verified without its DNS proof (provider only); `postmaster` and `abuse`
    say where its postmaster@ and abuse@ mail goes (its manager, customer or provider).
    Takes back what GET answered: only what differs is changed, so sending back a field
    one may not change, as it is, is no refusal."""
    name = domain_name(domain)
    found = await ctx.accounts.domain(actor, name)
    change.check_fixed(DomainOut.of(found))
    if change.verified is False and found.verified:
        raise InvalidInput(f"domain {name} is verified; it cannot be made pending again")
    if change.verified and not found.verified:
        found = await ctx.accounts.trust_domain(actor, name)
    if change.enabled is not None and change.enabled != found.enabled:
        found = await ctx.accounts.set_domain_enabled(actor, name, change.enabled)
    to = None
    if "postmaster" in change.model_fields_set:
        sent = None if change.postmaster is None else EmailAddress.parse(change.postmaster)
        if sent != found.postmaster_address:
            to = DEFAULT if sent is None else sent
    abuse = None if change.abuse == found.abuse_enabled else change.abuse
    if to is not None or abuse is not None:
        found = await ctx.postmaster.set_postmaster(actor, name, to=to, abuse=abuse)
    return DomainOut.of(found)


@router.post("/domains/{domain}/verification", summary="Check a domain's DNS proof")
async def verify_domain(ctx: Ctx, actor: ApiActor, domain: DomainPath) -> DomainOut:
    """Look for the domain's TXT record `mailhost-verification=<token>` (shown in its
    dns-records while pending) and mark the domain verified when it is there; 409
    `ownership_not_proven` says what was found instead."""
    return DomainOut.of(await ctx.accounts.verify_domain(actor, domain_name(domain)))


@router.delete(
    "/domains/{domain}", status_code=204, response_class=Response, summary="Remove a domain"
)
async def remove_domain(ctx: Ctx, actor: ApiActor, domain: DomainPath) -> Response:
    """Remove a domain with all its users, mailboxes and SMTP accounts."""
    await ctx.accounts.remove_domain(actor, domain_name(domain))
    return Response(status_code=204)


@router.get("/domains/{domain}/dns-records", summary="DNS records to publish")
async def dns_records(
    ctx: Ctx, actor: ApiActor, domain: DomainPath, limit: Limit = 100, offset: Offset = 0
) -> DnsRecordPage:
    """The records to publish for the domain (MX, SPF, DKIM, DMARC, client set-up)."""
    records = await ctx.access.dns.records(actor, domain_name(domain))
    items, total = window(records, limit, offset)
    return DnsRecordPage(items=[DnsRecordOut.of(r) for r in items], total=total)


@router.put(
    "/domains/{domain}/password",
    status_code=204,
    response_class=Response,
    summary="Set a domain's manager password",
)
async def set_password(ctx: Ctx, actor: ApiActor, domain: DomainPath, body: PasswordIn) -> Response:
    """The password of the domain's Domain Name Level login (its manager, its customer or
    the provider may set it); the manager's panel sessions end and its reset links are
    cancelled."""
    await ctx.accounts.set_domain_password(actor, domain_name(domain), body.password)
    return Response(status_code=204)
