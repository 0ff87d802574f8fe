"""postmaster@ and abuse@: who may choose where they go, and where the MX sends them.

Two customers: acme (a.test and a2.test, contact boss@a.test, a hosted mailbox)
and other (b.test, contact chief@remote.test, an address elsewhere), the second
one hostile. Real database, SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailhost.errors import NoMailbox, NotPermitted, UnknownDomain
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.envelope import Accept, Client, Envelope, Owner, Reason, Refuse, Relay
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.roles import forward_path
from mailhost.runtime import Runtime
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.services.postmaster import DEFAULT
from tests.quotas import add_small_mailbox

OP = ProviderActor("test")
PW = "correct horse battery"
HOST = "mx.hosting.test"
A, A2, B = (DomainName.parse(n) for n in ("a.test", "a2.test", "b.test"))
MX = Client("192.0.2.1", "client.test", tls=False)


def addr(text: str) -> EmailAddress:
    return EmailAddress.parse(text)


@dataclass(frozen=True)
class World:
    rt: Runtime
    acme: CustomerActor
    other: CustomerActor
    manager_a: DomainActor
    manager_b: DomainActor
    b_owner: Owner

    async def mailbox(self, address: str) -> Accept:
        verdict = await InboundPolicy(self.rt.units).lookup(addr(address))
        assert isinstance(verdict, Accept), verdict
        return verdict


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
    a = await accounts.domain(OP, A)
    b = await accounts.domain(OP, B)
    return World(
        runtime,
        CustomerActor(acme.id, acme.login),
        CustomerActor(other.id, other.login),
        DomainActor(a.id, a.customer_id, a.name),
        DomainActor(b.id, b.customer_id, b.name),
        Owner(b.customer_id, b.id),
    )


async def audited(rt: Runtime) -> list[tuple[str, str, str]]:
    async with rt.units() as uow:
        entries = await uow.audit.entries(None)
    return [
        (e.action, e.target, e.actor) for e in reversed(entries) if e.action == "domain.postmaster"
    ]


# ---------------------------------------------------------------- choosing


async def test_customer_chooses_its_own_mailbox_an_address_elsewhere_or_the_default(
    world: World,
) -> None:
    postmaster = world.rt.services.postmaster
    chosen = await postmaster.set_postmaster(world.acme, A, to=addr("alice@a.test"))
    assert (chosen.postmaster_address, chosen.abuse_enabled) == (addr("alice@a.test"), False)
    chosen = await postmaster.set_postmaster(world.acme, A, abuse=True)  # the address stays
    assert (chosen.postmaster_address, chosen.abuse_enabled) == (addr("alice@a.test"), True)
    chosen = await postmaster.set_postmaster(world.acme, A, to=addr("Help@Elsewhere.test"))
    assert str(chosen.postmaster_address) == "Help@elsewhere.test"
    chosen = await postmaster.set_postmaster(world.acme, A, to=DEFAULT, abuse=False)
    assert (chosen.postmaster_address, chosen.abuse_enabled) == (None, False)
    assert await world.rt.services.accounts.domain(OP, A) == chosen
    assert await audited(world.rt) == [("domain.postmaster", "a.test", "customer:acme")] * 4


async def test_a_tenant_cannot_send_its_postmaster_mail_into_another_tenants_mailbox(
    world: World,
) -> None:
    postmaster = world.rt.services.postmaster
    for actor in (world.other, world.manager_b):
        with pytest.raises(NotPermitted) as caught:
            await postmaster.set_postmaster(actor, B, to=addr("alice@a.test"), abuse=True)
        assert caught.value.message == (
            "alice@a.test is not a mailbox you manage: postmaster mail of b.test can go "
            "to a mailbox of your own or to an address outside this server"
        )
    # Not even the provider puts one customer's role mail into another's mailbox.
    with pytest.raises(NotPermitted):
        await postmaster.set_postmaster(OP, B, to=addr("alice@a.test"))
    b = await world.rt.services.accounts.domain(OP, B)
    assert (b.postmaster_address, b.abuse_enabled) == (None, False)
    assert await audited(world.rt) == []


async def test_a_tenant_cannot_change_another_tenants_domain(world: World) -> None:
    postmaster = world.rt.services.postmaster
    for actor in (world.other, world.manager_b):
        with pytest.raises(UnknownDomain) as caught:
            await postmaster.set_postmaster(actor, A, to=addr("bob@b.test"), abuse=True)
        assert caught.value.message == "domain a.test is not hosted here"
    a = await world.rt.services.accounts.domain(OP, A)
    assert (a.postmaster_address, a.abuse_enabled) == (None, False)


async def test_a_domain_manager_chooses_among_its_own_domains_mailboxes(world: World) -> None:
    postmaster = world.rt.services.postmaster
    chosen = await postmaster.set_postmaster(world.manager_a, A, to=addr("alice@a.test"))
    assert chosen.postmaster_address == addr("alice@a.test")
    with pytest.raises(NotPermitted):  # a sibling domain's mailbox: not the manager's
        await postmaster.set_postmaster(world.manager_a, A, to=addr("carl@a2.test"))
    assert (
        await postmaster.set_postmaster(world.acme, A, to=addr("carl@a2.test"))
    ).postmaster_address
    alice = await world.rt.services.users.user(OP, EmailAddress.hosted("alice@a.test"))
    as_user: Actor = UserActor(alice.id, alice.domain_id, alice.customer_id, alice.address)
    with pytest.raises(NotPermitted) as caught:
        await postmaster.set_postmaster(as_user, A, abuse=True)
    assert caught.value.message == "only the domain's manager may change domain a.test"


async def test_a_hosted_address_without_a_mailbox_is_refused(world: World) -> None:
    postmaster = world.rt.services.postmaster
    for target in ("nobox@a.test", "ghost@a.test", "postmaster@a.test"):
        with pytest.raises(NoMailbox) as caught:
            await postmaster.set_postmaster(world.acme, A, to=addr(target))
        assert caught.value.message == (
            f"{target} has no POP3 mailbox: postmaster mail of a.test needs one"
        )


async def test_an_address_at_a_pending_domain_is_an_address_elsewhere(world: World) -> None:
    pending = DomainName.parse("pending.test")
    await world.rt.services.accounts.add_domain(world.other, pending, "other", PW)
    chosen = await world.rt.services.postmaster.set_postmaster(
        world.acme, A, to=addr("someone@pending.test")
    )
    assert chosen.postmaster_address == addr("someone@pending.test")


# ---------------------------------------------------------------- where the MX sends it


async def test_postmaster_without_a_user_goes_to_the_contact_mailbox(world: World) -> None:
    policy = InboundPolicy(world.rt.units)
    boss = await world.mailbox("boss@a.test")
    for raw in ("postmaster@a.test", "PostMaster@A.test"):
        assert await policy.route(addr(raw)) == boss
    assert await policy.lookup(addr("postmaster@a.test")) == Refuse(
        Reason.UNKNOWN_USER, "postmaster@a.test"
    )  # lookup is about mailboxes only; route adds the roles


async def test_postmaster_with_a_contact_elsewhere_is_relayed_as_the_domains_mail(
    world: World,
) -> None:
    verdict = await InboundPolicy(world.rt.units).route(addr("postmaster@b.test"))
    assert verdict == Relay(addr("chief@remote.test"), world.b_owner)


async def test_a_mailbox_named_postmaster_comes_first_and_a_user_without_one_does_not(
    world: World,
) -> None:
    policy = InboundPolicy(world.rt.units)
    await world.rt.services.postmaster.set_postmaster(world.acme, A, to=addr("alice@a.test"))
    assert await policy.route(addr("postmaster@a.test")) == await world.mailbox("alice@a.test")
    users = world.rt.services.users
    await users.add_user(OP, EmailAddress.hosted("postmaster@a.test"), PW)
    assert await policy.route(addr("postmaster@a.test")) == await world.mailbox("alice@a.test")
    await users.add_mailbox(OP, EmailAddress.hosted("postmaster@a.test"), ByteSize.parse("100MB"))
    assert await policy.route(addr("postmaster@a.test")) == await world.mailbox("postmaster@a.test")


async def test_abuse_is_refused_until_turned_on(world: World) -> None:
    policy = InboundPolicy(world.rt.units)
    assert await policy.route(addr("abuse@a.test")) == Refuse(Reason.UNKNOWN_USER, "abuse@a.test")
    await world.rt.services.postmaster.set_postmaster(world.acme, A, abuse=True)
    assert await policy.route(addr("Abuse@a.test")) == await world.mailbox("boss@a.test")
    assert await policy.route(addr("webmaster@a.test")) == Refuse(
        Reason.UNKNOWN_USER, "webmaster@a.test"
    )


async def test_pending_unhosted_and_disabled_domains_get_what_their_other_mail_gets(
    world: World,
) -> None:
    policy = InboundPolicy(world.rt.units)
    pending = DomainName.parse("pending.test")
    await world.rt.services.accounts.add_domain(world.other, pending, "other", PW)
    for raw in ("postmaster@pending.test", "postmaster@elsewhere.test"):
        assert await policy.route(addr(raw)) == Refuse(Reason.RELAY_DENIED, raw)
    await world.rt.services.accounts.set_domain_enabled(OP, B, False)
    assert await policy.route(addr("postmaster@b.test")) == Refuse(
        Reason.TENANT_DISABLED, "postmaster@b.test"
    )


async def test_a_refusal_names_the_role_address_never_the_target(world: World) -> None:
    users = world.rt.services.users
    await users.add_user(OP, EmailAddress.hosted("full@a.test"), PW)
    await add_small_mailbox(world.rt, EmailAddress.hosted("full@a.test"), room=0)
    await world.rt.services.postmaster.set_postmaster(world.acme, A, to=addr("full@a.test"))
    verdict = await InboundPolicy(world.rt.units).route(addr("postmaster@a.test"))
    assert verdict == Refuse(Reason.MAILBOX_FULL, "postmaster@a.test")


async def test_the_servers_own_postmaster_is_the_first_provider_admin(world: World) -> None:
    policy = InboundPolicy(world.rt.units, hostname=HOST)
    bare = forward_path("PostMaster", HOST)
    assert bare == EmailAddress("postmaster", DomainName(HOST))
    assert await policy.route(bare) == Refuse(Reason.UNKNOWN_USER, f"postmaster@{HOST}")
    admins = world.rt.web_access.admins
    await admins.add(OP, "root", "ops@remote.test", PW)
    await admins.add(OP, "later", "boss@a.test", PW)
    assert await policy.route(bare) == Relay(addr("ops@remote.test"), None)  # never held
    assert await InboundPolicy(world.rt.units).route(bare) == Refuse(
        Reason.RELAY_DENIED, f"postmaster@{HOST}"
    )  # a policy for another host name: not its postmaster


async def test_one_message_relays_role_mail_of_one_owner_only(world: World) -> None:
    await world.rt.web_access.admins.add(OP, "root", "ops@remote.test", PW)
    policy = InboundPolicy(world.rt.units, hostname=HOST)
    envelope = Envelope("sender@remote.test")
    first = await policy.check_recipient(MX, envelope, addr("postmaster@b.test"))
    assert isinstance(first, Relay)
    envelope.add(addr("postmaster@b.test"), first)
    assert envelope.owner == world.b_owner  # held while other or b.test is disabled
    local = await policy.check_recipient(MX, envelope, addr("postmaster@a.test"))
    assert local == await world.mailbox("boss@a.test")
    server = await policy.check_recipient(MX, envelope, forward_path("postmaster", HOST))
    assert server == Refuse(Reason.ANOTHER_OWNER, f"postmaster@{HOST}")


async def test_a_postmaster_pointing_at_the_servers_postmaster_never_loops(world: World) -> None:
    policy = InboundPolicy(world.rt.units, hostname=HOST)
    bare = forward_path("postmaster", HOST)
    await world.rt.services.postmaster.set_postmaster(world.acme, A, to=bare)
    await world.rt.web_access.admins.add(OP, "root", f"PostMaster@{HOST}", PW)  # itself
    for address in (bare, addr("postmaster@a.test")):
        assert await policy.route(address) == Refuse(Reason.UNKNOWN_USER, str(address))


async def test_a_domains_postmaster_may_be_the_servers(world: World) -> None:
    policy = InboundPolicy(world.rt.units, hostname=HOST)
    await world.rt.services.postmaster.set_postmaster(
        world.acme, A, to=forward_path("postmaster", HOST)
    )
    await world.rt.web_access.admins.add(OP, "root", "ops@remote.test", PW)
    assert await policy.route(addr("postmaster@a.test")) == Relay(addr("ops@remote.test"), None)


async def test_submission_routes_role_addresses_like_the_mx_without_relaying_authority(
    world: World,
) -> None:
    # alice@a.test has no SMTP account: she may not relay, yet postmaster@b.test (sent on
    # to chief@remote.test by b.test's own choice) and postmaster@a.test (boss's mailbox)
    # reach their targets, queued as b.test's mail, not as hers.
    rt = world.rt
    async with rt.units() as uow:
        login = await uow.directory.find_login(addr("alice@a.test"))
    client = Client("192.0.2.9", "laptop.test", tls=True, login=login)
    envelope = await rt.submission.check_sender(client, "alice@a.test", None)
    assert isinstance(envelope, Envelope)
    outside = await rt.submission.check_recipient(client, envelope, addr("zed@remote.test"))
    assert outside == Refuse(Reason.NO_SMTP_ACCOUNT, "alice@a.test")
    relayed = await rt.submission.check_recipient(client, envelope, addr("postmaster@b.test"))
    assert relayed == Relay(addr("chief@remote.test"), world.b_owner)
    envelope.add(addr("postmaster@b.test"), relayed)
    hosted = await rt.submission.check_recipient(client, envelope, addr("postmaster@a.test"))
    assert hosted == await world.mailbox("boss@a.test")


async def test_mailhosts_own_mail_to_a_role_address_goes_where_its_domain_says(
    world: World,
) -> None:
    rt = world.rt
    await rt.services.delivery.send("", [addr("postmaster@a.test"), addr("abuse@b.test")], b"x")
    box = (await world.mailbox("boss@a.test")).mailbox
    assert len(await rt.store.list(box.ref)) == 1  # abuse@ is off by default: not sent
    assert await rt.queue.queued(10) == []
