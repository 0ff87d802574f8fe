"""Editing addresses in place: a user's recovery address, a customer's contact address and
a domain's manager password, each audited and held to its tenant, on a real database."""

from __future__ import annotations

import pytest

from mailhost.errors import (
    InvalidAddress,
    NotPermitted,
    UnknownCustomer,
    UnknownDomain,
    UnknownUser,
)
from mailhost.model.actors import Actor, CustomerActor, DomainActor, UserActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login
from tests.services.test_accounts import OP, PW, addr, make_customer, make_domain

A, B = DomainName.parse("a.example"), DomainName.parse("b.example")
ALICE, BOB = addr("alice@a.example"), addr("bob@b.example")
ELSEWHERE = EmailAddress.parse("Alice.Private@elsewhere.example")


async def two_tenants(rt: Runtime) -> dict[str, Actor]:
    """acme (a.example, alice) and the hostile other (b.example, bob)."""
    await make_customer(rt, "acme")
    await make_customer(rt, "other")
    await make_domain(rt, "a.example", "acme")
    await make_domain(rt, "b.example", "other")
    await rt.services.users.add_user(OP, ALICE, PW)
    await rt.services.users.add_user(OP, BOB, PW)
    acme = await rt.services.accounts.customer(OP, "acme")
    other = await rt.services.accounts.customer(OP, "other")
    a = await rt.services.accounts.domain(OP, A)
    b = await rt.services.accounts.domain(OP, B)
    alice = await rt.services.users.user(OP, ALICE)
    return {
        "acme": CustomerActor(acme.id, "acme"),
        "other": CustomerActor(other.id, "other"),
        "domain_a": DomainActor(a.id, a.customer_id, a.name),
        "domain_b": DomainActor(b.id, b.customer_id, b.name),
        "alice": UserActor(alice.id, alice.domain_id, alice.customer_id, ALICE),
    }


async def audit_of(rt: Runtime) -> list[tuple[str, str, str]]:
    async with rt.units() as uow:
        entries = await uow.audit.entries(None)
    return [(e.action, e.target, e.detail) for e in reversed(entries)]


@pytest.mark.parametrize("who", ["provider", "acme", "domain_a", "alice"])
async def test_a_recovery_address_is_set_and_cleared_by_those_who_may(
    runtime: Runtime, who: str
) -> None:
    actors = await two_tenants(runtime)
    actor = OP if who == "provider" else actors[who]
    users = runtime.services.users
    changed = await users.set_recovery(actor, ALICE, ELSEWHERE)
    assert changed.recovery_email == "Alice.Private@elsewhere.example"
    assert (await users.user(OP, ALICE)).recovery_email == "Alice.Private@elsewhere.example"
    again = await users.set_recovery(actor, ALICE, ELSEWHERE)  # the same: nothing recorded
    assert again.recovery_email == changed.recovery_email
    cleared = await users.set_recovery(actor, ALICE, None)
    assert cleared.recovery_email is None
    recorded = [e for e in await audit_of(runtime) if e[0] == "user.recovery"]
    assert recorded == [
        ("user.recovery", "alice@a.example", "Alice.Private@elsewhere.example"),
        ("user.recovery", "alice@a.example", "none"),
    ]


async def test_the_users_own_address_is_refused_as_its_recovery_address(
    runtime: Runtime,
) -> None:
    actors = await two_tenants(runtime)
    for own in ("alice@a.example", "ALICE@a.example", "alice@A.EXAMPLE"):
        with pytest.raises(InvalidAddress) as caught:
            recovery = EmailAddress.parse(own)
            await runtime.services.users.set_recovery(actors["alice"], ALICE, recovery)
        assert caught.value.message == (
            "the recovery address must be another address than alice@a.example itself: "
            "a reset link sent there cannot be read by someone locked out of it"
        )
    assert (await runtime.services.users.user(OP, ALICE)).recovery_email is None


async def test_a_new_user_cannot_have_its_own_address_for_recovery(runtime: Runtime) -> None:
    await two_tenants(runtime)
    carol = addr("carol@a.example")
    with pytest.raises(InvalidAddress, match="another address than carol@a.example"):
        await runtime.services.users.add_user(OP, carol, PW, "Carol@A.example")
    assert carol.local not in [u.address.local for u in await runtime.services.users.users(OP, A)]


