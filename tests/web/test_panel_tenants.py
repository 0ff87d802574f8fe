"""No path from one tenant to another through the panel: crafted URLs answer like missing
objects, and change nothing."""

from __future__ import annotations

import httpx
import pytest

from mailhost.model.actors import CustomerActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName
from mailhost.services.sessions import Login
from tests.web.conftest import OP, PW, World, logged_in

B = DomainName.parse("b.example")
NOT_HOSTED = "domain b.example is not hosted here"

READS = [
    "/domain/b.example/",
    "/domain/b.example/users",
    "/domain/b.example/mailboxes",
    "/domain/b.example/smtp",
    "/domain/b.example/dns",
    "/domain/b.example/postmaster",
]
CHANGES: list[tuple[str, dict[str, str]]] = [
    ("/domain/b.example/users", {"username": "intruder", "password": PW}),
    ("/domain/b.example/users/bob/password", {"password": "taken over password"}),
    ("/domain/b.example/users/bob/remove", {"confirm": "yes"}),
    ("/domain/b.example/mailboxes", {"username": "bob", "quota": "1KB"}),
    ("/domain/b.example/mailboxes/bob/remove", {"confirm": "yes"}),
    ("/domain/b.example/smtp", {"add": "smtp", "username": "chief", "sender": "own"}),
    ("/domain/b.example/smtp/bob/remove", {"confirm": "yes"}),
    ("/domain/b.example/dns/verify", {}),
    ("/domain/b.example/postmaster", {"target": "address", "address": "alice@a.example"}),
]


async def snapshot(world: World) -> tuple[object, ...]:
    users = world.runtime.services.users
    return (
        await users.users(OP, B),
        await users.mailboxes(OP, B),
        await users.smtp_accounts(OP, B),
        await world.runtime.services.accounts.domains(OP, "other"),
    )


@pytest.mark.parametrize(("level", "login"), [("domain", "a.example"), ("customer", "acme")])
async def test_another_tenants_domain_pages_answer_not_hosted(
    world: World, client: httpx.AsyncClient, level: str, login: str
) -> None:
    panel = await logged_in(client, level, login)
    for url in READS:
        page = await panel.get(url)
        assert page.status_code == 404, url
        assert NOT_HOSTED in page.text, url


@pytest.mark.parametrize(("level", "login"), [("domain", "a.example"), ("customer", "acme")])
async def test_another_tenants_domain_cannot_be_changed_by_crafted_posts(
    world: World, client: httpx.AsyncClient, level: str, login: str
) -> None:
    before = await snapshot(world)
    panel = await logged_in(client, level, login)
    for url, fields in CHANGES:
        answer = await panel.post(url, **fields)
        assert answer.status_code == 404, url
        assert NOT_HOSTED in answer.text, url
    assert await snapshot(world) == before
    bob = await world.runtime.web_access.logins.login(
        "user", "bob@b.example", PW, ClientInfo("127.0.0.7", "test")
    )
    assert isinstance(bob, Login)  # the password was not changed


async def test_customer_cannot_remove_another_customers_domain(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    answer = await panel.post("/customer/domains/b.example/remove", confirm="yes")
    assert answer.status_code == 404
    assert NOT_HOSTED in answer.text
    assert [d.name for d in await world.runtime.services.accounts.domains(OP, "other")] == [B]


async def test_domain_manager_cannot_open_the_customer_or_provider_level(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    for url, target in (
        ("/customer/", "/login/customer"),
        ("/provider/customers", "/login/provider"),
        ("/user/", "/login/user"),
    ):
        answer = await panel.get(url)
        assert (answer.status_code, answer.headers["location"]) == (303, target), url
    changed = await panel.post("/provider/customers/other/enabled", enabled="no")
    assert changed.headers["location"] == "/login/provider"
    assert (await world.runtime.services.accounts.customer(OP, "other")).enabled


async def test_domain_user_cannot_manage_its_own_domain(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "user", "alice@a.example")
    for url in ("/domain/a.example/users", "/domain/a.example/smtp", "/tokens"):
        answer = await panel.get(url)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login/domain"), url
    answer = await panel.post("/domain/a.example/users", username="mallory", password=PW)
    assert answer.headers["location"] == "/login/domain"
    users = await world.runtime.services.users.users(OP, DomainName.parse("a.example"))
    assert "mallory" not in [u.address.local for u in users]


async def test_api_token_of_another_login_cannot_be_revoked(
    world: World, client: httpx.AsyncClient
) -> None:
    tokens = world.runtime.web_access.api_tokens
    other = await world.runtime.services.accounts.customer(OP, "other")
    record, _ = await tokens.create(CustomerActor(other.id, other.login), "theirs")
    panel = await logged_in(client, "customer", "acme")
    assert (await panel.get(f"/tokens/{record.id}/revoke")).status_code == 404
    answer = await panel.post(f"/tokens/{record.id}/revoke", confirm="yes")
    assert answer.status_code == 404
    assert f"API token {record.id} does not exist" in answer.text
    (still,) = await tokens.tokens(CustomerActor(other.id, other.login))
    assert still.revoked_at is None


async def test_anonymous_visitor_is_sent_to_a_login_page(
    world: World, client: httpx.AsyncClient
) -> None:
    for url, target in (
        ("/domain/a.example/smtp", "/login/domain"),
        ("/customer/", "/login/customer"),
        ("/provider/", "/login/provider"),
        ("/user/", "/login/user"),
        ("/tokens", "/login/domain"),
    ):
        answer = await client.get(url)
        assert (answer.status_code, answer.headers["location"]) == (303, target), url
