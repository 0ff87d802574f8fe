"""Provider admin pages: usage and queue overview, plans, customers (create, disable, plan),
domains (disable, mark verified)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from mailhost.errors import (
    CustomerExists,
    InvalidAddress,
    InvalidInput,
    MailhostError,
    PlanExists,
    UnknownPlan,
    WeakPassword,
)
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.model.records import CustomerRecord
from mailhost.services.accounts import parse_login
from mailhost.web.confirm import Confirm, ask_first, confirmation_page, is_confirmed
from mailhost.web.dependencies import Ctx, ProviderSession
from mailhost.web.errors import status_for
from mailhost.web.forms import FieldRefused, field, refusal
from mailhost.web.lists import (
    CUSTOMER_ROWS,
    DOMAINS,
    Column,
    CustomerRow,
    PanelList,
    panel_list,
)
from mailhost.web.pages import render, see_other
from mailhost.web.panel.confirmations import disabling_customer, disabling_domain, removing

router = APIRouter(prefix="/provider")
CUSTOMER_COLUMNS = (
    Column("Login", "name"),
    Column("Contact", "contact"),
    Column("Domains", "domains", numeric=True),
    Column("Accounts", "accounts", numeric=True),
    Column("Storage", "storage", numeric=True),
    Column("Plan", "plan"),
    Column("Status", "status"),
    Column(""),
)
DOMAIN_COLUMNS = (
    Column("Domain", "name"),
    Column("Customer", "customer"),
    Column("Status", "status"),
    Column(""),
    Column(""),
)
FormText = Annotated[str, Form(max_length=1024)]
OptionalText = Annotated[str, Form(max_length=100)]
# The add forms' fields kept as typed after a refusal (never the password).
PLAN_FIELDS = ("name", "domains", "storage", "transfer", "accounts")
CUSTOMER_FIELDS = ("login", "plan", "email")


@router.get("/")
async def overview(request: Request, ctx: Ctx, session: ProviderSession) -> Response:
    actor = session.actor
    return await render(
        request,
        "provider/overview.html",
        usage=await ctx.usage.report(actor),
        queue=await ctx.access.admins.queue_counts(actor),
        audit=await ctx.access.audit.entries(actor, 20),
    )


async def _plans_page(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    exc: MailhostError | FieldRefused | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "provider/plans.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        values=typed or dict.fromkeys(PLAN_FIELDS, ""),
        plans=await ctx.accounts.plans(session.actor),
    )


@router.get("/plans")
async def plans(request: Request, ctx: Ctx, session: ProviderSession) -> Response:
    return await _plans_page(request, ctx, session)


def _count(raw: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput(f"{raw!r} is not a whole number (leave it empty for no limit)")
    return int(text)


def _size(raw: str) -> ByteSize | None:
    return ByteSize.parse(raw) if raw.strip() else None


@router.post("/plans")
async def add_plan(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    name: FormText,
    domains: OptionalText = "",
    storage: OptionalText = "",
    transfer: OptionalText = "",
    accounts: OptionalText = "",
) -> Response:
    try:
        with field("domains"):
            max_domains = _count(domains)
        with field("storage"):
            storage_limit = _size(storage)
        with field("transfer"):
            transfer_limit = _size(transfer)
        with field("accounts"):
            max_accounts = _count(accounts)
        limits = PlanLimits(max_domains, storage_limit, transfer_limit, max_accounts)
        with field("name", InvalidInput, PlanExists):
            await ctx.accounts.add_plan(session.actor, name, limits)
    except (MailhostError, FieldRefused) as exc:
        typed = dict(zip(PLAN_FIELDS, (name, domains, storage, transfer, accounts), strict=True))
        return await _plans_page(request, ctx, session, exc, typed)
    return see_other("/provider/plans", "plan_added")


async def _customer_rows(
    request: Request, ctx: Ctx, session: ProviderSession
) -> PanelList[CustomerRow]:
    """The customers with this month's usage, for the list's usage columns."""
    usage = {u.customer_login: u for u in await ctx.usage.report(session.actor)}
    rows = [CustomerRow(c, usage.get(c.login)) for c in await ctx.accounts.customers(session.actor)]
    return panel_list(
        request,
        rows,
        CUSTOMER_ROWS,
        CUSTOMER_COLUMNS,
        label="Find a customer",
        empty="No customers yet.",
    )


async def _customers_page(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    exc: MailhostError | FieldRefused | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "provider/customers.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        values=typed or dict.fromkeys(CUSTOMER_FIELDS, ""),
        customers=await _customer_rows(request, ctx, session),
        plans=await ctx.accounts.plans(session.actor),
    )


@router.get("/customers")
async def customers(request: Request, ctx: Ctx, session: ProviderSession) -> Response:
    return await _customers_page(request, ctx, session)


@router.post("/customers")
async def add_customer(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    login: FormText,
    plan: FormText,
    email: FormText,
    password: FormText,
) -> Response:
    try:
        with field("login"):
            parse_login(login)
        # One call checks the rest: each refusal kind belongs to one field (innermost first).
        with (
            field("plan", UnknownPlan, InvalidInput),
            field("login", CustomerExists),
            field("email", InvalidAddress),
            field("password", WeakPassword),
        ):
            await ctx.accounts.add_customer(session.actor, login, plan, email, password)
    except (MailhostError, FieldRefused) as exc:
        typed = dict(zip(CUSTOMER_FIELDS, (login, plan, email), strict=True))
        return await _customers_page(request, ctx, session, exc, typed)
    return see_other("/provider/customers", "customer_added")


@router.get("/customers/{login}/disable")
async def confirm_disable(
    request: Request, ctx: Ctx, session: ProviderSession, login: str
) -> Response:
    found = await ctx.accounts.customer(session.actor, login)
    base = f"/provider/customers/{found.login}"
    return await confirmation_page(request, disabling_customer(found, base, "/provider/customers"))


@router.post("/customers/{login}/enabled")
async def set_enabled(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    login: str,
    enabled: FormText,
    confirm: Confirm = "",
) -> Response:
    if enabled != "yes" and not is_confirmed(confirm):
        return ask_first(f"/provider/customers/{login}/disable")
    try:
        await ctx.accounts.set_customer_enabled(session.actor, login, enabled == "yes")
    except MailhostError as exc:
        return await _customers_page(request, ctx, session, exc)
    return see_other("/provider/customers", "customer_changed")


@router.post("/customers/{login}/plan")
async def change_plan(
    request: Request, ctx: Ctx, session: ProviderSession, login: str, plan: FormText
) -> Response:
    try:
        await ctx.accounts.change_plan(session.actor, login, plan)
    except MailhostError as exc:
        return await _customers_page(request, ctx, session, exc)
    return see_other("/provider/customers", "customer_changed")


async def _customer_page(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    customer: CustomerRecord,
    values: dict[str, str],
    exc: MailhostError | FieldRefused | None = None,
) -> Response:
    error, errors = (None, {}) if exc is None else refusal(exc)
    return await render(
        request,
        "provider/customer.html",
        status=200 if error is None else status_for(error),
        error=None if error is None or errors else error.message,
        errors=errors,
        values=values,
        customer=customer,
        plans=await ctx.accounts.plans(session.actor),
    )


@router.get("/customers/{login}")
async def customer_page(
    request: Request, ctx: Ctx, session: ProviderSession, login: str
) -> Response:
    """The form to change a customer's contact address and plan, filled in as they are."""
    found = await ctx.accounts.customer(session.actor, login)
    values = {"email": found.contact_email, "plan": found.plan.name}
    return await _customer_page(request, ctx, session, found, values)


