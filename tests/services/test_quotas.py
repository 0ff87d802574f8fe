"""Mailbox quotas held against the plan's storage, and changing a mailbox's quota or an
SMTP account's facilities, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from mailhost.errors import (
    InvalidSize,
    LimitReached,
    NoMailbox,
    NoSmtpAccount,
    NotPermitted,
    UnknownDomain,
    UnknownUser,
)
from mailhost.model.actors import Actor, CustomerActor, DomainActor, UserActor
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.model.quotas import Allocation, parse_quota
from mailhost.runtime import Runtime
from tests.services.test_accounts import OP, PW, addr, make_customer, make_domain

MB = ByteSize.parse
EXAMPLE = DomainName.parse("example.test")
BOB = addr("bob@example.test")


async def hosted(rt: Runtime, *mailboxes: tuple[str, str | None]) -> None:
    """Customer acme (Bulk Hosting: 2.5GB) with example.test and these mailboxes."""
    await make_customer(rt)
    await make_domain(rt, "example.test")
    for name, quota in mailboxes:
        address = addr(f"{name}@example.test")
        await rt.services.users.add_user(OP, address, PW)
        await rt.services.users.add_mailbox(OP, address, None if quota is None else MB(quota))


async def audit_of(rt: Runtime) -> list[tuple[str, str, str]]:
    async with rt.units() as uow:
        entries = await uow.audit.entries(None)
    return [(e.action, e.target, e.detail) for e in reversed(entries)]


@pytest.mark.parametrize("quota", [ByteSize(0), MB("500KB"), MB("999999B")])
async def test_a_quota_is_at_least_1mb(runtime: Runtime, quota: ByteSize) -> None:
    await hosted(runtime, ("alice", "10MB"))
    users = runtime.services.users
    await users.add_user(OP, BOB, PW)
    message = f"a mailbox quota is at least 1MB; {quota.exact} is less"
    with pytest.raises(InvalidSize) as caught:
        await users.add_mailbox(OP, BOB, quota)
    assert caught.value.message == message
    with pytest.raises(InvalidSize) as caught:
        await users.set_mailbox_quota(OP, addr("alice@example.test"), quota)
    assert caught.value.message == message
    assert [b.quota for b in await users.mailboxes(OP, EXAMPLE)] == [MB("10MB")]
    await users.add_mailbox(OP, BOB, MB("1MB"))


def test_a_negative_quota_is_refused_as_too_small() -> None:
    with pytest.raises(InvalidSize) as caught:
        parse_quota("-1")
    assert caught.value.message == "a mailbox quota is at least 1MB; -1 is less"
    assert parse_quota("0") == ByteSize(0)  # parsed; the service refuses it
    assert parse_quota("2.5GB") == MB("2.5GB")


async def test_on_a_plan_with_storage_every_mailbox_needs_a_quota(runtime: Runtime) -> None:
    await hosted(runtime, ("alice", "1GB"))
    users = runtime.services.users
    await users.add_user(OP, BOB, PW)
    with pytest.raises(LimitReached) as caught:
        await users.add_mailbox(OP, BOB, None)
    assert caught.value.message == (
        "plan Bulk Hosting has 2.5GB of storage, so every mailbox needs a quota; "
        "at most 1.5GB is left for bob@example.test"
    )
    with pytest.raises(LimitReached, match="so every mailbox needs a quota; at most 2.5GB is"):
        await users.set_mailbox_quota(OP, addr("alice@example.test"), None)
    assert not (await users.user(OP, BOB)).has_mailbox


async def test_quotas_together_fit_the_plans_storage(runtime: Runtime) -> None:
    await hosted(runtime, ("alice", "1GB"), ("carol", "1.3GB"))
    users = runtime.services.users
    await users.add_user(OP, BOB, PW)
    with pytest.raises(LimitReached) as caught:
        await users.add_mailbox(OP, BOB, MB("250MB"))
    assert caught.value.code == "plan_limit_reached"
    assert caught.value.message == (
        "plan Bulk Hosting has 2.5GB of storage; 2.3GB is given to other mailboxes, "
        "so at most 200MB is left for bob@example.test"
    )
    await users.add_mailbox(OP, BOB, MB("200MB"))  # exactly what is left
    # The changed mailbox counts with its new quota only, never twice.
    await users.set_mailbox_quota(OP, BOB, MB("150MB"))
    await users.set_mailbox_quota(OP, BOB, MB("200MB"))
    with pytest.raises(LimitReached, match="2.3GB is given to other mailboxes, so at most 200MB"):
        await users.set_mailbox_quota(OP, BOB, MB("201MB"))
    await users.add_user(OP, addr("dave@example.test"), PW)
    with pytest.raises(LimitReached, match="so nothing is left for dave@example.test"):
        await users.add_mailbox(OP, addr("dave@example.test"), MB("1MB"))
    # Room given back by one mailbox can be given to another.
    await users.set_mailbox_quota(OP, addr("alice@example.test"), MB("900MB"))
    changed = await users.set_mailbox_quota(OP, BOB, MB("300MB"))
    assert (changed.address, changed.quota) == (BOB, MB("300MB"))
    quotas = {str(b.address): b.quota for b in await users.mailboxes(OP, EXAMPLE)}
    assert quotas == {
        "alice@example.test": MB("900MB"),
        "bob@example.test": MB("300MB"),
        "carol@example.test": MB("1.3GB"),
    }
    assert await users.allocation(OP, EXAMPLE) == Allocation(
        "Bulk Hosting", MB("2.5GB"), 2_500_000_000, 0
    )


async def test_a_plan_without_storage_limit_allows_mailboxes_without_quota(
    runtime: Runtime,
) -> None:
    await runtime.services.accounts.add_plan(OP, "Open", PlanLimits(None, None, None, None))
    await make_customer(runtime, "acme", "Open")
    await make_domain(runtime, "example.test")
    users = runtime.services.users
    await users.add_user(OP, BOB, PW)
    await users.add_mailbox(OP, BOB, None)
    assert (await users.set_mailbox_quota(OP, BOB, MB("5TB"))).quota == MB("5TB")
    assert (await users.set_mailbox_quota(OP, BOB, None)).quota is None
    allocation = await users.allocation(OP, EXAMPLE)
    assert allocation == Allocation("Open", None, 0, 1)
    assert allocation.left is None


async def test_allocation_counts_every_domain_of_the_customer(runtime: Runtime) -> None:
    await hosted(runtime, ("alice", "1GB"))
    await make_domain(runtime, "second.test")
    await runtime.services.users.add_user(OP, addr("zed@second.test"), PW)
    await runtime.services.users.add_mailbox(OP, addr("zed@second.test"), MB("500MB"))
    allocation = await runtime.services.users.allocation(OP, EXAMPLE)
    assert (allocation.plan, allocation.storage, allocation.allocated) == (
        "Bulk Hosting",
        MB("2.5GB"),
        1_500_000_000,
    )
    assert allocation.left == MB("1GB")


async def test_changes_are_audited_and_an_unchanged_value_is_no_change(runtime: Runtime) -> None:
    await hosted(runtime, ("bob", "250MB"))
    users = runtime.services.users
    await users.add_smtp_account(OP, BOB, SmtpFacilities())
    before = len(await audit_of(runtime))
    await users.set_mailbox_quota(OP, BOB, MB("250MB"))
    await users.set_smtp_facilities(OP, BOB, SmtpFacilities())
    assert len(await audit_of(runtime)) == before
    await users.set_mailbox_quota(OP, BOB, MB("500MB"))
    hourly = SmtpFacilities(relay=False, sender_scope=SenderScope.DOMAIN, hourly_limit=120)
    account = await users.set_smtp_facilities(OP, BOB, hourly)
    assert account.facilities == hourly
    assert (await users.smtp_account(OP, BOB)).facilities.label == "D H120"
    assert (await audit_of(runtime))[before:] == [
        ("mailbox.quota", "bob@example.test", "quota=500MB"),
        ("smtp.change", "bob@example.test", "D H120"),
    ]


async def test_what_is_not_there_cannot_be_changed(runtime: Runtime) -> None:
    await hosted(runtime)
    users = runtime.services.users
    await users.add_user(OP, BOB, PW)
    with pytest.raises(NoMailbox) as caught:
        await users.set_mailbox_quota(OP, BOB, MB("10MB"))
    assert caught.value.message == "user bob@example.test has no POP3 mailbox"
    with pytest.raises(NoSmtpAccount) as missing:
        await users.set_smtp_facilities(OP, BOB, SmtpFacilities())
    assert missing.value.message == "user bob@example.test has no SMTP account"
    with pytest.raises(UnknownUser, match="user nobody@example.test does not exist"):
        await users.set_mailbox_quota(OP, addr("nobody@example.test"), MB("10MB"))


async def test_another_tenant_cannot_change_or_see_quotas_or_facilities(
    runtime: Runtime,
) -> None:
    """mallory (customer and domain manager of evil.test) aims at acme's bob."""
    await hosted(runtime, ("bob", "100MB"))
    users, accounts = runtime.services.users, runtime.services.accounts
    await users.add_smtp_account(OP, BOB, SmtpFacilities(relay=False))
    await make_customer(runtime, "mallory")
    await make_domain(runtime, "evil.test", "mallory")
    mallory = await accounts.customer(OP, "mallory")
    evil = await accounts.domain(OP, DomainName.parse("evil.test"))
    hostile: list[Actor] = [
        CustomerActor(mallory.id, mallory.login),
        DomainActor(evil.id, mallory.id, evil.name),
    ]
    for actor in hostile:
        with pytest.raises(UnknownUser) as caught:
            await users.set_mailbox_quota(actor, BOB, MB("2GB"))
        assert caught.value.message == "user bob@example.test does not exist"
        with pytest.raises(UnknownUser, match="user bob@example.test does not exist"):
            await users.set_smtp_facilities(actor, BOB, SmtpFacilities(relay=True))
        with pytest.raises(UnknownDomain, match="domain example.test is not hosted here"):
            await users.allocation(actor, EXAMPLE)
    bob = await users.user(OP, BOB)
    himself = UserActor(bob.id, bob.domain_id, bob.customer_id, bob.address)
    with pytest.raises(NotPermitted, match="only the domain's manager may change user"):
        await users.set_mailbox_quota(himself, BOB, MB("2GB"))
    with pytest.raises(NotPermitted):
        await users.set_smtp_facilities(himself, BOB, SmtpFacilities(relay=True))
    with pytest.raises(NotPermitted):
        await users.allocation(himself, EXAMPLE)
    assert (await users.mailbox(OP, BOB)).quota == MB("100MB")
    assert not (await users.smtp_account(OP, BOB)).facilities.relay
    # acme's own domain manager may.
    example = await accounts.domain(OP, EXAMPLE)
    manager = DomainActor(example.id, example.customer_id, example.name)
    assert (await users.set_mailbox_quota(manager, BOB, MB("2GB"))).quota == MB("2GB")
    assert (await users.set_smtp_facilities(manager, BOB, SmtpFacilities())).facilities.relay


