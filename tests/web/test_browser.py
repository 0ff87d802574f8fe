"""The panel in a real browser (Debian's headless Chromium via Playwright), against a real
uvicorn server on 127.0.0.1: the seed's SMTP-account procedure, forgot password end to end,
and the 41st domain refused."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from mailhost.model.names import DomainName
from mailhost.services.accounts import AccountService
from tests.web.conftest import OP, PW, World
from tests.web.test_password_reset import inbox, link_in


async def log_in(page: Page, level: str, login: str, password: str = PW) -> None:
    await page.goto(f"/login/{level}")
    await page.get_by_label(re.compile("login|Domain name|Email address", re.I)).first.fill(login)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def through_the_menu(page: Page, item: str) -> None:
    """Hover Account Settings > Email, as the seed says, and click `item`."""
    menu = page.get_by_role("navigation", name="Main")
    await menu.get_by_role("link", name=re.compile(r"^Account Settings")).hover()
    email = menu.get_by_role("link", name=re.compile(r"^Email"))
    await email.hover()
    await menu.get_by_role("link", name=item, exact=True).click()


async def test_domain_manager_gives_a_new_user_an_smtp_account(page: Page) -> None:
    await log_in(page, "domain", "a.example")
    await expect(page.get_by_role("heading", level=1)).to_have_text("a.example")
    # Account Settings > Email > Domain Name Users: create the user first.
    await through_the_menu(page, "Domain Name Users")
    await page.locator("input[name=username]").fill("carol")
    await page.locator("#add input[name=password]").fill(PW)
    await page.get_by_role("button", name="Add user").click()
    await expect(page.get_by_role("status")).to_have_text("The user was added.")
    await through_the_menu(page, "Mail SMTP Authentication (SendMail) Settings")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Mail SMTP Authentication (SendMail) Settings"
    )
    usernames = page.locator("#smtp-username option")
    await expect(usernames).to_have_text(["alice", "boss", "carol"])
    await page.get_by_role("combobox", name="Add").select_option(label="SMTP Account:")
    await page.get_by_role("combobox", name="Username").select_option("carol")
    await page.get_by_label("H: messages per hour").fill("120")
    await page.get_by_role("button", name="Update").click()
    await expect(page.get_by_role("status")).to_have_text("The SMTP account was added.")
    row = page.locator("#smtp-accounts tr", has_text="carol@a.example")
    await expect(row.locator(".tag")).to_have_text(["R", "H120"])
    await expect(usernames).to_have_text(["alice", "boss"])


async def test_forgot_password_end_to_end_with_the_mail_from_the_maildir(
    page: Page, world: World
) -> None:
    await page.goto("/login/customer")
    await page.get_by_role("link", name="Forgot password?").click()
    await page.get_by_label("Customer login").fill("acme")
    await page.get_by_role("button", name="Send the reset link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your mail")
    (message,) = await inbox(world.runtime)
    url, token = link_in(message)
    assert url == f"{world.runtime.settings.web.public_url}/reset/{token}"
    # The link names [web] public_url, the production address; the test server is elsewhere.
    await page.goto(f"/reset/{token}")
    await page.get_by_label("New password", exact=True).fill("a fresh browser password")
    await page.get_by_label("New password again").fill("a fresh browser password")
    await page.get_by_role("button", name="Set the new password").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your new password is set. Log in with it."
    )
    await log_in(page, "customer", "acme", "a fresh browser password")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your hosting account")
    await page.goto(f"/reset/{token}")
    await expect(page.get_by_role("alert")).to_contain_text("this reset link is not valid")


async def test_customer_panel_refuses_the_41st_domain(page: Page, world: World) -> None:
    # Seeded through the service (without certificates and DKIM keys, which are slow to make).
    accounts = AccountService(world.runtime.units, world.runtime.services.passwords)
    for number in range(2, 41):
        await accounts.add_domain(OP, DomainName.parse(f"d{number}.example"), "acme", PW)
    await log_in(page, "customer", "acme")
    await expect(page.locator(".figures").first).to_contain_text("40 /")
    await page.get_by_label("Domain name", exact=True).fill("forty-one.example")
    await page.get_by_label("Domain Name Level password").fill(PW)
    await page.get_by_role("button", name="Add domain").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "plan Bulk Hosting allows 40 domains; customer acme has 40"
    )
    await expect(page.get_by_label("Domain name", exact=True)).to_have_value("forty-one.example")
    assert len(await world.runtime.services.accounts.domains(OP, "acme")) == 40
