"""Through the panel and the API: a credential never outlives its login, never passes to
another tenant's login, and a password change ends the login's other sessions and links.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from mailhost.interfaces import LoginKind
from mailhost.model.actors import CustomerActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from tests.web.conftest import BASE, OP, PW, Panel, World, addr, logged_in

NEW = "a completely new passphrase"
SECRET = re.compile(r"mh_[A-Za-z0-9_-]{20,}")
INVALID = "this reset link is not valid"


@asynccontextmanager
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """One more browser: its own cookie jar, so its own panel session."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as opened:
        yield opened


async def reset_token(rt: Runtime, kind: LoginKind, login: str) -> str:
    """Ask for a reset link as the forgot-password form does, keeping the token it carries."""
    made: list[str] = []

    def link(token: str) -> str:
        made.append(token)
        return f"{BASE}/reset/{token}"

    await rt.web_access.resets.request(kind, login, link, ClientInfo("127.0.0.9", "test"))
    (token,) = made
    return token


async def logged_out(client: httpx.AsyncClient, path: str, level: str) -> bool:
    """The session cookie the client holds no longer opens `path`: back to the login."""
    answer = await client.get(path)
    return answer.status_code == 303 and answer.headers["location"].startswith(f"/login/{level}")


async def test_credentials_of_a_removed_domain_do_not_pass_to_the_next_tenant(
    world: World, app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The attack: acme's token, sessions and reset link of a removed domain and its user,
    then another customer's domain and user that would have taken over the ids."""
    rt = world.runtime
    acme = await rt.services.accounts.customer(OP, "acme")
    owner = CustomerActor(acme.id, acme.login)
    old = await rt.services.accounts.add_domain(owner, DomainName.parse("old.example"), "acme", PW)
    await rt.services.accounts.trust_domain(OP, old.name)  # its users may log in
    zed = await rt.services.users.add_user(OP, addr("zed@old.example"), PW, "boss@a.example")
    domain_panel = await logged_in(client, "domain", "old.example")
    made = await domain_panel.post("/tokens", name="deploy")
    assert made.status_code == 303
    found = SECRET.search((await domain_panel.get(made.headers["location"])).text)
    assert found is not None
    bearer = {"Authorization": f"Bearer {found.group(0)}"}
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
    link = await reset_token(rt, "user", "zed@old.example")
    async with browser(app) as user_browser:
        assert (await logged_in(user_browser, "user", "zed@old.example")).csrf

        await rt.services.accounts.remove_domain(owner, old.name)
        await rt.services.accounts.add_domain(OP, DomainName.parse("new.example"), "other", PW)
        new = await rt.services.accounts.domain(OP, DomainName.parse("new.example"))
        again = await rt.services.users.add_user(OP, addr("zed@new.example"), PW)
        assert new.id > old.id and again.id > zed.id  # never the removed rows' ids

        assert await logged_out(user_browser, "/user/", "user")
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    user = {"username": "mallory", "password": PW}
    posted = await client.post("/api/v1/domains/new.example/users", json=user, headers=bearer)
    assert posted.status_code == 401
    assert await logged_out(client, "/domain/new.example/", "domain")
    assert await logged_out(client, "/tokens", "domain")
    refused = await client.get(f"/reset/{link}")
    assert refused.status_code == 404 and INVALID in refused.text
    panel = Panel(client)
    await panel.get("/login/user")
    taken = await panel.post(f"/reset/{link}", password=NEW, confirm=NEW)
    assert taken.status_code == 404
    assert (await panel.login("user", "zed@new.example", PW)).status_code == 303


async def test_a_managers_password_change_ends_the_users_sessions_and_links(
    world: World, app: FastAPI, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    manager = await logged_in(client, "domain", "a.example")
    link = await reset_token(rt, "user", "alice@a.example")
    async with browser(app) as alice:
        await logged_in(alice, "user", "alice@a.example")
        await manager.get("/domain/a.example/users")
        changed = await manager.post("/domain/a.example/users/alice/password", password=NEW)
        assert changed.status_code == 303, changed.text
        assert await logged_out(alice, "/user/", "user")
    assert (await client.get(f"/reset/{link}")).status_code == 404
    assert (await client.get("/domain/a.example/users")).status_code == 200  # the manager's


async def test_a_password_set_through_the_api_ends_the_users_sessions(
    world: World, app: FastAPI, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    acme = await rt.services.accounts.customer(OP, "acme")
    _, secret = await rt.web_access.api_tokens.create(CustomerActor(acme.id, "acme"), "ops")
    async with browser(app) as alice:
        await logged_in(alice, "user", "alice@a.example")
        answer = await client.put(
            "/api/v1/domains/a.example/users/alice/password",
            json={"password": NEW},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert answer.status_code == 204, answer.text
        assert await logged_out(alice, "/user/", "user")


async def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(
    world: World, app: FastAPI, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    here = await logged_in(client, "user", "alice@a.example")
    link = await reset_token(rt, "user", "alice@a.example")
    async with browser(app) as elsewhere:
        await logged_in(elsewhere, "user", "alice@a.example")
        await here.get("/user/")
        changed = await here.post("/user/password", current=PW, password=NEW, confirm=NEW)
        assert (changed.status_code, changed.headers["location"]) == (
            303,
            "/user/?done=password_changed",
        )
        assert (await client.get("/user/")).status_code == 200
        assert await logged_out(elsewhere, "/user/", "user")
    assert (await client.get(f"/reset/{link}")).status_code == 404
