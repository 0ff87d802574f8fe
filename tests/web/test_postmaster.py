"""Postmaster & abuse through the API and the panel: the owner's choice, never another
tenant's mailbox or domain (acme owns a.example, other owns b.example)."""

from __future__ import annotations

import httpx

from mailhost.model.actors import Actor, CustomerActor, DomainActor
from mailhost.model.names import DomainName
from tests.web.conftest import OP, World, logged_in
from tests.web.test_api import api, token_for

A = DomainName.parse("a.example")
B = DomainName.parse("b.example")


async def customer_token(world: World, login: str) -> str:
    customer = await world.runtime.services.accounts.customer(OP, login)
    return await token_for(world, CustomerActor(customer.id, customer.login))


async def manager_token(world: World, name: DomainName) -> str:
    domain = await world.runtime.services.accounts.domain(OP, name)
    actor: Actor = DomainActor(domain.id, domain.customer_id, domain.name)
    return await token_for(world, actor)


async def test_api_sets_postmaster_and_abuse_on_the_domain_resource(
    world: World, client: httpx.AsyncClient
) -> None:
    acme = api(client, await customer_token(world, "acme"))
    changed = await acme.ok("PATCH", "/domains/a.example", {"postmaster": "Alice@a.example"})
    assert (changed["postmaster"], changed["abuse"]) == ("alice@a.example", False)
    changed = await acme.ok("PATCH", "/domains/a.example", {"abuse": True})
    assert (changed["postmaster"], changed["abuse"]) == ("alice@a.example", True)
    manager = api(client, await manager_token(world, A))
    changed = await manager.ok("PATCH", "/domains/a.example", {"postmaster": "help@far.example"})
    assert (changed["postmaster"], changed["abuse"]) == ("help@far.example", True)
    changed = await manager.ok("PATCH", "/domains/a.example", {"postmaster": None})
    assert (changed["postmaster"], changed["abuse"]) == (None, True)  # the contact address
    shown = await acme.ok("GET", "/domains/a.example")
    assert (shown["postmaster"], shown["abuse"]) == (None, True)
    await acme.refused(
        "PATCH",
        "/domains/a.example",
        {"postmaster": "not an address"},
        status=422,
        code="invalid_address",
    )


async def test_api_refuses_another_tenants_mailbox_and_domain(
    world: World, client: httpx.AsyncClient
) -> None:
    for token in (await customer_token(world, "other"), await manager_token(world, B)):
        other = api(client, token)
        message = await other.refused(
            "PATCH",
            "/domains/b.example",
            {"postmaster": "boss@a.example"},
            status=403,
            code="not_permitted",
        )
        assert message == (
            "boss@a.example is not a mailbox you manage: postmaster mail of b.example can go "
            "to a mailbox of your own or to an address outside this server"
        )
        await other.refused(
            "PATCH", "/domains/a.example", {"abuse": True}, status=404, code="domain_not_found"
        )
    b = await world.runtime.services.accounts.domain(OP, B)
    a = await world.runtime.services.accounts.domain(OP, A)
    assert (b.postmaster_address, a.abuse_enabled) == (None, False)


async def test_panel_form_chooses_an_address_and_abuse_then_back_to_the_contact(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    portal = await panel.get("/domain/a.example/")
    assert 'href="/domain/a.example/postmaster"' in portal.text
    page = await panel.get("/domain/a.example/postmaster")
    assert page.status_code == 200
    assert '<option value="alice@a.example">' in page.text  # its own mailboxes, suggested
    done = await panel.post(
        "/domain/a.example/postmaster", target="address", address="alice@a.example", abuse="yes"
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/domain/a.example/postmaster?done=postmaster_changed"
    page = await panel.get(done.headers["location"])
    assert "Postmaster and abuse mail go where you chose." in page.text
    a = await world.runtime.services.accounts.domain(OP, A)
    assert (str(a.postmaster_address), a.abuse_enabled) == ("alice@a.example", True)
    refused = await panel.post(
        "/domain/a.example/postmaster", target="address", address="bob@b.example"
    )
    assert refused.status_code == 403
    assert "bob@b.example is not a mailbox you manage" in refused.text
    done = await panel.post("/domain/a.example/postmaster", target="default")
    assert done.status_code == 303
    a = await world.runtime.services.accounts.domain(OP, A)
    assert (a.postmaster_address, a.abuse_enabled) == (None, False)


async def test_panel_form_without_its_csrf_token_changes_nothing(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    answer = await client.post(
        "/domain/a.example/postmaster", data={"target": "default", "abuse": "yes"}
    )
    assert answer.status_code == 403
    assert panel.csrf  # the page had one; this request did not send it
    a = await world.runtime.services.accounts.domain(OP, A)
    assert a.abuse_enabled is False


async def test_help_page_explains_postmaster_and_abuse(
    world: World, client: httpx.AsyncClient
) -> None:
    page = await client.get("/help/postmaster?domain=a.example")
    assert page.status_code == 200
    assert "postmaster@a.example" in page.text and "abuse@a.example" in page.text
