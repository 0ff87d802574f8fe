"""Forgot password, against what an attacker controls: the links' base is `[web] public_url`
whatever the request's Host says, and the answer comes before the lookup and the mail."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from mailhost.web.app import create_web_app
from mailhost.web.server import start_web_server
from tests.conftest import cheap_passwords
from tests.web.conftest import BASE, HOSTNAME, Panel, World, csrf_of, populate
from tests.web.test_password_reset import inbox, link_in, maildir_messages

FORGED = [
    {"Host": "mail.b.example"},  # a domain another tenant controls
    {"Host": "mail.evil.test"},
    {"Host": "mail.evil.test", "X-Forwarded-Host": "mail.evil.test"},
    {"X-Forwarded-Host": "mail.b.example", "Forwarded": "host=mail.b.example;proto=https"},
]


@pytest.mark.parametrize("headers", FORGED)
async def test_reset_link_starts_with_the_public_url_whatever_host_the_request_names(
    world: World, app: FastAPI, headers: dict[str, str]
) -> None:
    server = await start_web_server(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            form = await client.get("/forgot/customer", headers=headers)
            answer = await client.post(
                "/forgot/customer",
                data={"csrf": csrf_of(form.text), "login": "acme"},
                headers=headers,
            )
    finally:
        server.close()
        await server.wait_closed()
    assert answer.status_code == 200
    (message,) = await inbox(world.runtime)
    url, token = link_in(message)
    # The default: [server] hostname, and no port since the tests' web port is 0.
    assert world.runtime.settings.web.public_url == f"http://{HOSTNAME}"
    assert url == f"http://{HOSTNAME}/reset/{token}"


async def test_reset_link_uses_a_configured_public_url(data_dir: Path, database_url: str) -> None:
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_WEB_PUBLIC_URL": "https://panel.hosting.test:8443/mailhost/",
    }
    settings = load_settings(None, data_dir, environ)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        await populate(rt)
        transport = httpx.ASGITransport(app=create_web_app(rt), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            form = await client.get("/forgot/domain")
            answer = await client.post(
                "/forgot/domain",
                data={"csrf": csrf_of(form.text), "login": "a.example"},
                headers={"Host": "mail.evil.test"},
            )
        assert answer.status_code == 200
        (message,) = await inbox(rt)
        url, token = link_in(message)
        assert url == f"https://panel.hosting.test:8443/mailhost/reset/{token}"


@contextlib.asynccontextmanager
async def reset_links_locked(database_url: str) -> AsyncIterator[None]:
    """Until this ends no reset link can be stored: the database's write lock (SQLite),
    or a lock on the links' table that lets reads through (PostgreSQL)."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pg = await asyncpg.connect(dsn, timeout=10)
    try:
        async with pg.transaction():
            await pg.execute("LOCK TABLE password_resets IN EXCLUSIVE MODE")
            yield
    finally:
        await pg.close()


async def test_forgot_password_answers_before_the_login_is_looked_up_and_mailed(
    world: World, panel: Panel, database_url: str
) -> None:
    rt = world.runtime
    await panel.get("/forgot/customer")
    async with reset_links_locked(database_url):
        # Were the answer to wait for the request's work, it would wait for the lock:
        # forever on PostgreSQL (hence the time limit, which is never reached), and on
        # SQLite until the insert gives up, and then no link would ever be mailed.
        known = await asyncio.wait_for(panel.post("/forgot/customer", login="acme"), 60)
        unknown = await asyncio.wait_for(panel.post("/forgot/customer", login="nobody"), 60)
        assert known.status_code == unknown.status_code == 200
        assert known.text == unknown.text
        assert await maildir_messages(rt, "boss@a.example") == []
    # The work goes on once the link can be stored; the mail comes after the answer.
    (message,) = await inbox(rt)
    _, token = link_in(message)
    assert (await rt.web_access.resets.check(token)).login == "acme"