async def test_a_plan_whose_storage_the_quotas_exceed_is_refused(runtime: Runtime) -> None:
    await hosted(runtime, ("alice", "600MB"), ("bob", "600MB"))
    accounts = runtime.services.accounts
    await accounts.add_plan(OP, "Small", PlanLimits(None, MB("1GB"), None, None))
    with pytest.raises(LimitReached) as caught:
        await accounts.change_plan(OP, "acme", "Small")
    assert caught.value.message == (
        "plan Small has 1GB of storage; the mailbox quotas of customer acme add up to 1.2GB, "
        "200MB more"
    )
    assert (await accounts.customer(OP, "acme")).plan.name == "Bulk Hosting"
    await runtime.services.users.set_mailbox_quota(OP, BOB, MB("400MB"))
    assert (await accounts.change_plan(OP, "acme", "Small")).plan.name == "Small"


async def test_a_plan_with_storage_wants_every_mailbox_to_have_a_quota(runtime: Runtime) -> None:
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_plan(OP, "Open", PlanLimits(None, None, None, None))
    await make_customer(runtime, "acme", "Open")
    await make_domain(runtime, "example.test")
    for name in ("ann", "bob", "cid", "dan"):
        await users.add_user(OP, addr(f"{name}@example.test"), PW)
        await users.add_mailbox(OP, addr(f"{name}@example.test"), None)
    with pytest.raises(LimitReached) as caught:
        await accounts.change_plan(OP, "acme", "Bulk Hosting")
    assert caught.value.message == (
        "plan Bulk Hosting has 2.5GB of storage, so every mailbox needs a quota; customer acme "
        "has 4 without one (ann@example.test, bob@example.test, cid@example.test, …)"
    )
    for name in ("ann", "bob", "cid", "dan"):
        await users.set_mailbox_quota(OP, addr(f"{name}@example.test"), MB("500MB"))
    await accounts.change_plan(OP, "acme", "Bulk Hosting")


async def test_concurrent_mailboxes_never_take_more_than_the_storage(runtime: Runtime) -> None:
    """Six 1GB mailboxes at once on 2.5GB: the customer's lock lets exactly two in."""
    names = [f"u{i}" for i in range(6)]
    await hosted(runtime)
    users = runtime.services.users
    for name in names:
        await users.add_user(OP, addr(f"{name}@example.test"), PW)
    results = await asyncio.gather(
        *(users.add_mailbox(OP, addr(f"{n}@example.test"), MB("1GB")) for n in names),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 4
    assert all(isinstance(r, LimitReached) for r in refused), refused
    assert (await users.allocation(OP, EXAMPLE)).allocated == 2_000_000_000


async def test_concurrent_quota_changes_never_take_more_than_the_storage(
    runtime: Runtime,
) -> None:
    names = [f"u{i}" for i in range(5)]
    await hosted(runtime, *((name, "100MB") for name in names))
    users = runtime.services.users
    results = await asyncio.gather(
        *(users.set_mailbox_quota(OP, addr(f"{n}@example.test"), MB("1GB")) for n in names),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 2
    assert (await users.allocation(OP, EXAMPLE)).allocated == 2_300_000_000
