"""Aliases and catch-alls: who may make them, where they may send, and where the MX sends.

Two customers: acme (a.test and a2.test, mailboxes boss@, alice@ and carl@a2, a
user without a mailbox, a full mailbox) and other (b.test, bob@), the second one
hostile. Real database, SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from mailhost.errors import (
    AliasExists,
    AliasLoop,
    ForwardLimitReached,
    InvalidAddress,
    NoMailbox,
    NotPermitted,
    UnknownAlias,
    UnknownDomain,
    UserExists,
)
from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.aliases import MAX_DEPTH
from mailhost.model.envelope import Accept, Envelope, Expand, Owner, Reason, Refuse, Relay
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.model.records import AliasTarget
from mailhost.model.srs import SrsCodec
from mailhost.runtime import Runtime
from mailhost.services.aliases import AliasService
from mailhost.services.audit_text import describe
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.services.usage import utc_now
from mailhost.smtp import replies
from tests.quotas import add_small_mailbox

OP = ProviderActor("test")
PW = "correct horse battery"
A, A2, B = (DomainName.parse(n) for n in ("a.test", "a2.test", "b.test"))


def addr(text: str) -> EmailAddress:
    return EmailAddress.parse(text)


def addrs(*texts: str) -> list[EmailAddress]:
    return [addr(text) for text in texts]


@dataclass(frozen=True)
class World:
    rt: Runtime
    acme: CustomerActor
    other: CustomerActor
    manager_a: DomainActor
    manager_b: DomainActor
    alice: UserActor
    a_owner: Owner

    @property
    def aliases(self) -> AliasService:
        return self.rt.services.aliases

    @property
    def policy(self) -> InboundPolicy:
        return self.rt.services.inbound

    async def route(self, address: str) -> object:
        return await self.policy.route(addr(address))

    async def mailbox(self, address: str) -> Accept:
        found = await InboundPolicy(self.rt.units).lookup(addr(address))
        assert isinstance(found, Accept), found
        return found


@pytest.fixture
async def world(runtime: Runtime) -> World:
    accounts, users = runtime.services.accounts, runtime.services.users
    acme = await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@a.test", PW)
    other = await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@remote.test", PW)
    for name, owner in ((A, "acme"), (A2, "acme"), (B, "other")):
        await accounts.add_domain(OP, name, owner, PW)
    for address in ("boss@a.test", "alice@a.test", "carl@a2.test", "bob@b.test"):
        await users.add_user(OP, EmailAddress.hosted(address), PW)
        await users.add_mailbox(OP, EmailAddress.hosted(address), ByteSize.parse("100MB"))
    await users.add_user(OP, EmailAddress.hosted("nobox@a.test"), PW)
    await users.add_user(OP, EmailAddress.hosted("full@a.test"), PW)
    await add_small_mailbox(runtime, EmailAddress.hosted("full@a.test"), 0)
    a = await accounts.domain(OP, A)
    b = await accounts.domain(OP, B)
    alice = await users.user(OP, EmailAddress.hosted("alice@a.test"))
    return World(
        runtime,
        CustomerActor(acme.id, acme.login),
        CustomerActor(other.id, other.login),
        DomainActor(a.id, a.customer_id, a.name),
        DomainActor(b.id, b.customer_id, b.name),
        UserActor(alice.id, alice.domain_id, alice.customer_id, alice.address),
        Owner(a.customer_id, a.id),
    )


async def audited(rt: Runtime) -> list[str]:
    async with rt.units() as uow:
        entries = await uow.audit.entries(None)
    wanted = ("alias.", "catchall.")
    return [describe(e) for e in reversed(entries) if e.action.startswith(wanted)]


# ---------------------------------------------------------------- making aliases


async def test_an_alias_sends_to_mailboxes_of_the_customers_domains(world: World) -> None:
    made = await world.aliases.add_alias(world.acme, addr("Info@a.test"), addrs("Alice@a.test"))
    assert made.address == addr("info@a.test")
    assert made.targets == (AliasTarget(addr("alice@a.test"), external=False),)
    made = await world.aliases.add_alias(
        world.acme, addr("info@a.test"), addrs("carl@a2.test", "alice@a.test")
    )
    assert [str(t.address) for t in made.targets] == ["alice@a.test", "carl@a2.test"]
    assert [a.address for a in await world.aliases.aliases(world.manager_a, A)] == [
        addr("info@a.test")
    ]
    assert await audited(world.rt) == [
        "info@a.test: alias added, sending to alice@a.test, by customer acme",
        "info@a.test: alias added, sending to carl@a2.test, alice@a.test, by customer acme",
    ]


async def test_an_alias_expands_at_rcpt_to_each_mailbox_once(world: World) -> None:
    await world.aliases.add_alias(world.acme, addr("info@a.test"), addrs("alice@a.test"))
    await world.aliases.add_alias(
        world.acme, addr("team@a.test"), addrs("info@a.test", "alice@a.test", "carl@a2.test")
    )
    alice, carl = await world.mailbox("alice@a.test"), await world.mailbox("carl@a2.test")
    verdict = await world.route("TEAM@a.test")
    assert verdict == Expand((alice.mailbox, carl.mailbox), (), A, world.a_owner)


async def test_an_address_is_a_user_or_an_alias_never_both(world: World) -> None:
    with pytest.raises(UserExists) as caught:
        await world.aliases.add_alias(world.acme, addr("nobox@a.test"), addrs("alice@a.test"))
    assert caught.value.message == (
        "nobox@a.test is a user: an alias cannot take a user's address "
        "(remove the user first, or give the alias another name)"
    )
    await world.aliases.add_alias(world.acme, addr("info@a.test"), addrs("alice@a.test"))
    with pytest.raises(AliasExists) as refused:
        await world.rt.services.users.add_user(world.acme, EmailAddress.hosted("info@a.test"), PW)
    assert refused.value.message == (
        "info@a.test is an alias: a user cannot take an alias's address "
        "(remove the alias first, or give the user another name)"
    )


async def test_an_alias_cannot_look_like_an_srs_address(world: World) -> None:
    with pytest.raises(InvalidAddress) as caught:
        await world.aliases.add_alias(world.acme, addr("srs0-team@a.test"), addrs("alice@a.test"))
    assert caught.value.message == (
        "srs0-team@a.test looks like an SRS bounce address (SRS0=… or SRS1=…): "
        "give the alias another name"
    )


async def test_a_hosted_target_needs_a_mailbox_or_an_alias(world: World) -> None:
    for target in ("nobox@a.test", "ghost@a.test"):
        with pytest.raises(NoMailbox) as caught:
            await world.aliases.add_alias(world.acme, addr("info@a.test"), addrs(target))
        assert caught.value.message == (
            f"{target} has no POP3 mailbox and is no alias: add one of them first"
        )
    assert await world.aliases.aliases(world.acme, A) == []


async def test_a_loop_is_refused_when_it_is_made(world: World) -> None:
    aliases = world.aliases
    with pytest.raises(AliasLoop) as caught:
        await aliases.add_alias(world.acme, addr("x@a.test"), addrs("X@a.test"))
    assert caught.value.message == "alias x@a.test cannot send its mail to itself"
    await aliases.add_alias(world.acme, addr("x@a.test"), addrs("alice@a.test"))
    await aliases.add_alias(world.acme, addr("y@a2.test"), addrs("x@a.test"))
    with pytest.raises(AliasLoop) as caught:
        await aliases.add_alias(world.acme, addr("x@a.test"), addrs("y@a2.test"))
    assert caught.value.message == (
        "x@a.test -> y@a2.test -> x@a.test: an alias cannot lead back to itself"
    )
    x = await aliases.alias(world.acme, addr("x@a.test"))
    assert [str(t.address) for t in x.targets] == ["alice@a.test"]  # nothing changed


async def test_a_chain_deeper_than_the_limit_is_refused(world: World) -> None:
    await world.aliases.add_alias(world.acme, addr("c0@a.test"), addrs("alice@a.test"))
    for n in range(1, MAX_DEPTH):
        await world.aliases.add_alias(world.acme, addr(f"c{n}@a.test"), addrs(f"c{n - 1}@a.test"))
    assert isinstance(await world.route(f"c{MAX_DEPTH - 1}@a.test"), Expand)
    with pytest.raises(AliasLoop) as caught:
        await world.aliases.add_alias(
            world.acme, addr(f"c{MAX_DEPTH}@a.test"), addrs(f"c{MAX_DEPTH - 1}@a.test")
        )
    assert caught.value.message.endswith(f": aliases may follow each other {MAX_DEPTH} deep")


async def test_a_loop_that_appears_anyway_is_refused_at_rcpt(world: World) -> None:
    async with world.rt.units() as uow:  # as if two nodes each made half of it at once
        await uow.aliases.add(world.a_owner.domain_id, "p", [AliasTarget(addr("q@a.test"), False)])
        await uow.aliases.add(world.a_owner.domain_id, "q", [AliasTarget(addr("p@a.test"), False)])
        await uow.commit()
    verdict = await world.route("p@a.test")
    assert verdict == Refuse(Reason.ALIAS_LOOP, "p@a.test")
    assert isinstance(verdict, Refuse)
    assert replies.render(verdict) == "554 5.4.6 <p@a.test>: alias loop or alias chain too long"


async def test_aliases_do_not_count_toward_the_plans_accounts(world: World) -> None:
    accounts, users = world.rt.services.accounts, world.rt.services.users
    await accounts.add_plan(OP, "One box", PlanLimits(None, None, None, 1))
    await accounts.add_customer(OP, "small", "One box", "owner@remote.test", PW)
    await accounts.add_domain(OP, DomainName.parse("s.test"), "small", PW)
    only = EmailAddress.hosted("only@s.test")
    await users.add_user(OP, only, PW)
    await users.add_mailbox(OP, only, ByteSize.parse("10MB"))
    for n in range(3):
        await world.aliases.add_alias(OP, addr(f"alias{n}@s.test"), [only, addr("x@remote.test")])
    assert len(await world.aliases.aliases(OP, DomainName.parse("s.test"))) == 3


async def test_external_targets_are_capped_per_domain(world: World) -> None:
    capped = AliasService(world.rt.units, max_external_forwards=2)
    await capped.add_alias(world.acme, addr("one@a.test"), addrs("x@remote.test", "y@remote.test"))
    # The same address elsewhere, and hosted targets, count nothing more.
    await capped.add_alias(world.acme, addr("two@a.test"), addrs("x@remote.test", "alice@a.test"))
    with pytest.raises(ForwardLimitReached) as caught:
        await capped.add_alias(world.acme, addr("two@a.test"), addrs("z@remote.test"))
    assert caught.value.message == (
        "domain a.test may forward to 2 addresses elsewhere "
        "([delivery] max_external_forwards_per_domain); with alias two@a.test as asked "
        "it would forward to 3"
    )
    await capped.add_alias(world.acme, addr("three@a2.test"), addrs("z@remote.test"))  # per domain


# ---------------------------------------------------------------- tenants


async def test_a_tenant_cannot_alias_into_another_tenants_mailboxes(world: World) -> None:
    for actor in (world.other, world.manager_b, OP):
        with pytest.raises(NotPermitted) as caught:
            await world.aliases.add_alias(actor, addr("steal@b.test"), addrs("alice@a.test"))
        assert caught.value.message == (
            "alice@a.test is not an address you manage: an alias of b.test can send to the "
            "mailboxes and aliases of your own domains, or to addresses outside this server"
        )
    # A domain's manager reaches its own domain's mailboxes only.
    with pytest.raises(NotPermitted):
        await world.aliases.add_alias(world.manager_a, addr("info@a.test"), addrs("carl@a2.test"))
    assert await world.aliases.aliases(OP, B) == []


async def test_a_tenant_cannot_make_see_or_remove_another_tenants_aliases(world: World) -> None:
    await world.aliases.add_alias(world.acme, addr("info@a.test"), addrs("alice@a.test"))
    for actor in (world.other, world.manager_b):
        with pytest.raises(UnknownDomain):
            await world.aliases.add_alias(actor, addr("evil@a.test"), addrs("bob@b.test"))
        with pytest.raises(UnknownDomain):
            await world.aliases.aliases(actor, A)
        for call in (world.aliases.remove_alias, world.aliases.alias):
            with pytest.raises(UnknownAlias) as caught:
                await call(actor, addr("info@a.test"))
            assert caught.value.message == "alias info@a.test does not exist"
    with pytest.raises(NotPermitted):  # a domain's user sees it but does not manage it
        await world.aliases.remove_alias(world.alice, addr("info@a.test"))
    assert len(await world.aliases.aliases(OP, A)) == 1


async def test_removing_targets_then_the_alias(world: World) -> None:
    aliases = world.aliases
    await aliases.add_alias(world.acme, addr("info@a.test"), addrs("alice@a.test", "boss@a.test"))
    await aliases.remove_alias(world.manager_a, addr("info@a.test"), addrs("Alice@a.test"))
    info = await aliases.alias(world.acme, addr("info@a.test"))
    assert [str(t.address) for t in info.targets] == ["boss@a.test"]
    with pytest.raises(UnknownAlias) as caught:
        await aliases.remove_alias(world.acme, addr("info@a.test"), addrs("carl@a2.test"))
    assert caught.value.message == "carl@a2.test is not a target of alias info@a.test"
    await aliases.remove_alias(world.acme, addr("info@a.test"), addrs("boss@a.test"))
    assert await aliases.aliases(world.acme, A) == []
    assert await world.route("info@a.test") == Refuse(Reason.UNKNOWN_USER, "info@a.test")
    assert (await audited(world.rt))[1:] == [
        "info@a.test: alias removed (targets alice@a.test only), by the a.test domain manager",
        "info@a.test: alias removed (targets boss@a.test only), by customer acme",
    ]


# ---------------------------------------------------------------- at RCPT


async def test_gone_targets_are_skipped_and_full_ones_hold_the_message(world: World) -> None:
    await world.aliases.add_alias(world.acme, addr("info@a.test"), addrs("alice@a.test"))
    await world.aliases.add_alias(world.acme, addr("both@a.test"), addrs("boss@a.test"))
    await world.aliases.add_alias(world.acme, addr("both@a.test"), addrs("alice@a.test"))
    await world.rt.services.users.remove_user(OP, EmailAddress.hosted("alice@a.test"))
    assert await world.route("info@a.test") == Refuse(Reason.UNKNOWN_USER, "info@a.test")
    boss = await world.mailbox("boss@a.test")
    assert await world.route("both@a.test") == Expand((boss.mailbox,), (), A, world.a_owner)
    await world.aliases.add_alias(world.acme, addr("both@a.test"), addrs("full@a.test"))
    assert await world.route("both@a.test") == Refuse(Reason.MAILBOX_FULL, "both@a.test")


async def test_an_external_target_is_forwarded_as_the_aliass_domain(world: World) -> None:
    made = await world.aliases.add_alias(
        world.acme, addr("out@a.test"), addrs("Friend@Remote.test", "alice@a.test")
    )
    assert made.targets[0] == AliasTarget(addr("Friend@remote.test"), external=True)
    alice = await world.mailbox("alice@a.test")
    verdict = await world.route("out@a.test")
    assert verdict == Expand((alice.mailbox,), (addr("Friend@remote.test"),), A, world.a_owner)


async def test_forwarded_copies_are_queued_apart_with_an_srs_sender(world: World) -> None:
    await world.aliases.add_alias(
        world.acme, addr("out@a.test"), addrs("friend@remote.test", "alice@a.test")
    )
    verdict = await world.route("out@a.test")
    assert isinstance(verdict, Expand)
    for sender in ("someone@elsewhere.test", ""):
        envelope = Envelope(sender)
        envelope.add(addr("out@a.test"), verdict)
        await world.rt.services.delivery.accept(envelope, b"Subject: hi\r\n\r\nhello\r\n")
    queued = sorted(await world.rt.queue.queued(10), key=lambda row: row.sender)
    assert [(row.recipient, row.customer_id) for row in queued] == [
        ("friend@remote.test", world.acme.customer_id)
    ] * 2
    assert queued[0].sender == ""  # <> stays <>
    srs = world.policy.srs
    assert srs is not None
    assert queued[1].sender.startswith("SRS0=") and queued[1].sender.endswith("@a.test")
    assert srs.reverse(queued[1].sender, utc_now()) == "someone@elsewhere.test"
    alice = await world.mailbox("alice@a.test")
    assert len(await world.rt.store.list(alice.mailbox.ref)) == 2


async def test_a_bounce_to_an_srs_address_goes_back_to_the_sender(world: World) -> None:
    srs = world.policy.srs
    assert srs is not None
    now = utc_now()
    bounce = srs.forward("someone@elsewhere.test", A, now)
    assert await world.route(bounce) == Relay(addr("someone@elsewhere.test"), world.a_owner)
    # A hosted sender's bounce goes straight into its mailbox.
    carl = await world.mailbox("carl@a2.test")
    assert await world.route(srs.forward("carl@a2.test", A, now)) == carl


async def test_forged_expired_and_malformed_srs_addresses_are_refused(world: World) -> None:
    srs = world.policy.srs
    assert srs is not None
    good = srs.forward("someone@elsewhere.test", A, utc_now())
    forged = SrsCodec(b"another secret").forward("someone@elsewhere.test", A, utc_now())
    old = srs.forward("someone@elsewhere.test", A, utc_now() - timedelta(days=30))
    altered = good.replace("someone", "somebody")
    cases = {
        forged: (Reason.SRS_FORGED, "550 5.7.1", "forged SRS address, not made by this server"),
        altered: (Reason.SRS_FORGED, "550 5.7.1", "forged SRS address, not made by this server"),
        old: (Reason.SRS_EXPIRED, "550 5.1.1", "expired SRS address"),
        "SRS0=xx@a.test": (Reason.SRS_MALFORMED, "550 5.1.1", "malformed SRS address"),
    }
    for address, (reason, code, text) in cases.items():
        verdict = await world.route(address)
        assert verdict == Refuse(reason, address)
        assert isinstance(verdict, Refuse)
        assert replies.render(verdict).startswith(f"{code} <{address}>: {text}")


# ---------------------------------------------------------------- catch-all


async def test_catch_all_takes_only_unknown_local_parts(world: World) -> None:
    assert await world.route("nobody@a.test") == Refuse(Reason.UNKNOWN_USER, "nobody@a.test")
    found = await world.aliases.set_catch_all(world.manager_a, A, addr("Alice@a.test"))
    assert found.mailbox == addr("alice@a.test")
    assert (await world.aliases.catch_all(world.acme, A)).mailbox == addr("alice@a.test")
    alice = await world.mailbox("alice@a.test")
    assert await world.route("nobody@a.test") == alice
    # A user without a mailbox, an alias and postmaster@ keep their own routes.
    assert await world.route("nobox@a.test") == Refuse(Reason.NO_MAILBOX, "nobox@a.test")
    await world.aliases.add_alias(world.acme, addr("info@a.test"), addrs("boss@a.test"))
    boss = await world.mailbox("boss@a.test")
    assert await world.route("info@a.test") == Expand((boss.mailbox,), (), A, world.a_owner)
    assert await world.route("postmaster@a.test") == boss
    assert await world.route("nobody@a2.test") == Refuse(Reason.UNKNOWN_USER, "nobody@a2.test")
    await world.aliases.clear_catch_all(world.acme, A)
    assert await world.route("nobody@a.test") == Refuse(Reason.UNKNOWN_USER, "nobody@a.test")
    assert (await world.aliases.catch_all(world.acme, A)).mailbox is None
    assert await audited(world.rt) == [
        "a.test: catch-all turned on: unknown addresses go to alice@a.test, "
        "by the a.test domain manager",
        "info@a.test: alias added, sending to boss@a.test, by customer acme",
        "a.test: catch-all turned off: unknown addresses are refused, by customer acme",
    ]


async def test_catch_all_goes_with_its_mailboxs_user(world: World) -> None:
    await world.aliases.set_catch_all(world.acme, A, addr("carl@a2.test"))
    await world.rt.services.users.remove_user(OP, EmailAddress.hosted("carl@a2.test"))
    assert await world.route("nobody@a.test") == Refuse(Reason.UNKNOWN_USER, "nobody@a.test")
    assert (await world.aliases.catch_all(world.acme, A)).mailbox is None


async def test_a_tenant_cannot_point_a_catch_all_at_another_tenants_mailbox(
    world: World,
) -> None:
    for actor in (world.other, world.manager_b, OP):
        with pytest.raises(NotPermitted) as caught:
            await world.aliases.set_catch_all(actor, B, addr("alice@a.test"))
        assert caught.value.message == (
            "alice@a.test is not a mailbox you manage: the catch-all of b.test must be "
            "a mailbox of your own domains"
        )
    for actor in (world.other, world.manager_b):
        with pytest.raises(UnknownDomain):
            await world.aliases.set_catch_all(actor, A, addr("bob@b.test"))
        with pytest.raises(UnknownDomain):
            await world.aliases.clear_catch_all(actor, A)
    with pytest.raises(NotPermitted):
        await world.aliases.set_catch_all(world.alice, A, addr("alice@a.test"))
    with pytest.raises(NoMailbox) as no_mailbox:
        await world.aliases.set_catch_all(world.acme, A, addr("nobox@a.test"))
    assert no_mailbox.value.message == (
        "nobox@a.test has no POP3 mailbox: the catch-all of a.test needs one"
    )
    assert (await world.aliases.catch_all(OP, B)).mailbox is None
