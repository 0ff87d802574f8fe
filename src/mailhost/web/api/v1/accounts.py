"""/api/v1: who am I, plans, customers, usage and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
from mailhost.model.listing import ListQuery
from mailhost.model.names import EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.services import access
from mailhost.services.audit import MAX_ENTRIES
from mailhost.web.api.schemas import (
    AuditOut,
    AuditPage,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    MeOut,
    PlanIn,
    PlanOut,
    PlanPage,
    UsageOut,
    UsagePage,
)
from mailhost.web.api.v1.lists import list_query
from mailhost.web.api.v1.params import LoginPath, allowed, customer_login
from mailhost.web.dependencies import ApiActor, Ctx
from mailhost.web.forms import field
from mailhost.web.lists import AUDIT, CUSTOMERS, PLANS, USAGE

router = APIRouter()
PlanQuery = Annotated[ListQuery, list_query(PLANS)]
CustomerQuery = Annotated[ListQuery, list_query(CUSTOMERS)]
UsageQuery = Annotated[ListQuery, list_query(USAGE)]
AuditQuery = Annotated[ListQuery, list_query(AUDIT)]
PlanMaker = Annotated[Actor, allowed(access.require_provider, "define plans")]
CustomerMaker = Annotated[Actor, allowed(access.require_provider, "add customers")]
CustomerChanger = Annotated[Actor, allowed(access.require_owner, "change customers")]


@router.get("/me", tags=["account"], summary="Who the token acts for")
async def me(actor: ApiActor) -> MeOut:
    """The login the token acts for."""
    if isinstance(actor, ProviderActor):
        kind = "provider"
    elif isinstance(actor, CustomerActor):
        kind = "customer"
    elif isinstance(actor, DomainActor):
        kind = "domain"
    else:
        kind = "user"
    return MeOut(actor=str(actor), kind=kind)


@router.get("/plans", tags=["plans"], summary="List plans")
async def plans(ctx: Ctx, actor: ApiActor, query: PlanQuery) -> PlanPage:
    """All plans for the provider; a customer sees its own plan."""
    page = PLANS.apply(await ctx.accounts.plans(actor), query)
    return PlanPage(items=[PlanOut.of(p) for p in page.items], total=page.total)


def _size(text: str | None) -> ByteSize | None:
    return None if text is None else ByteSize.parse(text)


@router.post("/plans", status_code=201, tags=["plans"], summary="Define a plan")
async def add_plan(ctx: Ctx, actor: PlanMaker, plan: PlanIn) -> PlanOut:
    """Define a plan (provider only); omitted limits mean no limit."""
    limits = PlanLimits(
        plan.max_domains, _size(plan.storage), _size(plan.transfer), plan.max_accounts
    )
    return PlanOut.of(await ctx.accounts.add_plan(actor, plan.name, limits))


@router.get("/customers", tags=["customers"], summary="List customers")
async def customers(ctx: Ctx, actor: ApiActor, query: CustomerQuery) -> CustomerPage:
    """Every customer for the provider; a customer sees itself. `q` looks in the login,
    contact address and plan."""
    page = CUSTOMERS.apply(await ctx.accounts.customers(actor), query)
    return CustomerPage(items=[CustomerOut.of(c) for c in page.items], total=page.total)


@router.post("/customers", status_code=201, tags=["customers"], summary="Add a customer")
async def add_customer(ctx: Ctx, actor: CustomerMaker, customer: CustomerIn) -> CustomerOut:
    """Create a customer on a plan (provider only)."""
    created = await ctx.accounts.add_customer(
        actor, customer.login, customer.plan, customer.contact_email, customer.password
    )
    return CustomerOut.of(created)


@router.get("/customers/{login}", tags=["customers"], summary="Show a customer")
async def customer(ctx: Ctx, actor: ApiActor, login: LoginPath) -> CustomerOut:
    """Its answer can be sent back to PATCH as it is."""
    return CustomerOut.of(await ctx.accounts.customer(actor, customer_login(login)))


@router.patch("/customers/{login}", tags=["customers"], summary="Change a customer")
async def change_customer(
    ctx: Ctx, actor: CustomerChanger, login: LoginPath, change: CustomerPatch
) -> CustomerOut:
    """Change the contact address (the customer itself or the provider); disable or
    enable a customer, or move it to another plan (provider only). Takes back what GET
    answered, changing only what differs; a refusal names its `field`."""
    name = customer_login(login)
    found = await ctx.accounts.customer(actor, name)
    change.check_fixed(CustomerOut.of(found))
    if change.plan is not None and change.plan != found.plan.name:
        with field("plan"):
            found = await ctx.accounts.change_plan(actor, name, change.plan)
    if change.contact_email is not None and change.contact_email != found.contact_email:
        with field("contact_email"):
            contact = EmailAddress.parse(change.contact_email)
            found = await ctx.accounts.set_contact(actor, name, contact)
    if change.enabled is not None and change.enabled != found.enabled:
        found = await ctx.accounts.set_customer_enabled(actor, name, change.enabled)
    return CustomerOut.of(found)


@router.delete(
    "/customers/{login}",
    status_code=204,
    response_class=Response,
    tags=["customers"],
    summary="Remove a customer",
)
async def remove_customer(ctx: Ctx, actor: ApiActor, login: LoginPath) -> Response:
    """Remove a customer with its domains, their users, mailboxes, mail and queued mail
    (provider only; to any other token the customer does not exist)."""
    await ctx.accounts.remove_customer(actor, customer_login(login))
    return Response(status_code=204)


@router.get("/usage", tags=["customers"], summary="Usage of every visible customer")
async def usage(ctx: Ctx, actor: ApiActor, query: UsageQuery) -> UsagePage:
    """Usage against the plan this month: every customer for the provider, else one's own;
    sortable by each figure (`sort=storage&order=desc`: the biggest first)."""
    page = USAGE.apply(await ctx.usage.report(actor), query)
    return UsagePage(items=[UsageOut.of(u) for u in page.items], total=page.total)


@router.get("/customers/{login}/usage", tags=["customers"], summary="Usage of a customer")
async def customer_usage(ctx: Ctx, actor: ApiActor, login: LoginPath) -> UsageOut:
    """Domains, accounts, storage and this month's transfer against the plan."""
    (found,) = await ctx.usage.report(actor, customer_login(login))
    return UsageOut.of(found)


@router.get("/audit", tags=["account"], summary="Change history")
async def audit(request: Request, ctx: Ctx, actor: ApiActor, query: AuditQuery) -> AuditPage:
    """Changes, newest first, as far as the token's login may see them (the latest 500);
    `q` looks in who, what and on what."""
    page = AUDIT.apply(await ctx.access.audit.entries(actor, MAX_ENTRIES), query)
    return AuditPage(items=[AuditOut.of(e) for e in page.items], total=page.total)
