"""Removing a domain or a customer in the panel and the API: the amount of mail is shown
before anything is deleted, and only the provider removes customers."""

from __future__ import annotations

import httpx

from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from tests.web.conftest import OP, World, logged_in
from tests.web.test_api import Tokens, api, tokens

__all__ = ["tokens"]  # the fixture, shared with test_api.py

A = DomainName.parse("a.example")
MESSAGE = b"Subject: hello\r\n\r\n" + b"x" * 2481 + b"\r\n"  # 2500 bytes


async def mail_for_a_example(rt: Runtime) -> None:
    """One message in each of a.example's two mailboxes: 5KB in all."""
    boxes = await rt.services.users.mailboxes(OP, A)
    await rt.services.delivery.deliver_local(boxes, MESSAGE)


async def test_customer_sees_how_much_mail_goes_before_removing_a_domain(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    await mail_for_a_example(rt)
    keys = [box.ref for box in await rt.services.users.mailboxes(OP, A)]
    panel = await logged_in(client, "customer", "acme")
    dashboard = await panel.get("/customer/")
    assert 'href="/customer/domains/a.example/remove"' in dashboard.text

    page = await panel.get("/customer/domains/a.example/remove")

    assert page.status_code == 200
    assert "Domain a.example: 2 mailboxes, 5KB of mail will be deleted for good." in page.text
    assert await rt.services.accounts.domains(OP, "acme") != []  # nothing done yet
    removed = await panel.post("/customer/domains/a.example/remove", confirm="yes")
    assert removed.status_code == 303
    assert removed.headers["location"] == "/customer/?done=domain_removed"
    assert await rt.services.accounts.domains(OP, "acme") == []
    assert not any(rt.store.maildir_path(ref).exists() for ref in keys)


async def test_a_customer_cannot_see_the_removal_figures_of_another_customers_domain(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    page = await panel.get("/customer/domains/b.example/remove")
    assert page.status_code == 404
    assert "domain b.example is not hosted here" in page.text


async def test_provider_removes_a_customer_after_seeing_how_much_mail_goes(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    await mail_for_a_example(rt)
    panel = await logged_in(client, "provider", "root")
    listing = await panel.get("/provider/customers")
    assert 'href="/provider/customers/acme/remove"' in listing.text

    page = await panel.get("/provider/customers/acme/remove")

    figure = "Customer acme: 1 domain, 2 mailboxes, 5KB of mail will be deleted for good."
    assert figure in page.text
    unconfirmed = await panel.post("/provider/customers/acme/remove")
    assert unconfirmed.headers["location"] == "/provider/customers/acme/remove"
    assert [c.login for c in await rt.services.accounts.customers(OP)] == ["acme", "other"]
    removed = await panel.post("/provider/customers/acme/remove", confirm="yes")
    assert removed.status_code == 303
    assert removed.headers["location"] == "/provider/customers?done=customer_removed"
    assert [c.login for c in await rt.services.accounts.customers(OP)] == ["other"]
    assert [d.name.ascii for d in await rt.services.accounts.domains(OP)] == ["b.example"]


async def test_only_a_provider_session_reaches_customer_removal(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    for answer in (
        await panel.get("/provider/customers/acme/remove"),
        await panel.post("/provider/customers/acme/remove", confirm="yes"),
    ):
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login/provider"
    assert len(await world.runtime.services.accounts.customers(OP)) == 2


async def test_api_removes_a_customer_for_the_provider_only(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    rt = world.runtime
    await mail_for_a_example(rt)
    missing = await api(client, tokens.provider).call("DELETE", "/customers/ghost")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "customer_not_found",
        "message": "customer 'ghost' does not exist",
    }
    for token in (tokens.acme, tokens.other, tokens.domain_a):
        refused = await api(client, token).call("DELETE", "/customers/acme")
        assert refused.status_code == 404
        assert refused.json() == {
            "code": "customer_not_found",
            "message": "customer 'acme' does not exist",
        }
    assert len(await rt.services.accounts.customers(OP)) == 2

    await api(client, tokens.provider).ok("DELETE", "/customers/acme", status=204)

    assert [c.login for c in await rt.services.accounts.customers(OP)] == ["other"]
    gone = await api(client, tokens.provider).call("GET", "/customers/acme")
    assert gone.status_code == 404
    (usage,) = await rt.services.usage.report(OP, "other")
    assert usage.domains == 1