@router.post("/customers/{login}")
async def change_customer(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    login: str,
    email: FormText = "",
    plan: FormText = "",
) -> Response:
    found = await ctx.accounts.customer(session.actor, login)
    try:
        # The plan first: it is the change a rule may refuse, and then nothing has changed.
        if plan != found.plan.name:
            with field("plan"):
                await ctx.accounts.change_plan(session.actor, found.login, plan)
        with field("email"):
            contact = EmailAddress.parse(email)
            await ctx.accounts.set_contact(session.actor, found.login, contact)
    except FieldRefused as exc:
        values = {"email": email, "plan": plan}
        return await _customer_page(request, ctx, session, found, values, exc)
    return see_other("/provider/customers", "customer_changed")


@router.get("/customers/{login}/remove")
async def confirm_remove_customer(
    request: Request, ctx: Ctx, session: ProviderSession, login: str
) -> Response:
    """Before anything is deleted: how many domains, mailboxes and how much mail go with it."""
    summary = await ctx.accounts.customer_removal(session.actor, login)
    base = f"/provider/customers/{summary.name}"
    return await confirmation_page(request, removing(summary, base, "/provider/customers"))


@router.post("/customers/{login}/remove")
async def remove_customer(
    request: Request, ctx: Ctx, session: ProviderSession, login: str, confirm: Confirm = ""
) -> Response:
    if not is_confirmed(confirm):
        return ask_first(f"/provider/customers/{login}/remove")
    try:
        await ctx.accounts.remove_customer(session.actor, login)
    except MailhostError as exc:
        return await _customers_page(request, ctx, session, exc)
    return see_other("/provider/customers", "customer_removed")


async def _domains_page(
    request: Request, ctx: Ctx, session: ProviderSession, error: MailhostError | None = None
) -> Response:
    return await render(
        request,
        "provider/domains.html",
        status=200 if error is None else status_for(error),
        error=None if error is None else error.message,
        domains=panel_list(
            request,
            await ctx.accounts.domains(session.actor),
            DOMAINS,
            DOMAIN_COLUMNS,
            label="Find a domain or customer",
            empty="No domains yet.",
        ),
    )


@router.get("/domains")
async def domains(request: Request, ctx: Ctx, session: ProviderSession) -> Response:
    return await _domains_page(request, ctx, session)


@router.get("/domains/{name}/disable")
async def confirm_disable_domain(
    request: Request, ctx: Ctx, session: ProviderSession, name: str
) -> Response:
    domain = await ctx.accounts.domain(session.actor, DomainName.parse(name))
    base = f"/provider/domains/{domain.name.ascii}"
    return await confirmation_page(request, disabling_domain(domain, base, "/provider/domains"))


@router.post("/domains/{name}/enabled")
async def set_domain_enabled(
    request: Request,
    ctx: Ctx,
    session: ProviderSession,
    name: str,
    enabled: FormText,
    confirm: Confirm = "",
) -> Response:
    if enabled != "yes" and not is_confirmed(confirm):
        return ask_first(f"/provider/domains/{name}/disable")
    try:
        domain = DomainName.parse(name)
        await ctx.accounts.set_domain_enabled(session.actor, domain, enabled == "yes")
    except MailhostError as exc:
        return await _domains_page(request, ctx, session, exc)
    return see_other("/provider/domains", "domain_changed")


@router.post("/domains/{name}/verified")
async def trust_domain(request: Request, ctx: Ctx, session: ProviderSession, name: str) -> Response:
    """The provider vouches for a domain without its DNS proof."""
    try:
        await ctx.accounts.trust_domain(session.actor, DomainName.parse(name))
    except MailhostError as exc:
        return await _domains_page(request, ctx, session, exc)
    return see_other("/provider/domains", "domain_verified")
