"""The delivery log as each login may read it: the provider all of it, a customer its
domains', a domain's manager its domain's; another tenant's domain is "not hosted here",
even as a filter; search, status and paging narrow it."""

from __future__ import annotations

import pytest

from mailhost.errors import InvalidInput, NotPermitted, UnknownDomain
from mailhost.interfaces import Relayed
from mailhost.model.actors import Actor, CustomerActor, DomainActor, UserActor
from mailhost.model.delivery_log import DeliveryLogQuery
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.accounts import AccountService
from tests.delivery_log import OP, T0, log_attempt, two_tenants_log

PW = "correct horse battery"
A, B = DomainName.parse("a.example"), DomainName.parse("b.example")


async def tenants(rt: Runtime) -> tuple[CustomerActor, CustomerActor]:
    """acme owns a.example, other owns b.example (without certificates or DKIM keys)."""
    accounts = AccountService(rt.units, rt.services.passwords)
    acme = await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@acme.test", PW)
    other = await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@other.test", PW)
    await accounts.add_domain(OP, A, "acme", PW)
    await accounts.add_domain(OP, B, "other", PW)
    return CustomerActor(acme.id, "acme"), CustomerActor(other.id, "other")


async def manager_of(rt: Runtime, name: DomainName) -> DomainActor:
    domain = await rt.services.accounts.domain(OP, name)
    return DomainActor(domain.id, domain.customer_id, name)


async def recipients(rt: Runtime, actor: Actor, query: DeliveryLogQuery | None = None) -> list[str]:
    page = await rt.services.mail_queue.delivery_log(actor, query)
    return [e.recipient for e in page.entries]


async def test_provider_reads_every_entry_newest_first_with_the_remote_reply(
    runtime: Runtime,
) -> None:
    await tenants(runtime)
    await two_tenants_log(runtime)
    page = await runtime.services.mail_queue.delivery_log(OP)
    assert page.total == 5
    assert [(e.recipient, e.status) for e in page.entries] == [
        ("admin@elsewhere.test", "delivered"),
        ("secret@rival.test", "delivered"),
        ("dave@slow.test", "deferred"),
        ("nobody@far.test", "failed"),
        ("carol@far.test", "delivered"),
    ]
    failed = page.entries[3]
    assert failed.sender == "alice@a.example"
    assert failed.remote_reply == "550 5.1.1 <nobody@far.test>: no"


async def test_each_customer_reads_only_its_own_domains_mail(runtime: Runtime) -> None:
    acme, other = await tenants(runtime)
    await two_tenants_log(runtime)
    assert await recipients(runtime, acme) == [
        "dave@slow.test",
        "nobody@far.test",
        "carol@far.test",
    ]
    assert await recipients(runtime, other) == ["secret@rival.test"]
    # mailhost's own notice is the provider's alone.
    for actor in (acme, other):
        page = await runtime.services.mail_queue.delivery_log(actor)
        assert "admin@elsewhere.test" not in [e.recipient for e in page.entries]


async def test_another_tenants_domain_as_a_filter_is_not_hosted_here(runtime: Runtime) -> None:
    _acme, other = await tenants(runtime)
    await two_tenants_log(runtime)
    queue = runtime.services.mail_queue
    with pytest.raises(UnknownDomain, match=r"^domain a\.example is not hosted here$"):
        await queue.delivery_log(other, DeliveryLogQuery(domain=A))
    # Exactly as a domain that does not exist at all: nothing to learn from the answer.
    with pytest.raises(UnknownDomain, match=r"^domain nowhere\.example is not hosted here$"):
        await queue.delivery_log(
            other, DeliveryLogQuery(domain=DomainName.parse("nowhere.example"))
        )
    # Searching for the other tenant's addresses finds nothing either.
    hostile = await queue.delivery_log(other, DeliveryLogQuery(search="a.example"))
    assert hostile.entries == [] and hostile.total == 0


async def test_a_domain_manager_reads_its_domain_and_no_other(runtime: Runtime) -> None:
    await tenants(runtime)
    await two_tenants_log(runtime)
    manager_b = await manager_of(runtime, B)
    assert await recipients(runtime, manager_b) == ["secret@rival.test"]
    assert await recipients(runtime, manager_b, DeliveryLogQuery(domain=B)) == ["secret@rival.test"]
    with pytest.raises(UnknownDomain, match=r"^domain a\.example is not hosted here$"):
        await runtime.services.mail_queue.delivery_log(manager_b, DeliveryLogQuery(domain=A))


