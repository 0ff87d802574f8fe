"""Every panel page with a table, at phone width (390 x 844) in a real browser: the page
never scrolls sideways, a table wider than the screen scrolls in its own frame with the
cue above it showing (and a table that fits shows none), and every link or button in a
table's last column can be scrolled into view."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, Page, expect

from mailhost.model.actors import UserActor
from mailhost.model.facilities import SmtpFacilities
from tests.delivery_log import two_tenants_log
from tests.web.conftest import OP, World, addr
from tests.web.test_api import Tokens, tokens
from tests.web.test_browser import log_in

__all__ = ["tokens"]  # the fixture, shared with test_api

WIDTH = 390

# Level, login, and the pages that log in sees with at least one table on them.
PAGES = {
    "provider": (
        "root",
        [
            "/provider/",  # customers' usage, mail queue, latest changes
            "/provider/plans",
            "/provider/customers",
            "/provider/domains",
            "/provider/deliveries",
            "/tokens",
            "/logins",
        ],
    ),
    "customer": (
        "acme",
        ["/customer/", "/customer/audit", "/customer/deliveries", "/tokens", "/logins"],
    ),
    "domain": (
        "a.example",
        [
            "/domain/a.example/users",
            "/domain/a.example/users/alice",  # app passwords
            "/domain/a.example/mailboxes",
            "/domain/a.example/smtp",
            "/domain/a.example/dns",
            "/domain/a.example/deliveries",
            "/tokens",
            "/logins",
        ],
    ),
    "user": (
        "alice@a.example",
        ["/user/", "/user/app-passwords", "/logins", "/help/clients"],
    ),
}


async def everything_listed(world: World) -> None:
    """Rows for every table: deliveries (one still queued), an SMTP account and an
    app password for alice (the `tokens` fixture gives each level an API token)."""
    rt = world.runtime
    await two_tenants_log(rt)
    alice = addr("alice@a.example")
    await rt.services.users.add_smtp_account(OP, alice, SmtpFacilities(hourly_limit=60))
    user = await rt.services.users.user(OP, alice)
    herself = UserActor(user.id, user.domain_id, user.customer_id, user.address)
    await rt.web_access.app_passwords.create(herself, alice, "Thunderbird on the laptop")


async def check_table(page: Page, url: str, table: Locator) -> bool:
    """The table's frame, cue and last column at phone width; True if it overflows."""
    frame = table.locator("xpath=ancestor::div[contains(@class, 'table-scroll')][1]")
    assert await frame.count() == 1, f"{url}: a table outside a scrolling frame"
    scroll, client = await frame.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert client <= WIDTH, f"{url}: the frame is wider than the screen"
    overflows = scroll > client
    cue = frame.locator("xpath=preceding-sibling::p[1]")
    await expect(cue).to_have_class("scroll-cue")
    if overflows:
        await expect(cue).to_be_visible()
    else:  # no cue to scroll a table that cannot scroll
        await expect(cue).to_be_hidden()
    actions = table.locator("tbody tr > td:last-child").locator("a, button")
    for n in range(await actions.count()):
        action = actions.nth(n)
        await action.scroll_into_view_if_needed()
        box = await action.bounding_box()
        name = await action.inner_text()
        assert box is not None, f"{url}: {name!r} is not shown"
        assert 0 <= box["x"] <= WIDTH - box["width"], f"{url}: {name!r} is cut off"
    return overflows


@pytest.mark.parametrize("level", list(PAGES))
async def test_tables_scroll_in_their_frame_at_phone_width(
    page: Page, world: World, tokens: Tokens, level: str
) -> None:
    await everything_listed(world)
    login, urls = PAGES[level]
    await page.set_viewport_size({"width": WIDTH, "height": 844})
    await log_in(page, level, login)
    overflowing = []
    for url in urls:
        answer = await page.goto(url)
        assert answer is not None and answer.status == 200, url
        tables = page.locator("main table")
        assert await tables.count() > 0, f"{url}: no table"
        for n in range(await tables.count()):
            if await check_table(page, url, tables.nth(n)):
                overflowing.append(url)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"{url}: the page scrolls sideways ({width} px)"
    # Some tables are too wide for a phone at every level: the cue was checked there.
    assert overflowing, f"no table wider than its frame at the {level} level"
