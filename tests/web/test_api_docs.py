"""/api/docs: the API reference for people, Swagger UI served with its files from here."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, ConsoleMessage, Request, Response

from mailhost.web.api_docs import DOCS_CSP
from mailhost.web.app import SECURITY_HEADERS
from tests.web.conftest import World, logged_in

_ASSET = re.compile(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"')


async def test_the_docs_page_and_its_assets_come_from_this_server(
    world: World, client: httpx.AsyncClient
) -> None:
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Its own policy: this origin's scripts, no inline script, nothing from elsewhere.
    assert page.headers["content-security-policy"] == DOCS_CSP
    assert "script-src 'self';" in DOCS_CSP and "unsafe" not in DOCS_CSP
    assert not re.search(r"(?:https?:)?//", page.text), "a URL to another host"
    assets = _ASSET.findall(page.text)
    assert assets == [
        "/api/docs/assets/swagger-ui.css",
        "/static/api-docs.css",
        "/api/docs/assets/swagger-ui-bundle.js",
        "/static/api-docs.js",
    ]
    for url in assets:
        served = await client.get(url)
        assert served.status_code == 200, url
        kind = "css" if url.endswith(".css") else "javascript"
        assert kind in served.headers["content-type"], url
    bundle = await client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    # Every other page keeps the panel's policy: no script at all.
    panel = await client.get("/")
    assert panel.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    moved = await client.get("/docs")
    assert (moved.status_code, moved.headers["location"]) == (308, "/api/docs")
    missing = await client.get("/api/docs/assets/no-such-file.js")
    assert missing.status_code == 404


async def test_the_panel_links_the_docs_page(world: World, client: httpx.AsyncClient) -> None:
    panel = await logged_in(client, "customer", "acme")
    tokens = await panel.get("/tokens")
    assert '<a href="/api/docs">REST API</a>' in tokens.text


async def test_swagger_ui_shows_the_api_under_its_policy_offline(
    world: World, base_url: str, browser: Browser
) -> None:
    """In Chromium with JavaScript: every request stays on this server, the policy
    refuses nothing, and the operations show with their summaries and examples."""
    context = await browser.new_context(base_url=base_url)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    requests: list[str] = []
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    def on_request(request: Request) -> None:
        requests.append(request.url)

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("request", on_request)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        await page.goto("/api/docs")
        operation = page.locator(".opblock-summary", has_text="Show a domain").first
        await operation.wait_for()
        assert await page.locator(".opblock").count() >= 25
        await operation.click()
        # The response example of DomainOut, from the schema's json_schema_extra.
        await page.locator(".opblock-body", has_text="xn--bcher-kva.example").first.wait_for()
        await page.get_by_role("button", name="Authorize").first.wait_for()
    finally:
        await context.close()
    assert problems == []
    assert requests and all(url.startswith(base_url + "/") for url in requests), requests
