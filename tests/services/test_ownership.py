"""Domain ownership: a customer's domain is pending until its TXT proof is seen in DNS.

The DNS answers come from a real authoritative server on 127.0.0.1 (tests/nameserver.py)
that `[dns] nameservers` points at; two customers, the second one hostile.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailhost.errors import (
    DomainExists,
    NotPermitted,
    OwnershipNotProven,
    TemporaryFailure,
    UnknownDomain,
)
from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor
from mailhost.model.envelope import Accept, Reason, Refuse
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import DomainRecord
from mailhost.runtime import Runtime
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.settings import Settings, load_settings
from tests.nameserver import Nameserver

OP = ProviderActor("test")
PW = "correct horse battery"
OWNED = DomainName.parse("owned.test")
CEO = EmailAddress.hosted("ceo@owned.test")


@pytest.fixture
def settings(data_dir: Path, database_url: str, nameserver: Nameserver) -> Settings:
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        **nameserver.environ(),
    }
    return load_settings(None, data_dir, environ)


async def customers(rt: Runtime) -> tuple[CustomerActor, CustomerActor]:
    """acme (the real owner of owned.test, in the end) and mallory (the squatter)."""
    accounts = rt.services.accounts
    acme = await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@acme.test", PW)
    mallory = await accounts.add_customer(OP, "mallory", "Bulk Hosting", "m@evil.test", PW)
    return CustomerActor(acme.id, acme.login), CustomerActor(mallory.id, mallory.login)


async def pending_domain(rt: Runtime, owner: CustomerActor) -> DomainRecord:
    """owned.test added by `owner`, with ceo@owned.test and a mailbox, as the panel does it."""
    domain = await rt.services.accounts.add_domain(owner, OWNED, owner.login, PW)
    await rt.services.users.add_user(owner, CEO, PW)
    await rt.services.users.add_mailbox(owner, CEO, ByteSize.parse("100MB"))
    return domain


async def test_a_customers_new_domain_is_pending_and_receives_nothing(runtime: Runtime) -> None:
    acme, _ = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    assert (domain.verified, domain.status) == (False, "pending")
    assert len(domain.verification_token) == 32
    policy = InboundPolicy(runtime.units)
    # Hosted user with a mailbox, yet refused like any domain mailhost does not host.
    assert await policy.lookup(CEO) == Refuse(Reason.RELAY_DENIED, str(CEO))
    (listed,) = await runtime.services.accounts.domains(acme)
    assert listed.status == "pending"


async def test_a_domain_the_provider_adds_is_verified_at_once(runtime: Runtime) -> None:
    await customers(runtime)
    domain = await runtime.services.accounts.add_domain(OP, OWNED, "acme", PW)
    assert (domain.verified, domain.status) == (True, "verified")
    await runtime.services.users.add_user(OP, CEO, PW)
    await runtime.services.users.add_mailbox(OP, CEO, ByteSize.parse("100MB"))
    assert isinstance(await InboundPolicy(runtime.units).lookup(CEO), Accept)


async def test_verify_finds_the_published_token_and_the_domain_receives(
    runtime: Runtime, nameserver: Nameserver
) -> None:
    acme, _ = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    policy = InboundPolicy(runtime.units)
    assert isinstance(await policy.lookup(CEO), Refuse)
    nameserver.publish_txt(
        "owned.test", "v=spf1 -all", f"mailhost-verification={domain.verification_token}"
    )
    verified = await runtime.services.accounts.verify_domain(acme, OWNED)
    assert (verified.verified, verified.status) == (True, "verified")
    assert (await runtime.services.accounts.domain(acme, OWNED)).verified
    # Refusals are never cached: the very next RCPT is accepted.
    assert isinstance(await policy.lookup(CEO), Accept)
    (entry, *_) = await runtime.web_access.audit.entries(OP, 10)
    assert (entry.action, entry.target, entry.actor) == ("domain.verify", "owned.test", str(acme))


async def test_the_domains_manager_may_check_its_proof_too(
    runtime: Runtime, nameserver: Nameserver
) -> None:
    acme, _ = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    nameserver.publish_txt("owned.test", f"mailhost-verification={domain.verification_token}")
    manager = DomainActor(domain.id, acme.customer_id, OWNED)
    assert (await runtime.services.accounts.verify_domain(manager, OWNED)).verified


async def test_verify_without_the_record_says_what_to_publish(
    runtime: Runtime, nameserver: Nameserver
) -> None:
    acme, _ = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    nameserver.publish_txt("owned.test", "v=spf1 -all")  # the name exists, the proof does not
    for _ in range(2):  # a name with TXT records, then one that does not exist at all
        with pytest.raises(OwnershipNotProven) as caught:
            await runtime.services.accounts.verify_domain(acme, OWNED)
        assert caught.value.message == (
            f"no TXT record mailhost-verification={domain.verification_token} found at "
            "owned.test; publish it and check again (DNS changes can take an hour)"
        )
        nameserver.zone.clear()
    assert not (await runtime.services.accounts.domain(acme, OWNED)).verified


async def test_verify_with_another_token_says_what_it_found(
    runtime: Runtime, nameserver: Nameserver
) -> None:
    acme, _ = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    nameserver.publish_txt("owned.test", "mailhost-verification=0123456789abcdef")
    with pytest.raises(OwnershipNotProven) as caught:
        await runtime.services.accounts.verify_domain(acme, OWNED)
    assert caught.value.message == (
        "the TXT record at owned.test is mailhost-verification=0123456789abcdef, not "
        f"mailhost-verification={domain.verification_token}; publish this domain's value "
        "and check again (DNS changes can take an hour)"
    )
    assert not (await runtime.services.accounts.domain(acme, OWNED)).verified


async def test_verify_without_an_answer_says_so_and_the_domain_stays_pending(
    runtime: Runtime, nameserver: Nameserver
) -> None:
    acme, _ = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    nameserver.publish_txt("owned.test", f"mailhost-verification={domain.verification_token}")
    nameserver.silent = True  # the query goes out and nothing comes back
    with pytest.raises(TemporaryFailure) as caught:
        await runtime.services.accounts.verify_domain(acme, OWNED)
    assert caught.value.message == (
        "could not look up the TXT records of owned.test: no answer from DNS within 1 s; "
        "the domain stays pending, check again later"
    )
    assert not (await runtime.services.accounts.domain(acme, OWNED)).verified


async def test_only_the_provider_marks_a_domain_verified_without_its_proof(
    runtime: Runtime,
) -> None:
    acme, _ = await customers(runtime)
    await pending_domain(runtime, acme)
    with pytest.raises(NotPermitted) as caught:
        await runtime.services.accounts.trust_domain(acme, OWNED)
    assert (
        caught.value.message == "only the provider may mark a domain verified without its DNS proof"
    )
    trusted = await runtime.services.accounts.trust_domain(OP, OWNED)
    assert trusted.verified
    assert isinstance(await InboundPolicy(runtime.units).lookup(CEO), Accept)
    (entry, *_) = await runtime.web_access.audit.entries(OP, 10)
    assert (entry.action, entry.target) == ("domain.trust", "owned.test")


async def test_another_customer_cannot_add_a_hosted_domain_nor_learn_whose_it_is(
    runtime: Runtime,
) -> None:
    acme, mallory = await customers(runtime)
    await runtime.services.accounts.add_domain(OP, OWNED, "acme", PW)  # verified
    with pytest.raises(DomainExists) as caught:
        await runtime.services.accounts.add_domain(mallory, OWNED, "mallory", PW)
    assert caught.value.message == "domain owned.test is already hosted here by another account"
    with pytest.raises(DomainExists) as own:
        await runtime.services.accounts.add_domain(acme, OWNED, "acme", PW)
    assert own.value.message == "domain owned.test already exists"
    (held,) = await runtime.services.accounts.domains(OP)
    assert held.customer_login == "acme"


async def test_a_squatters_unproven_claim_is_released_by_the_provider(
    runtime: Runtime, nameserver: Nameserver
) -> None:
    acme, mallory = await customers(runtime)
    await pending_domain(runtime, mallory)
    with pytest.raises(DomainExists) as caught:
        await runtime.services.accounts.add_domain(acme, OWNED, "acme", PW)
    assert caught.value.message == (
        "domain owned.test is already claimed here by another account but not verified; "
        "if it is yours, ask the provider to release the claim"
    )
    assert "mallory" not in caught.value.message
    await runtime.services.accounts.remove_domain(OP, OWNED)
    mine = await runtime.services.accounts.add_domain(acme, OWNED, "acme", PW)
    # The squatter cannot verify the new claim with anything it saw of its own.
    nameserver.publish_txt("owned.test", f"mailhost-verification={mine.verification_token}")
    with pytest.raises(UnknownDomain):
        await runtime.services.accounts.verify_domain(mallory, OWNED)
    assert (await runtime.services.accounts.verify_domain(acme, OWNED)).verified


async def test_other_tenants_and_users_cannot_verify_or_disable_a_domain(
    runtime: Runtime,
) -> None:
    acme, mallory = await customers(runtime)
    domain = await pending_domain(runtime, acme)
    accounts = runtime.services.accounts
    for attempt in (
        accounts.verify_domain(mallory, OWNED),
        accounts.set_domain_enabled(mallory, OWNED, False),
    ):
        with pytest.raises(UnknownDomain) as caught:
            await attempt
        assert caught.value.message == "domain owned.test is not hosted here"
    manager = DomainActor(domain.id, acme.customer_id, OWNED)
    with pytest.raises(NotPermitted) as refused:
        await accounts.set_domain_enabled(manager, OWNED, False)
    assert refused.value.message == "only the customer may disable or enable domain owned.test"
    assert (await accounts.domain(acme, OWNED)).enabled


async def test_disabling_a_domain_shows_and_is_audited(runtime: Runtime) -> None:
    acme, _ = await customers(runtime)
    await runtime.services.accounts.add_domain(OP, OWNED, "acme", PW)
    off = await runtime.services.accounts.set_domain_enabled(acme, OWNED, False)
    assert (off.enabled, off.status) == (False, "disabled")
    assert (await runtime.services.accounts.domain(OP, OWNED)).status == "disabled"
    on = await runtime.services.accounts.set_domain_enabled(OP, OWNED, True)
    assert on.status == "verified"
    actions = [e.action for e in await runtime.web_access.audit.entries(OP, 10)]
    assert actions[:2] == ["domain.enable", "domain.disable"]
