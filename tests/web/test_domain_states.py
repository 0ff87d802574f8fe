"""Pending, verified and disabled domains through the API and the panel (both tenants of
`world`, plus a domain acme adds itself, which is pending).

`[dns] nameservers` points at a DNS server on 127.0.0.1 (tests/nameserver.py), which
the ownership checks ask; the DNS page's own table still asks a silent port.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor
from mailhost.model.envelope import Accept, Reason, Refuse
from mailhost.model.logins import BadCredentials, ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.services.sessions import Login
from mailhost.settings import Settings, load_settings
from tests.nameserver import Nameserver
from tests.web.conftest import HOSTNAME, OP, PW, World, logged_in
from tests.web.test_api import Api, api, token_for

A = DomainName.parse("a.example")
NEW = DomainName.parse("new.example")


@pytest.fixture
def settings(data_dir: Path, database_url: str, nameserver: Nameserver) -> Settings:
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_WEB_PORT": "0",
        **nameserver.environ(),
    }
    return load_settings(None, data_dir, environ)


async def acme_api(world: World, client: httpx.AsyncClient) -> Api:
    acme = await world.runtime.services.accounts.customer(OP, "acme")
    return api(client, await token_for(world, CustomerActor(acme.id, acme.login)))


async def test_api_customer_adds_a_pending_domain_and_proves_it(
    world: World, client: httpx.AsyncClient, nameserver: Nameserver
) -> None:
    acme = await acme_api(world, client)
    added = await acme.ok("POST", "/domains", {"name": "new.example", "password": PW}, status=201)
    assert (added["status"], added["verified"]) == ("pending", False)
    records = await acme.ok("GET", "/domains/new.example/dns-records")
    (proof,) = [r for r in records["items"] if r["value"].startswith("mailhost-verification=")]
    assert (proof["name"], proof["type"]) == ("new.example", "TXT")
    message = await acme.refused(
        "POST",
        "/domains/new.example/verification",
        status=409,
        code="ownership_not_proven",
    )
    assert message == (
        f"no TXT record {proof['value']} found at new.example; "
        "publish it and check again (DNS changes can take an hour)"
    )
    nameserver.publish_txt("new.example", proof["value"])
    verified = await acme.ok("POST", "/domains/new.example/verification")
    assert (verified["status"], verified["verified"]) == ("verified", True)
    records = await acme.ok("GET", "/domains/new.example/dns-records")
    assert not [r for r in records["items"] if r["value"].startswith("mailhost-verification=")]


async def test_api_dns_silence_is_a_temporary_failure_and_changes_nothing(
    world: World, client: httpx.AsyncClient, nameserver: Nameserver
) -> None:
    acme = await acme_api(world, client)
    await acme.ok("POST", "/domains", {"name": "new.example", "password": PW}, status=201)
    nameserver.silent = True
    message = await acme.refused(
        "POST", "/domains/new.example/verification", status=503, code="temporary_failure"
    )
    assert message == (
        "could not look up the TXT records of new.example: no answer from DNS within 1 s; "
        "the domain stays pending, check again later"
    )
    assert (await acme.ok("GET", "/domains/new.example"))["status"] == "pending"


async def test_api_only_the_provider_marks_a_domain_verified(
    world: World, client: httpx.AsyncClient
) -> None:
    acme = await acme_api(world, client)
    await acme.ok("POST", "/domains", {"name": "new.example", "password": PW}, status=201)
    message = await acme.refused(
        "PATCH", "/domains/new.example", {"verified": True}, status=403, code="not_permitted"
    )
    assert message == "only the provider may mark a domain verified without its DNS proof"
    provider = api(client, await token_for(world, ProviderActor("root")))
    trusted = await provider.ok("PATCH", "/domains/new.example", {"verified": True})
    assert trusted["status"] == "verified"


async def test_api_disabling_a_domain_shuts_its_tokens_out_until_enabled(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    a = await rt.services.accounts.domain(OP, A)
    manager = api(client, await token_for(world, DomainActor(a.id, a.customer_id, a.name)))
    acme = await acme_api(world, client)
    assert (await manager.ok("GET", "/me"))["kind"] == "domain"
    message = await manager.refused(
        "PATCH", "/domains/a.example", {"enabled": False}, status=403, code="not_permitted"
    )
    assert message == "only the customer may disable or enable domain a.example"
    off = await acme.ok("PATCH", "/domains/a.example", {"enabled": False})
    assert (off["enabled"], off["status"]) == (False, "disabled")
    assert (await manager.call("GET", "/me")).status_code == 401
    on = await acme.ok("PATCH", "/domains/a.example", {"enabled": True})
    assert on["status"] == "verified"
    assert (await manager.ok("GET", "/me"))["kind"] == "domain"


async def test_panel_customer_disables_and_enables_its_domain(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    dashboard = await panel.get("/customer/")
    assert 'class="domain-status status-verified"' in dashboard.text
    answer = await panel.post("/customer/domains/a.example/enabled", enabled="no", confirm="yes")
    assert (answer.status_code, answer.headers["location"]) == (
        303,
        "/customer/?done=domain_changed",
    )
    assert not (await world.runtime.services.accounts.domain(OP, A)).enabled
    assert 'class="domain-status status-disabled"' in (await panel.get("/customer/")).text
    assert (await panel.login("user", "alice@a.example")).status_code == 401
    assert (await panel.login("domain", "a.example")).status_code == 401
    panel = await logged_in(client, "customer", "acme")
    await panel.get("/customer/")
    answer = await panel.post("/customer/domains/a.example/enabled", enabled="yes")
    assert answer.status_code == 303
    assert (await panel.get("/customer/domains/b.example/disable")).status_code == 404
    foreign = await panel.post("/customer/domains/b.example/enabled", enabled="no", confirm="yes")
    assert foreign.status_code == 404
    assert "domain b.example is not hosted here" in foreign.text
    assert (await world.runtime.services.accounts.domain(OP, DomainName.parse("b.example"))).enabled
    await logged_in(client, "user", "alice@a.example")
    await logged_in(client, "domain", "a.example")


async def test_panel_dns_page_shows_the_proof_and_checks_it(
    world: World, client: httpx.AsyncClient, nameserver: Nameserver
) -> None:
    rt = world.runtime
    acme = await rt.services.accounts.customer(OP, "acme")
    added = await rt.services.accounts.add_domain(CustomerActor(acme.id, "acme"), NEW, "acme", PW)
    panel = await logged_in(client, "customer", "acme")
    page = await panel.get("/domain/new.example/dns")
    assert "Pending: prove that new.example is yours" in page.text
    proof = f"mailhost-verification={added.verification_token}"
    assert proof in page.text
    answer = await panel.post("/domain/new.example/dns/verify")
    assert answer.status_code == 409
    assert f"no TXT record {proof} found at new.example" in answer.text
    nameserver.publish_txt("new.example", proof)
    answer = await panel.post("/domain/new.example/dns/verify")
    assert answer.headers["location"] == "/domain/new.example/dns?done=domain_verified"
    page = await panel.get(answer.headers["location"])
    assert "Ownership of new.example is verified" in page.text
    assert "The domain is verified: it receives mail." in page.text


async def test_panel_provider_lists_domains_marks_one_verified_and_disables_another(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    acme = await rt.services.accounts.customer(OP, "acme")
    await rt.services.accounts.add_domain(CustomerActor(acme.id, "acme"), NEW, "acme", PW)
    panel = await logged_in(client, "provider", "root")
    page = await panel.get("/provider/domains")
    statuses = dict(
        re.findall(
            r"<td>([a-z.]+)</td>\s*<td>\w+</td>\s*<td class=\"domain-status status-(\w+)\"",
            page.text,
        )
    )
    assert statuses == {"a.example": "verified", "b.example": "verified", "new.example": "pending"}
    answer = await panel.post("/provider/domains/new.example/verified")
    assert answer.headers["location"] == "/provider/domains?done=domain_verified"
    assert (await rt.services.accounts.domain(OP, NEW)).verified
    answer = await panel.post("/provider/domains/b.example/enabled", enabled="no", confirm="yes")
    assert answer.headers["location"] == "/provider/domains?done=domain_changed"
    assert (
        await rt.services.accounts.domain(OP, DomainName.parse("b.example"))
    ).status == "disabled"
    customer = await logged_in(client, "customer", "acme")
    refused = await customer.post("/provider/domains/b.example/enabled", enabled="yes")
    assert refused.headers["location"] == "/login/provider"


async def test_api_disabled_customer_gets_no_mail_and_no_logins_until_enabled(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    other = await rt.services.accounts.customer(OP, "other")
    theirs = api(client, await token_for(world, CustomerActor(other.id, other.login)))
    provider = api(client, await token_for(world, ProviderActor("root")))
    policy = InboundPolicy(rt.units)  # no cache: every answer is looked up
    bob = EmailAddress.hosted("bob@b.example")
    client_info = ClientInfo("127.0.0.9", "test")
    await provider.ok("PATCH", "/customers/other", {"enabled": False})
    assert await policy.lookup(bob) == Refuse(Reason.TENANT_DISABLED, str(bob))
    assert (await theirs.call("GET", "/me")).status_code == 401
    refused = await rt.web_access.logins.login("user", str(bob), PW, client_info)
    assert isinstance(refused, BadCredentials)
    # The other tenant goes on as before.
    assert isinstance(await policy.lookup(EmailAddress.hosted("alice@a.example")), Accept)
    await provider.ok("PATCH", "/customers/other", {"enabled": True})
    assert isinstance(await policy.lookup(bob), Accept)
    assert (await theirs.ok("GET", "/me"))["kind"] == "customer"
    assert isinstance(await rt.web_access.logins.login("user", str(bob), PW, client_info), Login)
