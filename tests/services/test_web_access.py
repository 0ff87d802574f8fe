"""Sessions, API tokens, provider admins, customer changes and the audit log, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailhost.errors import (
    AlreadyExists,
    LimitReached,
    NotPermitted,
    UnknownCustomer,
    UnknownDomain,
    WeakPassword,
)
from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.runtime import Runtime
from mailhost.services import api_tokens
from mailhost.services.api_tokens import ApiTokenService
from mailhost.services.sessions import Login, SessionService

OP = ProviderActor("test")
PW = "correct horse battery"
CLIENT = ClientInfo("127.0.0.3", "test")
A = DomainName.parse("a.example")


async def setup(rt: Runtime) -> tuple[CustomerActor, DomainActor, UserActor]:
    accounts = rt.services.accounts
    customer = await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@a.example", PW)
    domain = await accounts.add_domain(OP, A, "acme", PW)
    user = await rt.services.users.add_user(OP, EmailAddress.hosted("al@a.example"), PW)
    return (
        CustomerActor(customer.id, customer.login),
        DomainActor(domain.id, customer.id, A),
        UserActor(user.id, domain.id, customer.id, user.address),
    )


async def test_session_resolves_until_it_expires_or_is_closed(runtime: Runtime) -> None:
    customer, _, _ = await setup(runtime)
    now = [datetime(2030, 5, 1, tzinfo=UTC)]
    sessions = SessionService(runtime.units, clock=lambda: now[0], lifetime=timedelta(hours=1))
    token, opened = await sessions.open(Login("customer", customer.customer_id, customer))
    resolved = await sessions.resolve(token)
    assert resolved is not None and resolved.actor == customer
    assert resolved.csrf_token == opened.csrf_token
    assert await sessions.resolve(token + "x") is None
    assert await sessions.resolve("") is None
    assert await sessions.resolve("é" * 500) is None
    now[0] += timedelta(minutes=61)
    assert await sessions.resolve(token) is None
    fresh, _ = await sessions.open(Login("customer", customer.customer_id, customer))
    await sessions.close(fresh)
    assert await sessions.resolve(fresh) is None


async def test_session_of_a_disabled_login_no_longer_resolves(runtime: Runtime) -> None:
    _, domain, _ = await setup(runtime)
    sessions = runtime.web_access.sessions
    token, _ = await sessions.open(Login("domain", domain.domain_id, domain))
    assert await sessions.resolve(token) is not None
    await runtime.services.accounts.set_customer_enabled(OP, "acme", False)
    assert await sessions.resolve(token) is None
    await runtime.services.accounts.set_customer_enabled(OP, "acme", True)
    assert await sessions.resolve(token) is not None


async def test_api_tokens_act_as_their_login_until_revoked(runtime: Runtime) -> None:
    customer, domain, user = await setup(runtime)
    tokens = runtime.web_access.api_tokens
    record, secret = await tokens.create(domain, "  deploy   script ")
    assert record.name == "deploy script"
    assert secret.startswith("mh_")
    assert await tokens.authenticate(secret) == domain
    (listed,) = await tokens.tokens(domain)
    assert listed.last_used_at is not None
    assert await tokens.tokens(customer) == []  # a customer's tokens are its own
    with pytest.raises(NotPermitted):
        await tokens.create(user, "mine")
    with pytest.raises(NotPermitted, match="only provider admin accounts"):
        await tokens.create(OP, "cli")
    await tokens.revoke(domain, record.id)
    assert await tokens.authenticate(secret) is None
    assert await tokens.authenticate("mh_" + "x" * 43) is None


async def test_a_login_holds_a_bounded_number_of_tokens(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer, _, _ = await setup(runtime)
    monkeypatch.setattr(api_tokens, "MAX_ACTIVE_TOKENS", 2)
    tokens = ApiTokenService(runtime.units)
    await tokens.create(customer, "one")
    record, _ = await tokens.create(customer, "two")
    with pytest.raises(LimitReached, match="may hold 2 active API tokens"):
        await tokens.create(customer, "three")
    await tokens.revoke(customer, record.id)
    await tokens.create(customer, "three")


async def test_provider_admins_are_added_by_the_provider_only(runtime: Runtime) -> None:
    customer, _, _ = await setup(runtime)
    admins = runtime.web_access.admins
    await admins.add(OP, "Ops", "ops@hosting.example", PW)
    assert [a.login for a in await admins.admins(OP)] == ["ops"]
    with pytest.raises(AlreadyExists, match="provider admin 'ops' already exists"):
        await admins.add(OP, "ops", "ops@hosting.example", PW)
    with pytest.raises(WeakPassword):
        await admins.add(OP, "other", "o@hosting.example", "ops-other-short")
    with pytest.raises(NotPermitted):
        await admins.add(customer, "sneaky", "s@hosting.example", PW)
    outcome = await runtime.web_access.logins.login("provider", "OPS", PW, CLIENT)
    assert isinstance(outcome, Login) and outcome.actor == ProviderActor("ops")


async def test_change_plan_and_disable_are_provider_only_and_audited(runtime: Runtime) -> None:
    customer, _, _ = await setup(runtime)
    accounts = runtime.services.accounts
    await accounts.add_plan(OP, "None at all", PlanLimits(0, None, None, None))
    with pytest.raises(NotPermitted):
        await accounts.change_plan(customer, "acme", "Bulk Hosting")
    with pytest.raises(NotPermitted):
        await accounts.set_customer_enabled(customer, "acme", False)
    with pytest.raises(
        LimitReached, match="plan None at all allows 0 domains; customer acme has 1"
    ):
        await accounts.change_plan(OP, "acme", "None at all")
    with pytest.raises(UnknownCustomer):
        await accounts.change_plan(OP, "ghost", "Bulk Hosting")
    changed = await accounts.set_customer_enabled(OP, "acme", False)
    assert not changed.enabled
    actions = [e.action for e in await runtime.web_access.audit.entries(customer, 5)]
    assert actions[0] == "customer.disable"


async def test_audit_log_scopes(runtime: Runtime) -> None:
    customer, domain, user = await setup(runtime)
    await runtime.services.accounts.add_customer(OP, "other", "Bulk Hosting", "x@b.example", PW)
    await runtime.services.accounts.add_domain(customer, DomainName.parse("c.example"), "acme", PW)
    audit = runtime.web_access.audit
    mine = [e.target for e in await audit.entries(customer)]
    assert "other" not in mine and "c.example" in mine and "al@a.example" in mine
    of_domain = [e.target for e in await audit.entries(domain)]
    assert "al@a.example" in of_domain and "a.example" in of_domain
    assert "c.example" not in of_domain
    assert "other" in [e.target for e in await audit.entries(OP)]
    with pytest.raises(NotPermitted):
        await audit.entries(user)


async def test_dns_records_are_only_shown_to_the_domains_tenant(runtime: Runtime) -> None:
    customer, domain, _ = await setup(runtime)
    dns = runtime.web_access.dns
    records = await dns.records(domain, A)
    assert {r.name for r in records} >= {"a.example", "_dmarc.a.example", "mail.a.example"}
    await runtime.services.accounts.add_customer(OP, "other", "Bulk Hosting", "x@b.example", PW)
    other = await runtime.services.accounts.add_domain(
        OP, DomainName.parse("b.example"), "other", PW
    )
    with pytest.raises(UnknownDomain):
        await dns.records(customer, other.name)
    with pytest.raises(UnknownDomain):
        await dns.records(domain, other.name)
