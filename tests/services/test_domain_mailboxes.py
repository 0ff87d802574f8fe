"""The mailbox page's one read (`UserService.domain_mailboxes`): the same mailboxes, users
and allocation as the three separate reads, and the same tenant checks, on a real
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from mailhost.errors import NotPermitted, UnknownDomain
from mailhost.model.actors import Actor, CustomerActor, DomainActor, UserActor
from mailhost.model.names import DomainName
from mailhost.model.quantities import ByteSize
from mailhost.model.quotas import Allocation
from mailhost.runtime import Runtime
from tests.services.test_accounts import OP, PW, addr, make_customer, make_domain

MB = ByteSize.parse
EXAMPLE = DomainName.parse("example.test")


async def two_domains(rt: Runtime) -> None:
    """acme (Bulk Hosting: 2.5GB) with example.test (alice and bob with mailboxes, carol
    without) and second.test (zed with a mailbox)."""
    await make_customer(rt)
    await make_domain(rt, "example.test")
    await make_domain(rt, "second.test")
    users = rt.services.users
    for address, quota in (
        ("bob@example.test", "300MB"),
        ("alice@example.test", "1GB"),
        ("carol@example.test", None),
        ("zed@second.test", "500MB"),
    ):
        await users.add_user(OP, addr(address), PW)
        if quota is not None:
            await users.add_mailbox(OP, addr(address), MB(quota))


async def test_one_read_gives_the_domains_mailboxes_users_and_allocation(
    runtime: Runtime,
) -> None:
    await two_domains(runtime)
    users = runtime.services.users
    shown = await users.domain_mailboxes(OP, EXAMPLE)
    assert shown.domain.name == EXAMPLE
    # Only this domain's mailboxes, in the order `mailboxes` gives them.
    assert [str(b.address) for b in shown.mailboxes] == ["alice@example.test", "bob@example.test"]
    assert list(shown.mailboxes) == list(await users.mailboxes(OP, EXAMPLE))
    assert [str(u.address) for u in shown.without_mailbox] == ["carol@example.test"]
    # The plan's storage is shared by every domain of the customer: zed's 500MB counts.
    assert shown.allocation == Allocation("Bulk Hosting", MB("2.5GB"), 1_800_000_000, 0)
    assert shown.allocation == await users.allocation(OP, EXAMPLE)
    assert shown.allocation.left == MB("700MB")


async def test_the_same_tenant_checks_as_the_separate_reads(runtime: Runtime) -> None:
    """mallory (customer and domain manager of evil.test) aims at acme's example.test."""
    await two_domains(runtime)
    users, accounts = runtime.services.users, runtime.services.accounts
    await make_customer(runtime, "mallory")
    await make_domain(runtime, "evil.test", "mallory")
    mallory = await accounts.customer(OP, "mallory")
    evil = await accounts.domain(OP, DomainName.parse("evil.test"))
    second = await accounts.domain(OP, DomainName.parse("second.test"))
    hostile: list[Actor] = [
        CustomerActor(mallory.id, mallory.login),
        DomainActor(evil.id, mallory.id, evil.name),
        # The same customer's other domain is another tenant for a domain login.
        DomainActor(second.id, second.customer_id, second.name),
    ]
    for actor in hostile:
        with pytest.raises(UnknownDomain, match="domain example.test is not hosted here"):
            await users.domain_mailboxes(actor, EXAMPLE)
    bob = await users.user(OP, addr("bob@example.test"))
    himself = UserActor(bob.id, bob.domain_id, bob.customer_id, bob.address)
    with pytest.raises(NotPermitted, match="only the domain's manager may change domain"):
        await users.domain_mailboxes(himself, EXAMPLE)
    example = await accounts.domain(OP, EXAMPLE)
    acme = await accounts.customer(OP, "acme")
    for allowed in (
        DomainActor(example.id, example.customer_id, example.name),
        CustomerActor(acme.id, acme.login),
    ):
        shown = await users.domain_mailboxes(allowed, EXAMPLE)
        assert len(shown.mailboxes) == 2
