"""The Delivery page and GET /api/v1/deliveries: the delivery log, searched and paged, each
login reading only its own; the other tenant hears "not hosted here" and sees nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from playwright.async_api import Page, expect

from mailhost.interfaces import Relayed
from mailhost.model.names import DomainName
from mailhost.web.api.schemas import DeliveryOut
from tests.delivery_log import T0, log_attempt, two_tenants_log
from tests.web.conftest import World, logged_in
from tests.web.test_api import Tokens, api, tokens
from tests.web.test_browser import log_in

__all__ = ["tokens"]  # the fixture, shared with test_api

A = DomainName.parse("a.example")


def recipients(body: dict[str, object]) -> list[str]:
    items = body["items"]
    assert isinstance(items, list)
    return [item["recipient"] for item in items]


async def test_api_answers_each_token_with_its_own_deliveries(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await two_tenants_log(world.runtime)
    everything = await api(client, tokens.provider).ok("GET", "/deliveries")
    assert everything["total"] == 5
    assert everything["items"][3] == {
        "at": (T0 + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        "sender": "alice@a.example",
        "recipient": "nobody@far.test",
        "status": "failed",
        "remote_reply": "550 5.1.1 <nobody@far.test>: no",
        "message_id": everything["items"][3]["message_id"],
    }
    acme = await api(client, tokens.acme).ok("GET", "/deliveries")
    assert recipients(acme) == ["dave@slow.test", "nobody@far.test", "carol@far.test"]
    assert recipients(await api(client, tokens.other).ok("GET", "/deliveries")) == [
        "secret@rival.test"
    ]
    assert recipients(await api(client, tokens.domain_b).ok("GET", "/deliveries")) == [
        "secret@rival.test"
    ]


async def test_api_searches_filters_and_pages(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await two_tenants_log(world.runtime)
    acme = api(client, tokens.acme)
    query = urlencode({"q": "FAR.TEST", "status": "failed", "domain": "a.example"})
    assert recipients(await acme.ok("GET", f"/deliveries?{query}")) == ["nobody@far.test"]
    second = await acme.ok("GET", "/deliveries?limit=2&offset=2")
    assert (second["total"], recipients(second)) == (3, ["carol@far.test"])
    message = await acme.refused("GET", "/deliveries?status=lost", status=422, code="invalid_input")
    assert message.startswith("status 'lost' is unknown: use delivered, deferred, failed")


async def test_api_another_tenants_domain_is_not_hosted_here_and_users_are_refused(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await two_tenants_log(world.runtime)
    for token in (tokens.other, tokens.domain_b):
        caller = api(client, token)
        for name in ("a.example", "nowhere.example"):
            message = await caller.refused(
                "GET", f"/deliveries?domain={name}", status=404, code="domain_not_found"
            )
            assert message == f"domain {name} is not hosted here"
        found = await caller.ok("GET", "/deliveries?q=a.example")
        assert found == {"items": [], "total": 0}
    await api(client, "mh_not-a-token").refused(
        "GET", "/deliveries", status=401, code="not_authenticated"
    )


async def test_api_documents_deliveries_with_an_example(
    world: World, client: httpx.AsyncClient, app: FastAPI
) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/deliveries"]["get"]
    assert operation["summary"] == "Search the delivery log"
    assert {p["name"] for p in operation["parameters"]} == {
        "q",
        "status",
        "domain",
        "limit",
        "offset",
    }
    (sample,) = document["components"]["schemas"]["DeliveryOut"]["examples"]
    DeliveryOut.model_validate(sample)


async def test_panel_pages_show_each_level_its_own_deliveries(
    world: World, client: httpx.AsyncClient
) -> None:
    await two_tenants_log(world.runtime)
    provider = await logged_in(client, "provider", "root")
    page = await provider.get("/provider/deliveries")
    assert page.status_code == 200
    for text in ("admin@elsewhere.test", "secret@rival.test", "550 5.1.1", "1\u20135 of 5"):
        assert text in page.text
    assert 'href="/provider/deliveries">Delivery</a>' in page.text
    client.cookies.clear()
    customer = await logged_in(client, "customer", "other")
    own = await customer.get("/customer/deliveries")
    assert "secret@rival.test" in own.text
    assert "far.test" not in own.text and "elsewhere.test" not in own.text
    # The customer's domain filter offers only its own domains.
    assert re.findall(r'<option value="([a-z.]+)"', own.text) == [
        "delivered",
        "deferred",
        "failed",
        "deleted",
        "b.example",
    ]


async def test_panel_refuses_another_tenants_domain_and_a_bad_status_at_the_field(
    world: World, client: httpx.AsyncClient
) -> None:
    await two_tenants_log(world.runtime)
    hostile = await logged_in(client, "customer", "other")
    crafted = await hostile.get("/customer/deliveries?domain=a.example")
    assert crafted.status_code == 404
    assert "domain a.example is not hosted here" in crafted.text
    assert "far.test" not in crafted.text
    # The domain page of another tenant's domain: not hosted here.
    assert (await hostile.get("/domain/a.example/deliveries")).status_code == 404
    bad = await hostile.get("/customer/deliveries?status=lost&q=rival")
    assert bad.status_code == 422
    assert re.search(r'id="status-error" role="alert">status &#39;lost&#39; is unknown', bad.text)
    assert 'value="rival"' in bad.text  # what was typed stays


async def test_panel_pages_older_and_newer(world: World, client: httpx.AsyncClient) -> None:
    rt = world.runtime
    for n in range(53):
        at = T0 + timedelta(seconds=n)
        await log_attempt(rt, "alice@a.example", f"r{n}@far.test", A, Relayed("250 ok"), at)
    manager = await logged_in(client, "domain", "a.example")
    first = await manager.get("/domain/a.example/deliveries?q=far")
    assert "1\u201350 of 53" in first.text and "r52@far.test" in first.text
    older = re.search(r'<a rel="next" href="([^"]+)">Older', first.text)
    assert older is not None and 'rel="prev"' not in first.text
    second = await manager.get(older.group(1).replace("&amp;", "&"))
    assert "51\u201353 of 53" in second.text and "r0@far.test" in second.text
    assert 'rel="next"' not in second.text
    newer = re.search(r'<a rel="prev" href="([^"]+)">\u2039 Newer', second.text)
    assert newer is not None and newer.group(1) == "/domain/a.example/deliveries?q=far"


async def test_empty_states(world: World, client: httpx.AsyncClient) -> None:
    manager = await logged_in(client, "domain", "a.example")
    empty = await manager.get("/domain/a.example/deliveries")
    assert "No mail has been sent on to other servers yet from a.example" in empty.text
    await two_tenants_log(world.runtime)
    none = await manager.get("/domain/a.example/deliveries?q=rival")
    assert "No deliveries match this search" in none.text


async def test_searching_the_delivery_page_in_a_browser_at_phone_width(
    page: Page, world: World
) -> None:
    await two_tenants_log(world.runtime)
    await page.set_viewport_size({"width": 390, "height": 844})
    await log_in(page, "customer", "acme")
    await page.goto("/customer/deliveries")
    rows = page.locator("#deliveries tbody tr")
    await expect(rows).to_have_count(3)
    await page.get_by_label("Search").fill("nobody")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("550 5.1.1")
    assert "q=nobody" in page.url  # a GET form: the result can be bookmarked
    # At 390 px the table scrolls sideways inside its frame, and the page says so.
    await expect(page.locator(".scroll-cue")).to_be_visible()
    frame = page.locator("#deliveries-scroll")
    widths = await frame.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert widths[0] > widths[1]
    page_width = await page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 390
