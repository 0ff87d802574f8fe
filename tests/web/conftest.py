"""Fixtures for the panel and API: the real app over the `runtime` fixture, two tenants, helpers.

`world` makes two customers that must never see each other: acme owns
a.example, other owns b.example; each domain has users and facilities.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from mailhost.web.app import create_web_app
from mailhost.web.dns_check import DnsChecker
from mailhost.web.server import start_web_server

OP = ProviderActor("test")
PW = "correct horse battery"
BASE = "http://127.0.0.1"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def addr(text: str) -> EmailAddress:
    return EmailAddress.hosted(text)


@dataclass(frozen=True)
class World:
    runtime: Runtime


async def populate(rt: Runtime) -> World:
    accounts, users = rt.services.accounts, rt.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@a.example", PW)
    await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@b.example", PW)
    await accounts.add_domain(OP, DomainName.parse("a.example"), "acme", PW)
    await accounts.add_domain(OP, DomainName.parse("b.example"), "other", PW)
    for address in ("alice@a.example", "boss@a.example", "bob@b.example", "chief@b.example"):
        # A recovery address is never the user's own: boss's links go elsewhere.
        own = address == "boss@a.example"
        recovery = "boss.home@elsewhere.example" if own else "boss@a.example"
        await users.add_user(OP, addr(address), PW, recovery=recovery)
        await users.add_mailbox(OP, addr(address), ByteSize.parse("10MB"))
    await users.add_smtp_account(OP, addr("bob@b.example"), SmtpFacilities(hourly_limit=60))
    await rt.web_access.admins.add(OP, "root", "boss@a.example", PW)
    return World(rt)


HOSTNAME = "mx.hosting.test"


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    """As the shared fixture, with a fixed host name and small login penalties."""
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_AUTH_PENALTY_MAX_SECONDS": "0.2",
        "MAILHOST_WEB_PORT": "0",
    }
    return load_settings(None, data_dir, environ)


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await populate(runtime)


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    # A nameserver on loopback that does not answer: the DNS page must still load quickly.
    return create_web_app(runtime, dns_checker=DnsChecker(["127.0.0.1"], port=9, timeout=0.3))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as opened:
        yield opened


class Panel:
    """A browser without JavaScript: follows forms, keeps cookies, echoes CSRF tokens."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, url: str) -> httpx.Response:
        response = await self.client.get(url)
        if 'name="csrf"' in response.text:
            self.csrf = csrf_of(response.text)
        return response

    async def post(self, url: str, **fields: str) -> httpx.Response:
        response = await self.client.post(url, data={"csrf": self.csrf, **fields})
        if 'name="csrf"' in response.text:
            self.csrf = csrf_of(response.text)
        return response

    async def login(self, level: str, login: str, password: str = PW) -> httpx.Response:
        await self.get(f"/login/{level}")
        return await self.post(f"/login/{level}", login=login, password=password)


@pytest.fixture
def panel(client: httpx.AsyncClient) -> Panel:
    return Panel(client)


async def logged_in(client: httpx.AsyncClient, level: str, login: str) -> Panel:
    panel = Panel(client)
    response = await panel.login(level, login)
    assert response.status_code == 303, response.text
    await panel.get(response.headers["location"])  # as a browser does: now the session's token
    return panel


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
async def base_url(world: World, runtime: Runtime) -> AsyncIterator[str]:
    """The panel on a real socket, for the browser tests."""
    app = create_web_app(runtime, dns_checker=DnsChecker(["127.0.0.1"], port=9, timeout=0.3))
    server = await start_web_server(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, base_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=base_url, java_script_enabled=False)
    opened = await context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    await context.close()
