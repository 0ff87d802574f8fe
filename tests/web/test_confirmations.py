"""One confirmation pattern for every destructive or disruptive panel action: the list
links to a page that says what will happen; only its form acts. A post without
`confirm=yes` is sent to that page and changes nothing; another tenant's page is not
found. "Create" answers that carry a secret redirect too, and show it once."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect

from mailhost.model.actors import CustomerActor
from mailhost.model.names import DomainName
from mailhost.web.shown_once import ShownOnce
from tests.web.conftest import BASE, OP, World, addr, logged_in
from tests.web.test_browser import log_in

A, B = DomainName.parse("a.example"), DomainName.parse("b.example")
ALICE, BOB = addr("alice@a.example"), addr("bob@b.example")
_FORM = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass(frozen=True)
class Action:
    """A destructive action: who reaches it from which list, its page, its post."""

    level: str
    login: str
    listing: str
    page: str  # the confirmation page (GET), linked from the listing
    action: str  # where the page's form posts
    fields: dict[str, str]
    says: str  # a sentence of the page naming what will happen
    still: Callable[[World], Awaitable[bool]]  # nothing happened yet


async def _alice_exists(world: World) -> bool:
    return ALICE in [u.address for u in await world.runtime.services.users.users(OP, A)]


async def _alice_has_mailbox(world: World) -> bool:
    return (await world.runtime.services.users.user(OP, ALICE)).has_mailbox


async def _bob_has_account(world: World) -> bool:
    return (await world.runtime.services.users.user(OP, BOB)).has_smtp_account


async def _a_enabled(world: World) -> bool:
    return (await world.runtime.services.accounts.domain(OP, A)).enabled


async def _b_enabled(world: World) -> bool:
    return (await world.runtime.services.accounts.domain(OP, B)).enabled


async def _acme_enabled(world: World) -> bool:
    return (await world.runtime.services.accounts.customer(OP, "acme")).enabled


async def _a_hosted(world: World) -> bool:
    return A in [d.name for d in await world.runtime.services.accounts.domains(OP, "acme")]


ACTIONS = [
    Action(
        "domain",
        "a.example",
        "/domain/a.example/users",
        "/domain/a.example/users/alice/remove",
        "/domain/a.example/users/alice/remove",
        {},
        "Mail to alice@a.example is refused from then on.",
        _alice_exists,
    ),
    Action(
        "domain",
        "a.example",
        "/domain/a.example/mailboxes",
        "/domain/a.example/mailboxes/alice/remove",
        "/domain/a.example/mailboxes/alice/remove",
        {},
        "the user and any SMTP account stay",
        _alice_has_mailbox,
    ),
    Action(
        "domain",
        "b.example",
        "/domain/b.example/smtp",
        "/domain/b.example/smtp/bob/remove",
        "/domain/b.example/smtp/bob/remove",
        {},
        "bob@b.example can no longer send mail through this server (its facilities now: R H60)",
        _bob_has_account,
    ),
    Action(
        "customer",
        "acme",
        "/customer/",
        "/customer/domains/a.example/disable",
        "/customer/domains/a.example/enabled",
        {"enabled": "no"},
        "Mail to a.example waits at the sender",
        _a_enabled,
    ),
    Action(
        "customer",
        "acme",
        "/customer/",
        "/customer/domains/a.example/remove",
        "/customer/domains/a.example/remove",
        {},
        "Domain a.example: 2 mailboxes, no mail.",
        _a_hosted,
    ),
    Action(
        "provider",
        "root",
        "/provider/customers",
        "/provider/customers/acme/disable",
        "/provider/customers/acme/enabled",
        {"enabled": "no"},
        "Its own login, its domains' managers and users cannot log in",
        _acme_enabled,
    ),
    Action(
        "provider",
        "root",
        "/provider/domains",
        "/provider/domains/b.example/disable",
        "/provider/domains/b.example/enabled",
        {"enabled": "no"},
        "Nothing is deleted, and Enable brings it all back",
        _b_enabled,
    ),
]
IDS = [a.page.replace("/", " ").strip() for a in ACTIONS]


@pytest.mark.parametrize("act", ACTIONS, ids=IDS)
async def test_a_destructive_action_asks_on_a_page_of_its_own_first(
    world: World, client: httpx.AsyncClient, act: Action
) -> None:
    panel = await logged_in(client, act.level, act.login)
    listing = await panel.get(act.listing)
    assert f'href="{act.page}"' in listing.text
    assert act.action not in _FORM.findall(listing.text)  # no one-click form on the list

    page = await panel.get(act.page)

    assert page.status_code == 200
    assert act.says.replace("'", "&#39;") in page.text
    assert _FORM.findall(page.text) == [act.action]
    assert 'name="confirm" value="yes"' in page.text
    assert await act.still(world)
    done = await panel.post(act.action, confirm="yes", **act.fields)
    assert done.status_code == 303 and "done=" in done.headers["location"]
    assert not await act.still(world)


@pytest.mark.parametrize("act", ACTIONS, ids=IDS)
async def test_an_unconfirmed_post_is_sent_to_the_page_and_changes_nothing(
    world: World, client: httpx.AsyncClient, act: Action
) -> None:
    panel = await logged_in(client, act.level, act.login)

    answer = await panel.post(act.action, **act.fields)

    assert (answer.status_code, answer.headers["location"]) == (303, act.page)
    assert await act.still(world)


@pytest.mark.parametrize(
    ("level", "login", "page"),
    [
        ("domain", "a.example", "/domain/b.example/users/bob/remove"),
        ("domain", "a.example", "/domain/a.example/users/bob/remove"),
        ("domain", "a.example", "/domain/b.example/mailboxes/bob/remove"),
        ("domain", "a.example", "/domain/b.example/smtp/bob/remove"),
        ("domain", "a.example", "/domain/a.example/smtp/alice/remove"),  # has none
        ("domain", "a.example", "/domain/a.example/users/alice/two-factor/off"),  # is off
        ("customer", "acme", "/customer/domains/b.example/disable"),
        ("customer", "acme", "/customer/domains/b.example/remove"),
    ],
)
async def test_the_page_of_another_tenants_object_is_not_found(
    world: World, client: httpx.AsyncClient, level: str, login: str, page: str
) -> None:
    panel = await logged_in(client, level, login)

    answer = await panel.get(page)

    assert answer.status_code == 404
    assert 'name="confirm"' not in answer.text
    assert await _b_enabled(world) and await _bob_has_account(world)


async def test_a_customer_cannot_reach_the_providers_disable_page(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")

    answer = await panel.get("/provider/customers/other/disable")

    assert (answer.status_code, answer.headers["location"]) == (303, "/login/provider")


async def test_enable_needs_no_confirmation(world: World, client: httpx.AsyncClient) -> None:
    await world.runtime.services.accounts.set_domain_enabled(OP, A, False)
    panel = await logged_in(client, "customer", "acme")
    assert 'aria-label="Enable a.example"' in (await panel.get("/customer/")).text

    answer = await panel.post("/customer/domains/a.example/enabled", enabled="yes")

    assert answer.headers["location"] == "/customer/?done=domain_changed"
    assert await _a_enabled(world)


async def test_revoking_a_token_is_confirmed_and_a_new_token_is_shown_once(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    await panel.get("/tokens")
    made = await panel.post("/tokens", name="billing")
    assert made.status_code == 303
    secret = re.compile(r'<code id="new-token">([^<]+)</code>')
    shown = await panel.get(made.headers["location"])
    found = secret.search(shown.text)
    assert found and found.group(1) not in made.headers["location"]
    assert shown.headers["cache-control"] == "no-store"
    reloaded = await panel.get(made.headers["location"])  # a reload: no secret, no new token
    assert not secret.search(reloaded.text)
    acme = await world.runtime.services.accounts.customer(OP, "acme")
    owner = CustomerActor(acme.id, acme.login)
    (token,) = await world.runtime.web_access.api_tokens.tokens(owner)

    page = await panel.get(f"/tokens/{token.id}/revoke")

    assert "Revoke the API token “billing”?" in page.text
    assert "get 401 Unauthorized from their next call" in page.text
    assert (await panel.post(f"/tokens/{token.id}/revoke")).headers["location"] == (
        f"/tokens/{token.id}/revoke"
    )
    assert (await world.runtime.web_access.api_tokens.tokens(owner))[0].revoked_at is None
    await panel.post(f"/tokens/{token.id}/revoke", confirm="yes")
    assert (await world.runtime.web_access.api_tokens.tokens(owner))[0].revoked_at is not None


async def test_a_shown_secret_is_for_the_session_that_made_it(
    world: World, app: FastAPI, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "user", "alice@a.example")
    made = await panel.post("/user/app-passwords", name="Laptop")
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as other:
        thief = await logged_in(other, "user", "alice@a.example")  # another session of hers

        stolen = await thief.get(made.headers["location"])

    assert stolen.status_code == 200 and 'id="new-app-password"' not in stolen.text
    own = await panel.get(made.headers["location"])
    assert 'id="new-app-password"' in own.text  # not used up by the other session
    names = await world.runtime.web_access.app_passwords.app_passwords(OP, ALICE)
    assert [p.name for p in names] == ["Laptop"]


def test_shown_once_forgets_after_its_lifetime_and_beyond_its_limit() -> None:
    now = [0.0]
    held = ShownOnce(lifetime=10, limit=3, clock=lambda: now[0])
    first = held.keep("session-1", "secret-1")
    assert held.take("session-2", first) is None  # not theirs, and still there
    assert held.take("session-1", first) == ("secret-1",)
    assert held.take("session-1", first) is None  # once
    late = held.keep("session-1", "secret-2")
    now[0] = 11
    assert held.take("session-1", late) is None
    keys = [held.keep("s", str(n)) for n in range(4)]
    assert held.take("s", keys[0]) is None  # the oldest went at the limit
    assert [held.take("s", k) for k in keys[1:]] == [("1",), ("2",), ("3",)]


async def test_removing_a_user_in_a_browser_asks_first_and_a_reload_repeats_nothing(
    page: Page, world: World
) -> None:
    await log_in(page, "domain", "a.example")
    await page.goto("/domain/a.example/users")
    await page.get_by_role("link", name="Remove alice@a.example").click()
    await expect(page.get_by_role("heading")).to_have_text("Remove user alice@a.example?")
    await expect(page.locator("#consequences")).to_contain_text("Its POP3 mailbox is deleted")
    await page.get_by_role("link", name="Keep it").click()
    assert await _alice_exists(world)
    await page.get_by_role("link", name="Remove alice@a.example").click()

    await page.get_by_role("button", name="Remove alice@a.example").click()

    await expect(page.get_by_role("status")).to_contain_text("The user was removed")
    assert not await _alice_exists(world)
    await world.runtime.services.users.add_user(OP, ALICE, "another password 123")
    await page.reload()  # a GET: the new alice stays
    await expect(page.get_by_role("status")).to_contain_text("The user was removed")
    assert await _alice_exists(world)


async def test_disabling_a_customer_at_phone_width(page: Page, world: World) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await log_in(page, "provider", "root")
    await page.goto("/provider/customers")
    await page.get_by_role("link", name="Disable acme").click()
    await expect(page.get_by_role("heading")).to_have_text("Disable customer acme?")
    button = page.get_by_role("button", name="Disable acme")
    box = await button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390

    await button.click()

    await expect(page.get_by_role("status")).to_contain_text("The customer was changed")
    assert not await _acme_enabled(world)
