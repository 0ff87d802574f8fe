"""The panel's uvicorn server inside the runtime's event loop: address, URL, signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from mailhost.web.app import create_web_app
from mailhost.web.server import start_web_server
from tests.conftest import cheap_passwords

_LISTENING = re.compile(r"^\s+(?P<name>.+?)\s+(?P<host>127\.0\.0\.1):(?P<port>\d+)\s")
SERVICES = ("MX", "SUBMISSION", "SUBMISSIONS", "POP3", "POP3S", "WEB")


async def test_web_server_listens_on_a_free_port_and_stops(runtime: Runtime) -> None:
    server = await start_web_server(create_web_app(runtime), "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    assert host == "127.0.0.1" and port > 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        page = await client.get("/login/domain")
    assert page.status_code == 200
    assert "Domain Name Level login" in page.text
    server.close()
    await asyncio.wait_for(server.wait_closed(), 10)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/")


async def test_serve_prints_the_panel_line_and_url_and_stops_on_sigterm(
    data_dir: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"MAILHOST_DATABASE_URL": database_url, "MAILHOST_SERVER_HOSTNAME": "mx.hosting.test"}
    environ |= {f"MAILHOST_{name}_PORT": "0" for name in SERVICES}
    environ["MAILHOST_WEB_PUBLIC_URL"] = "https://panel.hosting.test"
    settings = load_settings(None, data_dir, environ)
    async with Runtime(settings, passwords=cheap_passwords()) as runtime:
        serving = asyncio.create_task(runtime.serve())
        printed = ""
        for _ in range(400):
            printed += capsys.readouterr().out
            if "CA certificate" in printed:
                break
            await asyncio.sleep(0.025)
        ports = {
            m.group("name"): int(m.group("port"))
            for m in map(_LISTENING.match, printed.splitlines())
            if m
        }
        assert "Web panel" in ports, printed
        # The address people are told is the configured one; the socket's is in the table.
        assert "  Web panel at https://panel.hosting.test/" in printed.splitlines()
        async with httpx.AsyncClient() as client:
            page = await client.get(f"http://127.0.0.1:{ports['Web panel']}/")
        assert page.status_code == 200
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, 15)


async def _echo_client(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the client address and scheme the server made of the request."""
    assert scope["type"] == "http"
    body = f"{scope['client'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_forwarded_headers_change_neither_client_address_nor_scheme() -> None:
    # Any local process could otherwise pick the address the login throttle counts
    # against, or make the panel think it is behind https.
    server = await start_web_server(_echo_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    forged = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "Forwarded": "for=203.0.113.9;proto=https",
    }
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            answer = await client.get("/", headers=forged)
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
    assert answer.text == "127.0.0.1 http"
