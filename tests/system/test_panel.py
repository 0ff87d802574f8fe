"""The control panel inside `mailhost serve`: printed address, real HTTP, clean shutdown."""

from __future__ import annotations

import re

import httpx

from tests.system.conftest import PASSWORD, Server


def test_serve_prints_the_panel_address_and_serves_it(server: Server) -> None:
    port = server.ports["Web panel"]
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/login/customer")
        assert page.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        answer = client.post(
            "/login/customer", data={"csrf": token.group(1), "login": "acme", "password": PASSWORD}
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/customer/")
        dashboard = client.get("/customer/")
        assert "example.test" in dashboard.text
        assert client.get("/static/mailhost.css").headers["content-type"].startswith("text/css")
        assert client.get("/openapi.json").json()["info"]["title"] == "mailhost API"
    output = server.stop()
    assert server.process is None
    assert "Traceback" not in output