@pytest.mark.parametrize("who", ["other", "domain_b", "alice"])
async def test_another_tenant_cannot_change_a_recovery_address(runtime: Runtime, who: str) -> None:
    actors = await two_tenants(runtime)
    target = ALICE
    if who == "alice":  # a user is a stranger to another user of its own domain
        target = addr("bob@a.example")
        await runtime.services.users.add_user(OP, target, PW)
    with pytest.raises(UnknownUser) as caught:
        await runtime.services.users.set_recovery(actors[who], target, ELSEWHERE)
    assert caught.value.message == f"user {target} does not exist"
    # Its own address refused or not, the answer is the same as for a missing user.
    with pytest.raises(UnknownUser):
        await runtime.services.users.set_recovery(actors[who], target, target)
    assert (await runtime.services.users.user(OP, target)).recovery_email is None
    assert [e for e in await audit_of(runtime) if e[0] == "user.recovery"] == []


@pytest.mark.parametrize("who", ["provider", "acme"])
async def test_a_contact_address_is_changed_by_the_customer_or_provider(
    runtime: Runtime, who: str
) -> None:
    actors = await two_tenants(runtime)
    actor = OP if who == "provider" else actors["acme"]
    accounts = runtime.services.accounts
    new = EmailAddress.parse("it@acme.example")
    changed = await accounts.set_contact(actor, "acme", new)
    assert changed.contact_email == "it@acme.example"
    assert (await accounts.customer(OP, "acme")).contact_email == "it@acme.example"
    await accounts.set_contact(actor, "acme", new)  # the same: nothing recorded
    recorded = [e for e in await audit_of(runtime) if e[0] == "customer.contact"]
    assert recorded == [("customer.contact", "acme", "it@acme.example")]


@pytest.mark.parametrize("who", ["other", "domain_a", "alice"])
async def test_no_one_else_changes_a_contact_address(runtime: Runtime, who: str) -> None:
    actors = await two_tenants(runtime)
    with pytest.raises(UnknownCustomer) as caught:
        await runtime.services.accounts.set_contact(
            actors[who], "acme", EmailAddress.parse("thief@evil.example")
        )
    assert caught.value.message == "customer 'acme' does not exist"
    assert (await runtime.services.accounts.customer(OP, "acme")).contact_email == (
        "acme@contact.test"
    )


async def test_a_customer_cannot_change_its_own_plan(runtime: Runtime) -> None:
    actors = await two_tenants(runtime)
    with pytest.raises(NotPermitted) as caught:
        await runtime.services.accounts.change_plan(actors["acme"], "acme", "Bulk Hosting")
    assert caught.value.message == "only the provider may change plans"


@pytest.mark.parametrize("who", ["provider", "acme", "domain_a"])
async def test_a_domains_manager_password_is_set_and_ends_its_sessions(
    runtime: Runtime, who: str
) -> None:
    actors = await two_tenants(runtime)
    actor = OP if who == "provider" else actors[who]
    new = "a brand new passphrase"
    await runtime.services.accounts.set_domain_password(actor, A, new)
    logins = runtime.web_access.logins
    client = ClientInfo("127.0.0.1", "web")
    assert isinstance(await logins.login("domain", "a.example", new, client), Login)
    assert not isinstance(await logins.login("domain", "a.example", PW, client), Login)
    recorded = [e for e in await audit_of(runtime) if e[0] == "domain.passwd"]
    assert recorded == [("domain.passwd", "a.example", "sessions ended=0 reset links cancelled=0")]


@pytest.mark.parametrize("who", ["other", "domain_b"])
async def test_another_tenant_cannot_set_a_domains_password(runtime: Runtime, who: str) -> None:
    actors = await two_tenants(runtime)
    with pytest.raises(UnknownDomain) as caught:
        await runtime.services.accounts.set_domain_password(actors[who], A, "stolen passphrase")
    assert caught.value.message == "domain a.example is not hosted here"
    with pytest.raises(NotPermitted):
        await runtime.services.accounts.set_domain_password(actors["alice"], A, "my passphrase!")
    assert [e for e in await audit_of(runtime) if e[0] == "domain.passwd"] == []
