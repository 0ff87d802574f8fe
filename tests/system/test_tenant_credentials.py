"""The attack of a credential that outlives its domain, against a real `mailhost serve`.

Customer acme adds a domain, makes its API token, logs in as the domain and as
its user, and has a reset link mailed for the user; then removes the domain.
Another customer adds a domain and a user with the same name: on SQLite they
used to get the freed ids, and acme's old credentials acted as them. Now the ids
are new and every old credential is refused.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from tests.conftest import cheap_passwords
from tests.system.conftest import OP, PASSWORD, Pop3sClient, Server

T = TypeVar("T")
NEW = "a completely new passphrase"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SECRET = re.compile(r"mh_[A-Za-z0-9_-]{20,}")
_LINK = re.compile(r"/reset/([A-Za-z0-9_-]+)")


def as_provider(server: Server, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """What `mailhost` commands do: the same services on the same database, another process."""

    async def main() -> T:
        settings = load_settings(None, server.data_dir, server.env)
        async with Runtime(settings, passwords=cheap_passwords()) as rt:
            return await work(rt)

    return asyncio.run(main())


class Browser:
    """A browser without JavaScript on the real panel: cookies kept, CSRF tokens echoed."""

    def __init__(self, server: Server) -> None:
        base = f"http://127.0.0.1:{server.ports['Web panel']}"
        self.http = httpx.Client(base_url=base, timeout=30)
        self.csrf = ""

    def get(self, path: str) -> httpx.Response:
        answer = self.http.get(path)
        found = _CSRF.search(answer.text)
        self.csrf = found.group(1) if found else self.csrf
        return answer

    def post(self, path: str, **fields: str) -> httpx.Response:
        answer = self.http.post(path, data={"csrf": self.csrf, **fields})
        found = _CSRF.search(answer.text)
        self.csrf = found.group(1) if found else self.csrf
        return answer

    def login(self, level: str, login: str, password: str = PASSWORD) -> httpx.Response:
        self.get(f"/login/{level}")
        return self.post(f"/login/{level}", login=login, password=password)

    def sent_to_login(self, path: str, level: str) -> bool:
        answer = self.http.get(path)
        location = answer.headers.get("location", "")
        return answer.status_code == 303 and location.startswith(f"/login/{level}")


def new_token(browser: Browser) -> str:
    browser.get("/tokens")
    made = browser.post("/tokens", name="deploy")
    assert made.status_code == 303, made.text
    found = _SECRET.search(browser.get(made.headers["location"]).text)
    assert found is not None
    return found.group(0)


def reset_link_for_alice(server: Server) -> str:
    """The reset token from the mail in alice's mailbox (the user's recovery address), by POP3."""
    deadline = time.monotonic() + 30
    while True:
        client = Pop3sClient(server.ports["POP3S"], server.tls(), "mail.example.test")
        try:
            client.user("alice@example.test")
            client.pass_(PASSWORD)
            count, _ = client.stat()
            texts = [b"\n".join(client.retr(i + 1)[1]).decode() for i in range(count)]
        finally:
            client.quit()
        links = [m.group(1) for text in texts for m in [_LINK.search(text)] if m]
        if links:
            return links[-1]
        assert time.monotonic() < deadline, "no reset mail arrived"
        time.sleep(0.2)


@pytest.fixture
def browsers(server: Server) -> Iterator[Callable[[], Browser]]:
    """Opens browsers, each with its own cookies, and closes them after the test."""
    opened: list[Browser] = []

    def browser() -> Browser:
        opened.append(Browser(server))
        return opened[-1]

    yield browser
    for each in opened:
        each.http.close()


def test_credentials_of_a_removed_domain_never_act_for_the_next_tenant(
    server: Server, browsers: Callable[[], Browser]
) -> None:
    acme = browsers()
    assert acme.login("customer", "acme").status_code == 303
    bearer = {"Authorization": f"Bearer {new_token(acme)}"}
    api = acme.http
    added = api.post(
        "/api/v1/domains", json={"name": "old.test", "password": PASSWORD}, headers=bearer
    )
    assert added.status_code == 201, added.text
    as_provider(server, lambda rt: rt.services.accounts.trust_domain(OP, DomainName("old.test")))
    user = {"username": "zed", "password": PASSWORD, "recovery_email": "alice@example.test"}
    made = api.post("/api/v1/domains/old.test/users", json=user, headers=bearer)
    assert made.status_code == 201, made.text

    manager = browsers()
    assert manager.login("domain", "old.test").status_code == 303
    domain_bearer = {"Authorization": f"Bearer {new_token(manager)}"}
    assert api.get("/api/v1/me", headers=domain_bearer).status_code == 200
    zed = browsers()
    assert zed.login("user", "zed@old.test").status_code == 303
    assert zed.get("/user/").status_code == 200
    forgot = browsers()
    forgot.get("/forgot/user")
    assert forgot.post("/forgot/user", login="zed@old.test").status_code == 200
    link = reset_link_for_alice(server)
    old_ids = as_provider(server, _ids_of_zed("old.test"))

    assert api.delete("/api/v1/domains/old.test", headers=bearer).status_code == 204
    as_provider(server, _other_customer_with_zed)
    new_ids = as_provider(server, _ids_of_zed("new.test"))
    assert new_ids[0] > old_ids[0] and new_ids[1] > old_ids[1]  # never the removed ids

    assert api.get("/api/v1/me", headers=domain_bearer).status_code == 401
    mallory = {"username": "mallory", "password": PASSWORD}
    taken = api.post("/api/v1/domains/new.test/users", json=mallory, headers=domain_bearer)
    assert taken.status_code == 401
    assert manager.sent_to_login("/domain/new.test/", "domain")
    assert zed.sent_to_login("/user/", "user")
    refused = forgot.get(f"/reset/{link}")
    assert refused.status_code == 404 and "this reset link is not valid" in refused.text
    assert forgot.post(f"/reset/{link}", password=NEW, confirm=NEW).status_code == 404
    assert browsers().login("user", "zed@new.test", PASSWORD).status_code == 303


def _ids_of_zed(domain: str) -> Callable[[Runtime], Awaitable[tuple[int, int]]]:
    async def ids(rt: Runtime) -> tuple[int, int]:
        user = await rt.services.users.user(OP, EmailAddress.hosted(f"zed@{domain}"))
        return user.domain_id, user.id

    return ids


async def _other_customer_with_zed(rt: Runtime) -> None:
    accounts = rt.services.accounts
    await accounts.add_customer(OP, "other", "Bulk Hosting", "boss@other.test", PASSWORD)
    await accounts.add_domain(OP, DomainName.parse("new.test"), "other", PASSWORD)
    await rt.services.users.add_user(OP, EmailAddress.hosted("zed@new.test"), PASSWORD)
