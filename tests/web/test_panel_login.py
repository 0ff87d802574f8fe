"""Logins at every level: sessions, cookies, CSRF, penalties shared with the mail servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from mailhost.model.logins import BadCredentials, ClientInfo
from mailhost.model.names import DomainName
from tests.web.conftest import OP, PW, Panel, World, logged_in

PANEL_CLIENT = "127.0.0.1"  # the address the `client` fixture's requests come from
HOMES = [
    ("provider", "root", "/provider/"),
    ("customer", "acme", "/customer/"),
    ("domain", "a.example", "/domain/a.example/"),
    ("user", "alice@a.example", "/user/"),
]


@pytest.mark.parametrize(("level", "login", "home"), HOMES)
async def test_each_level_logs_in_to_its_own_home(
    world: World, panel: Panel, level: str, login: str, home: str
) -> None:
    answer = await panel.login(level, login)
    assert (answer.status_code, answer.headers["location"]) == (303, home)
    page = await panel.get(home)
    assert page.status_code == 200
    assert 'action="/logout"' in page.text


async def test_session_cookie_is_httponly_samesite_and_not_secure_over_http(
    world: World, panel: Panel
) -> None:
    answer = await panel.login("customer", "acme")
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mailhost_session=" in v
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags


async def test_session_cookie_is_secure_when_served_over_tls(world: World, app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1") as client:
        answer = await Panel(client).login("customer", "acme")
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    session = next(c for c in cookies if c.startswith("mailhost_session="))
    assert "secure" in session.lower()


@pytest.mark.parametrize(
    ("level", "login", "password"),
    [
        ("customer", "acme", "not the password"),
        ("customer", "nobody", PW),
        ("domain", "a.example", "not the password"),
        ("domain", "not a domain!", PW),
        ("user", "alice@a.example", "not the password"),
        ("provider", "root", "not the password"),
    ],
)
async def test_wrong_password_and_unknown_login_answer_alike(
    world: World, panel: Panel, level: str, login: str, password: str
) -> None:
    answer = await panel.login(level, login, password)
    assert answer.status_code == 401
    assert "The login or the password is not correct." in answer.text
    assert "mailhost_session" not in answer.headers.get("set-cookie", "")


async def standing_failures(world: World, client: str) -> int:
    since = datetime.now(UTC) - timedelta(hours=1)
    attempts = world.runtime.penalties.attempts
    return (await attempts.failures_from(client, since, 100)).failures


async def test_login_penalties_are_shared_with_the_mail_servers(world: World, panel: Panel) -> None:
    auth = world.runtime.services.authentication
    for _ in range(3):  # three wrong POP3 logins from the panel client's address
        outcome = await auth.authenticate(
            "alice@a.example", "wrong guess", ClientInfo(PANEL_CLIENT, "pop3")
        )
        assert isinstance(outcome, BadCredentials)
    assert await standing_failures(world, PANEL_CLIENT) == 3
    answer = await panel.login("user", "alice@a.example", PW)  # never refused: 303, no 429
    assert answer.status_code == 303
    # The panel's success forgives the address the POP3 failures: one count for both.
    assert await standing_failures(world, PANEL_CLIENT) == 0


async def test_repeated_failures_at_a_panel_level_are_slowed_not_locked(
    world: World, panel: Panel
) -> None:
    for _ in range(3):
        assert (await panel.login("customer", "acme", "wrong guess")).status_code == 401
    assert await standing_failures(world, PANEL_CLIENT) == 3
    answer = await panel.login("customer", "acme", PW)  # the right password still works
    assert answer.status_code == 303


async def test_post_without_the_sessions_csrf_token_is_refused(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    for token in ("", "forged-token"):
        answer = await client.post(
            "/domain/a.example/users", data={"csrf": token, "username": "eve", "password": PW}
        )
        assert answer.status_code == 403
        assert "This form has expired or was sent from another site" in answer.text
    other = await logged_in(client, "domain", "a.example")  # a new session: a new token
    assert other.csrf != panel.csrf
    stale = await client.post(
        "/domain/a.example/users", data={"csrf": panel.csrf, "username": "eve", "password": PW}
    )
    assert stale.status_code == 403
    users = await world.runtime.services.users.users(OP, DomainName.parse("a.example"))
    assert "eve" not in [u.address.local for u in users]


async def test_login_form_needs_its_form_token(world: World, client: httpx.AsyncClient) -> None:
    answer = await client.post("/login/customer", data={"login": "acme", "password": PW})
    assert answer.status_code == 403


async def test_logout_ends_the_session_on_the_server(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    token = client.cookies["mailhost_session"]
    answer = await panel.post("/logout")
    assert (answer.status_code, answer.headers["location"]) == (303, "/?done=logged_out")
    client.cookies.set("mailhost_session", token)  # a copy of the old cookie
    again = await client.get("/customer/")
    assert (again.status_code, again.headers["location"]) == (303, "/login/customer")


async def test_disabling_a_customer_ends_its_sessions_and_refuses_its_logins(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    await world.runtime.services.accounts.set_customer_enabled(OP, "acme", False)
    answer = await client.get("/domain/a.example/users")
    assert answer.headers["location"] == "/login/domain"
    for level, login in (("customer", "acme"), ("domain", "a.example")):
        assert (await panel.login(level, login)).status_code == 401


async def test_pages_carry_security_headers(world: World, client: httpx.AsyncClient) -> None:
    answer = await client.get("/login/customer")
    assert "script-src 'none'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
