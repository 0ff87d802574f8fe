"""The account rules of the seed, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from mailhost.errors import (
    CustomerExists,
    DomainExists,
    InvalidAddress,
    InvalidDomainName,
    LimitReached,
    NoSmtpAccount,
    NotPermitted,
    SmtpAccountExists,
    UnknownDomain,
    UnknownPlan,
    UnknownUser,
    UserExists,
    WeakPassword,
)
from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime

OP = ProviderActor("test")
PW = "correct horse battery"


def addr(text: str) -> EmailAddress:
    return EmailAddress.hosted(text)


async def make_customer(rt: Runtime, login: str = "acme", plan: str = "Bulk Hosting") -> None:
    await rt.services.accounts.add_customer(OP, login, plan, f"{login}@contact.test", PW)


async def make_domain(rt: Runtime, name: str = "example.com", customer: str = "acme") -> None:
    await rt.services.accounts.add_domain(OP, DomainName.parse(name), customer, PW)


async def test_seeded_bulk_hosting_plan_has_the_seed_limits(runtime: Runtime) -> None:
    plans = await runtime.services.accounts.plans(OP)
    bulk = next(p for p in plans if p.name == "Bulk Hosting")
    assert bulk.limits == PlanLimits(40, ByteSize(2_500_000_000), ByteSize(40_000_000_000), 400)


async def test_second_smtp_account_for_user_is_refused(runtime: Runtime) -> None:
    await make_customer(runtime)
    await make_domain(runtime)
    await runtime.services.users.add_user(OP, addr("bob@example.com"), PW)
    await runtime.services.users.add_smtp_account(OP, addr("bob@example.com"), SmtpFacilities())
    with pytest.raises(SmtpAccountExists) as caught:
        await runtime.services.users.add_smtp_account(
            OP, addr("bob@example.com"), SmtpFacilities(hourly_limit=5)
        )
    assert caught.value.message == "user bob@example.com already has an SMTP account"
    accounts = await runtime.services.users.smtp_accounts(OP, DomainName.parse("example.com"))
    assert [a.facilities.label for a in accounts] == ["R"]


async def test_available_users_are_exactly_those_without_smtp_account(runtime: Runtime) -> None:
    await make_customer(runtime)
    await make_domain(runtime)
    for name in ("ann", "bob", "cid"):
        await runtime.services.users.add_user(OP, addr(f"{name}@example.com"), PW)
    await runtime.services.users.add_smtp_account(OP, addr("bob@example.com"), SmtpFacilities())
    free = await runtime.services.users.available_users(OP, DomainName.parse("example.com"))
    assert [str(u.address) for u in free] == ["ann@example.com", "cid@example.com"]


async def test_domain_limit_names_plan_and_limit(runtime: Runtime) -> None:
    await runtime.services.accounts.add_plan(OP, "Tiny", PlanLimits(1, None, None, None))
    await make_customer(runtime, "small", "Tiny")
    await make_domain(runtime, "one.test", "small")
    with pytest.raises(LimitReached) as caught:
        await make_domain(runtime, "two.test", "small")
    assert caught.value.message == "plan Tiny allows 1 domains; customer small has 1"
    assert [d.name.ascii for d in await runtime.services.accounts.domains(OP, "small")] == [
        "one.test"
    ]


async def test_mailboxes_and_smtp_accounts_share_the_account_limit(runtime: Runtime) -> None:
    await runtime.services.accounts.add_plan(OP, "Two", PlanLimits(None, None, None, 2))
    await make_customer(runtime, "duo", "Two")
    await make_domain(runtime, "duo.test", "duo")
    users = runtime.services.users
    for name in ("a", "b"):
        await users.add_user(OP, addr(f"{name}@duo.test"), PW)
    await users.add_mailbox(OP, addr("a@duo.test"), None)
    await users.add_smtp_account(OP, addr("a@duo.test"), SmtpFacilities())
    with pytest.raises(LimitReached) as caught:
        await users.add_mailbox(OP, addr("b@duo.test"), None)
    assert caught.value.message == (
        "plan Two allows 2 POP3/SMTP accounts; customer duo has 2, "
        "so the mailbox for b@duo.test cannot be added"
    )


async def test_removing_a_user_removes_its_mailbox_and_smtp_account(runtime: Runtime) -> None:
    await make_customer(runtime)
    await make_domain(runtime)
    users, bob = runtime.services.users, addr("bob@example.com")
    await users.add_user(OP, bob, PW)
    await users.add_mailbox(OP, bob, ByteSize.parse("10MB"))
    await users.add_smtp_account(OP, bob, SmtpFacilities())
    await users.remove_user(OP, bob)
    domain = DomainName.parse("example.com")
    assert await users.mailboxes(OP, domain) == []
    assert await users.smtp_accounts(OP, domain) == []
    [usage] = await runtime.services.usage.report(OP, "acme")
    assert usage.accounts == 0
    # The same name can be created again afresh.
    await users.add_user(OP, bob, PW)
    assert not (await users.user(OP, bob)).has_smtp_account


async def test_duplicates_are_refused_case_insensitively(runtime: Runtime) -> None:
    await make_customer(runtime)
    with pytest.raises(CustomerExists, match="customer 'acme' already exists"):
        await make_customer(runtime, "ACME")
    await make_domain(runtime)
    with pytest.raises(DomainExists, match="domain example.com already exists"):
        await make_domain(runtime, "Example.COM.")
    await runtime.services.users.add_user(OP, addr("Bob@example.com"), PW)
    with pytest.raises(UserExists, match="user bob@example.com already exists"):
        await runtime.services.users.add_user(OP, addr("BOB@example.com"), PW)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("exa mple.com", "'exa mple.com' is not a valid domain name"),
        ("localhost", "'localhost' is not a fully qualified domain name"),
        ("-bad.com", "'-bad.com' is not a valid domain name"),
        ("10.0.0.1", "'10.0.0.1' looks like an IP address"),
    ],
)
def test_invalid_domain_names_are_refused(raw: str, message: str) -> None:
    with pytest.raises(InvalidDomainName, match=message):
        DomainName.parse(raw)


def test_idna_domains_are_normalised() -> None:
    name = DomainName.parse("Bücher.Example")
    assert name.ascii == "xn--bcher-kva.example"
    assert name.unicode == "bücher.example"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("bob", "is not an email address"),
        ("bo b@example.com", "is not a valid RFC 5321 dot-atom"),
        ("bob..x@example.com", "is not a valid RFC 5321 dot-atom"),
        ("x" * 65 + "@example.com", "must be 1 to 64 octets"),
        ("bob@exa_mple.com", "has an invalid domain"),
    ],
)
def test_invalid_addresses_are_refused(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidAddress, match=fragment):
        EmailAddress.hosted(raw)


async def test_weak_passwords_are_refused(runtime: Runtime) -> None:
    await make_customer(runtime)
    await make_domain(runtime)
    with pytest.raises(WeakPassword, match="at least 10 characters"):
        await runtime.services.users.add_user(OP, addr("bob@example.com"), "short")
    with pytest.raises(WeakPassword):
        await runtime.services.users.add_user(OP, addr("bob@example.com"), "bob-bob-bob-bob")
    assert await runtime.services.users.users(OP, DomainName.parse("example.com")) == []


async def test_unknown_plan_and_missing_smtp_account(runtime: Runtime) -> None:
    with pytest.raises(UnknownPlan, match="plan 'Gold' does not exist"):
        await make_customer(runtime, "acme", "Gold")
    await make_customer(runtime)
    await make_domain(runtime)
    await runtime.services.users.add_user(OP, addr("bob@example.com"), PW)
    with pytest.raises(NoSmtpAccount, match="user bob@example.com has no SMTP account"):
        await runtime.services.users.remove_smtp_account(OP, addr("bob@example.com"))


async def test_tenants_cannot_see_each_others_objects(runtime: Runtime) -> None:
    await make_customer(runtime, "acme")
    await make_customer(runtime, "other")
    await make_domain(runtime, "a.test", "acme")
    await make_domain(runtime, "b.test", "other")
    await runtime.services.users.add_user(OP, addr("bob@b.test"), PW)
    acme = await runtime.services.accounts.customer(OP, "acme")
    a_domain = await runtime.services.accounts.domain(OP, DomainName.parse("a.test"))
    as_customer = CustomerActor(acme.id, "acme")
    as_domain = DomainActor(a_domain.id, acme.id, a_domain.name)
    b = DomainName.parse("b.test")
    for actor in (as_customer, as_domain):
        with pytest.raises(UnknownDomain, match="domain b.test is not hosted here"):
            await runtime.services.users.users(actor, b)
        with pytest.raises(UnknownUser, match="user bob@b.test does not exist"):
            await runtime.services.users.remove_user(actor, addr("bob@b.test"))
        with pytest.raises(UnknownDomain):
            await runtime.services.users.add_user(actor, addr("eve@b.test"), PW)
    assert [d.name.ascii for d in await runtime.services.accounts.domains(as_customer)] == [
        "a.test"
    ]
    with pytest.raises(NotPermitted):
        await runtime.services.accounts.add_customer(
            as_customer, "x", "Bulk Hosting", "x@x.test", PW
        )
    user = await runtime.services.users.user(OP, addr("bob@b.test"))
    as_user = UserActor(user.id, user.domain_id, user.customer_id, user.address)
    with pytest.raises(NotPermitted):
        await runtime.services.users.add_smtp_account(as_user, user.address, SmtpFacilities())
    await runtime.services.users.change_password(as_user, user.address, "a new long passphrase")


async def test_every_change_is_audited(runtime: Runtime) -> None:
    await make_customer(runtime)
    await make_domain(runtime)
    bob = addr("bob@example.com")
    await runtime.services.users.add_user(OP, bob, PW)
    await runtime.services.users.add_smtp_account(
        OP, bob, SmtpFacilities(sender_scope=SenderScope.DOMAIN, hourly_limit=120)
    )
    await runtime.services.users.remove_user(OP, bob)
    async with runtime.units() as uow:
        entries = await uow.audit.entries(None)
    actions = [(e.action, e.target, e.actor) for e in reversed(entries)]
    assert actions == [
        ("customer.add", "acme", "provider:test"),
        ("domain.add", "example.com", "provider:test"),
        ("user.add", "bob@example.com", "provider:test"),
        ("smtp.add", "bob@example.com", "provider:test"),
        ("user.remove", "bob@example.com", "provider:test"),
    ]