async def test_a_domain_user_may_not_read_the_log(runtime: Runtime) -> None:
    await tenants(runtime)
    domain = await runtime.services.accounts.domain(OP, A)
    user = UserActor(1, domain.id, domain.customer_id, EmailAddress.parse("alice@a.example"))
    message = "only the provider, a customer or a domain's manager may read the delivery log"
    with pytest.raises(NotPermitted, match=f"^{message}$"):
        await runtime.services.mail_queue.delivery_log(user)


async def test_search_status_domain_and_paging_narrow_the_log(runtime: Runtime) -> None:
    acme, _other = await tenants(runtime)
    ids = await two_tenants_log(runtime)
    # A part of an address, in any case.
    assert await recipients(runtime, OP, DeliveryLogQuery(search="FAR.test")) == [
        "nobody@far.test",
        "carol@far.test",
    ]
    # The sender matches too, and so does a message id.
    assert await recipients(runtime, OP, DeliveryLogQuery(search="boss@")) == ["dave@slow.test"]
    # The id's tail: its head is the second it was made in, shared by the other messages.
    by_id = DeliveryLogQuery(search=ids["secret@rival.test"][-10:])
    assert await recipients(runtime, OP, by_id) == ["secret@rival.test"]
    # LIKE's wildcards are taken as typed.
    assert await recipients(runtime, OP, DeliveryLogQuery(search="%")) == []
    assert await recipients(runtime, OP, DeliveryLogQuery(search="_")) == []
    assert await recipients(runtime, acme, DeliveryLogQuery(status="failed")) == ["nobody@far.test"]
    assert await recipients(runtime, OP, DeliveryLogQuery(domain=B)) == ["secret@rival.test"]
    first = await runtime.services.mail_queue.delivery_log(acme, DeliveryLogQuery(limit=2))
    second = await runtime.services.mail_queue.delivery_log(
        acme, DeliveryLogQuery(limit=2, offset=2)
    )
    assert (first.total, second.total) == (3, 3)
    assert [e.recipient for e in first.entries] == ["dave@slow.test", "nobody@far.test"]
    assert [e.recipient for e in second.entries] == ["carol@far.test"]


def test_a_query_is_checked_where_it_is_parsed() -> None:
    with pytest.raises(InvalidInput, match="^status 'lost' is unknown: use delivered, "):
        DeliveryLogQuery.parse(status="lost")
    with pytest.raises(InvalidInput, match="^a page shows 1 to 500 entries, not 0$"):
        DeliveryLogQuery(limit=0)
    with pytest.raises(InvalidInput, match="^the offset must be 0 or more, not -1$"):
        DeliveryLogQuery(offset=-1)
    parsed = DeliveryLogQuery.parse("  bob ", " Failed ", "A.Example")
    assert parsed == DeliveryLogQuery("bob", "failed", A)


async def test_a_removed_customers_entries_stay_for_the_provider_only(runtime: Runtime) -> None:
    await tenants(runtime)
    await two_tenants_log(runtime)
    await runtime.services.accounts.remove_customer(OP, "acme")
    accounts = AccountService(runtime.units, runtime.services.passwords)
    again = await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@acme.test", PW)
    await accounts.add_domain(OP, A, "acme", PW)
    # The new acme (a new id, never a reused one) sees nothing of the old one's mail.
    assert await recipients(runtime, CustomerActor(again.id, "acme")) == []
    assert await recipients(runtime, await manager_of(runtime, A)) == []
    page = await runtime.services.mail_queue.delivery_log(OP, DeliveryLogQuery(search="far.test"))
    assert page.total == 2


async def test_a_queued_message_deleted_by_the_operator_stays_its_owners(
    runtime: Runtime,
) -> None:
    acme, other = await tenants(runtime)
    domain = await runtime.services.accounts.domain(OP, A)
    body = await runtime.spool.write(b"Subject: t\r\n\r\nhello\r\n")
    (queued,) = await runtime.queue.enqueue(
        "alice@a.example", ["x@far.test"], body, domain.customer_id, domain.id, T0, T0
    )
    await runtime.services.mail_queue.delete(OP, queued)
    page = await runtime.services.mail_queue.delivery_log(acme)
    assert [(e.recipient, e.status) for e in page.entries] == [("x@far.test", "deleted")]
    assert await recipients(runtime, other) == []
    await log_attempt(runtime, "bob@b.example", "y@far.test", B, Relayed("250 ok"), T0)
    assert await recipients(runtime, other) == ["y@far.test"]
