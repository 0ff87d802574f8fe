"""Screenshots of the control panel's main pages for the README: `python -m bench.screenshots`.

Builds a throw-away data directory with a demo customer, serves the panel on
127.0.0.1 and photographs each page with Debian's headless Chromium into
docs/screenshots/. Run it again after changing templates or styles.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, async_playwright

from mailhost.interfaces import AttemptResult, Deferred, Failed, Relayed
from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from mailhost.web.app import create_web_app
from mailhost.web.dns_check import DnsChecker
from mailhost.web.server import start_web_server

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
OP = ProviderActor("screenshots")
PW = "demo password 2024"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def populate(rt: Runtime) -> None:
    accounts, users = rt.services.accounts, rt.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@example.com", PW)
    await accounts.add_customer(OP, "riverside", "Bulk Hosting", "it@riverside.example", PW)
    for name in ("example.com", "acme-shop.example", "bücher.example"):
        await accounts.add_domain(OP, DomainName.parse(name), "acme", PW)
    await accounts.add_domain(OP, DomainName.parse("riverside.example"), "riverside", PW)
    for name, quota in (("alice", "250MB"), ("bob", "250MB"), ("boss", "1GB"), ("carol", "500MB")):
        address = EmailAddress.hosted(f"{name}@example.com")
        await users.add_user(OP, address, PW, recovery="boss@home.example")
        await users.add_mailbox(OP, address, ByteSize.parse(quota))
    await users.add_user(OP, EmailAddress.hosted("dave@example.com"), PW)
    await users.add_smtp_account(
        OP, EmailAddress.hosted("alice@example.com"), SmtpFacilities(hourly_limit=120)
    )
    await users.add_smtp_account(
        OP,
        EmailAddress.hosted("boss@example.com"),
        SmtpFacilities(sender_scope=SenderScope.DOMAIN, max_message_size=ByteSize.parse("25MB")),
    )
    message = b"Subject: hello\r\n\r\n" + b"x" * 40_000_000
    boxes = await users.mailboxes(OP, DomainName.parse("example.com"))
    await rt.services.delivery.deliver_local(
        [b for b in boxes if b.address.local == "boss"], message
    )
    await rt.web_access.admins.add(OP, "admin", "ops@hosting.example", PW)
    await log_deliveries(rt)


async def log_deliveries(rt: Runtime) -> None:
    """A few outbound attempts as the queue worker records them, for the Delivery page."""
    example = await rt.services.accounts.domain(OP, DomainName.parse("example.com"))
    now = datetime.now(UTC).replace(microsecond=0)
    tries: list[tuple[str, str, AttemptResult]] = [
        ("alice@example.com", "jo@partner.example", Relayed("250 2.0.0 Ok: queued as 4Q1")),
        ("boss@example.com", "nobody@partner.example", Failed("550 5.1.1 no such user")),
        ("alice@example.com", "sam@slow.example", Deferred("451 4.7.1 greylisted", now)),
    ]
    for minute, (sender, recipient, outcome) in enumerate(tries):
        at = now - timedelta(minutes=10 - minute)
        body = await rt.spool.write(b"Subject: hello\r\n\r\nhello\r\n")
        await rt.queue.enqueue(
            sender, [recipient], body, example.customer_id, example.id, at, at + timedelta(days=5)
        )
        for claimed in await rt.queue.claim_due(at, 10):
            await rt.queue.record(claimed, outcome, at)


async def log_in(page: Page, level: str, login: str) -> None:
    await page.goto(f"/login/{level}")
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill(PW)
    await page.locator("button.primary").click()


async def shoot(page: Page, name: str, url: str | None = None) -> None:
    if url is not None:
        await page.goto(url)
    await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"  {OUT / name}.png")


async def photograph(base_url: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(
            base_url=base_url, viewport={"width": 1200, "height": 760}, java_script_enabled=False
        )
        page = await context.new_page()
        await shoot(page, "login", "/")
        await log_in(page, "domain", "example.com")
        await shoot(page, "domain-portal")
        await shoot(page, "domain-users", "/domain/example.com/users")
        await shoot(page, "pop3-mailbox-usage", "/domain/example.com/mailboxes")
        await shoot(page, "smtp-settings", "/domain/example.com/smtp")
        menu = page.get_by_role("navigation", name="Main")
        await menu.get_by_role("link", name="Account Settings").hover()
        await menu.get_by_role("link", name="Email").first.hover()
        await page.screenshot(
            path=str(OUT / "menu.png"), clip={"x": 0, "y": 0, "width": 1200, "height": 330}
        )
        await shoot(page, "dns-records", "/domain/example.com/dns")
        await shoot(page, "smtp-account-edit", "/domain/example.com/smtp/alice")
        await shoot(page, "confirm-remove-user", "/domain/example.com/users/alice/remove")
        await page.goto("/domain/example.com/users")
        await page.locator("input[name=username]").fill("Carol Smith!")
        await page.locator("input[name=password]").last.fill(PW)
        await page.locator("button.primary").click()
        await shoot(page, "refused-add-user")
        await page.set_viewport_size({"width": 390, "height": 844})
        await shoot(page, "phone-mailboxes", "/domain/example.com/mailboxes")
        await page.set_viewport_size({"width": 1200, "height": 760})
        await log_in(page, "customer", "acme")
        await shoot(page, "customer-level")
        await log_in(page, "provider", "admin")
        await shoot(page, "provider-overview")
        await shoot(page, "deliveries", "/provider/deliveries")
        await log_in(page, "user", "boss@example.com")
        await shoot(page, "user-self-service")
        await shoot(page, "help-smtp", "/help/smtp?domain=example.com")
        await browser.close()


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        environ = {"MAILHOST_SERVER_HOSTNAME": "mx.hosting.example", "MAILHOST_WEB_PORT": "0"}
        settings = load_settings(None, Path(tmp), environ)
        async with Runtime(settings) as rt:
            await rt.migrate()
            await populate(rt)
            # Nothing answers DNS on this loopback port: the page shows "could not check".
            app = create_web_app(rt, dns_checker=DnsChecker(["127.0.0.1"], port=9, timeout=0.3))
            server = await start_web_server(app, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                await photograph(f"http://127.0.0.1:{port}")
            finally:
                server.close()
                await server.wait_closed()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
