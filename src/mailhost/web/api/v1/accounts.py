"""/api/v1: who am I, plans, customers, usage and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
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
    window,
)
from mailhost.web.api.v1.params import Limit, LoginPath, Offset, allowed, customer_login
from mailhost.web.dependencies import ApiActor, Ctx

router = APIRouter()
PlanMaker = Annotated[Actor, allowed(access.require_provider, "define plans")]
CustomerMaker = Annotated[Actor, allowed(access.require_provider, "add customers")]
CustomerChanger = Annotated[Actor, allowed(access.require_provider, "change customers")]


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
async def plans(ctx: Ctx, actor: ApiActor, limit: Limit = 100, offset: Offset = 0) -> PlanPage:
    """All plans for the provider; a customer sees its own plan."""
    items, total = window(await ctx.accounts.plans(actor), limit, offset)
    return PlanPage(items=[PlanOut.of(p) for p in items], total=total)


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
async def customers(
    ctx: Ctx, actor: ApiActor, limit: Limit = 100, offset: Offset = 0
) -> CustomerPage:
    """Every customer for the provider; a customer sees itself."""
    items, total = window(await ctx.accounts.customers(actor), limit, offset)
    return CustomerPage(items=[CustomerOut.of(c) for c in items], total=total)


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
    """Disable or enable a customer, or move it to another plan (provider only); takes
    back what GET answered, changing only what differs."""
    name = customer_login(login)
    found = await ctx.accounts.customer(actor, name)
    change.check_fixed(CustomerOut.of(found))
    if change.plan is not None and change.plan != found.plan.name:
        found = await ctx.accounts.change_plan(actor, name, change.plan)
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
async def usage(ctx: Ctx, actor: ApiActor, limit: Limit = 100, offset: Offset = 0) -> UsagePage:
    """Usage against the plan this month: every customer for the provider, else one's own."""
    items, total = window(await ctx.usage.report(actor), limit, offset)
    return UsagePage(items=[UsageOut.of(u) for u in items], total=total)


@router.get("/customers/{login}/usage", tags=["customers"], summary="Usage of a customer")
async def customer_usage(ctx: Ctx, actor: ApiActor, login: LoginPath) -> UsageOut:
    """Domains, accounts, storage and this month's transfer against the plan."""
    (found,) = await ctx.usage.report(actor, customer_login(login))
    return UsageOut.of(found)


@router.get("/audit", tags=["account"], summary="Change history")
async def audit(
    request: Request, ctx: Ctx, actor: ApiActor, limit: Limit = 100, offset: Offset = 0
) -> AuditPage:
    """Changes, newest first, as far as the token's login may see them."""
    entries = await ctx.access.audit.entries(actor, MAX_ENTRIES)
    items, total = window(entries, limit, offset)
    return AuditPage(items=[AuditOut.of(e) for e in items], total=total)
