"""Domain Name Level: the seed's procedure through forms, with refusals as form messages."""

from __future__ import annotations

import re

import httpx

from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName
from mailhost.services.sessions import Login
from tests.web.conftest import OP, PW, World, addr, logged_in

A = DomainName.parse("a.example")


def options_of(html: str, select_id: str) -> list[str]:
    block = re.search(rf'<select name="username" id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    return [] if block is None else re.findall(r'<option value="([^"]+)">', block.group(1))


def identifiers_of(html: str, address: str) -> list[str]:
    row = re.search(
        rf"<td>{re.escape(address)}</td>\s*<td class=\"facilities\">(.*?)</td>", html, re.S
    )
    assert row is not None, f"{address} is not listed"
    return re.findall(r'<span class="tag">([^<]+)</span>', row.group(1))


async def test_domain_login_opens_the_portal_with_the_seed_menu(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    page = await panel.get("/domain/a.example/")
    assert page.status_code == 200
    menu = re.search(r'<nav class="menu".*?</nav>', page.text, re.S)
    assert menu is not None
    order = [
        menu.group(0).index(item)
        for item in (
            "Account Settings",
            "Email",
            "Domain Name Users",
            "POP3 Mailbox Usage",
            "Mail SMTP Authentication (SendMail) Settings",
        )
    ]
    assert order == sorted(order)
    # The icon of the same name in the central portal area.
    portal = re.search(r'<div class="portal".*?</div>', page.text, re.S)
    assert portal is not None and 'href="/domain/a.example/smtp"' in portal.group(0)


async def test_smtp_account_procedure_lists_only_free_users_and_shows_identifiers(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    created = await panel.post("/domain/a.example/users", username="Carol", password=PW)
    assert created.status_code == 303
    assert created.headers["location"] == "/domain/a.example/users?done=user_added"
    page = await panel.get("/domain/a.example/smtp")
    assert options_of(page.text, "smtp-username") == ["alice", "boss", "carol"]
    assert '<option value="smtp" selected>SMTP Account:</option>' in page.text
    done = await panel.post(
        "/domain/a.example/smtp",
        add="smtp",
        username="carol",
        relay="yes",
        sender="domain",
        hourly="120",
        recipients="",
        max_size="10MB",
    )
    assert done.status_code == 303
    page = await panel.get(done.headers["location"])
    assert "The SMTP account was added." in page.text
    assert identifiers_of(page.text, "carol@a.example") == ["R", "D", "H120", "S10MB"]
    assert options_of(page.text, "smtp-username") == ["alice", "boss"]
    (account,) = await world.runtime.services.users.smtp_accounts(OP, A)
    assert account.facilities == SmtpFacilities(
        relay=True,
        sender_scope=SenderScope.DOMAIN,
        hourly_limit=120,
        max_message_size=account.facilities.max_message_size,
    )
    assert str(account.facilities.max_message_size) == "10MB"


async def test_no_free_user_says_so_and_links_to_creating_one(
    world: World, client: httpx.AsyncClient
) -> None:
    users = world.runtime.services.users
    for name in ("alice", "boss"):
        await users.add_smtp_account(OP, addr(f"{name}@a.example"), SmtpFacilities())
    panel = await logged_in(client, "domain", "a.example")
    page = await panel.get("/domain/a.example/smtp")
    assert 'id="no-available"' in page.text
    assert "already has an SMTP account" in page.text
    assert 'href="/domain/a.example/users#add"' in page.text
    assert 'name="username" id="smtp-username"' not in page.text


async def test_second_smtp_account_for_a_user_is_refused_on_the_form(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.runtime.services.users.add_smtp_account(
        OP, addr("alice@a.example"), SmtpFacilities()
    )
    panel = await logged_in(client, "domain", "a.example")
    await panel.get("/domain/a.example/smtp")
    refused = await panel.post(
        "/domain/a.example/smtp", add="smtp", username="alice", relay="yes", sender="own"
    )
    assert refused.status_code == 409
    assert "user alice@a.example already has an SMTP account" in refused.text
    assert len(await world.runtime.services.users.smtp_accounts(OP, A)) == 1


async def test_bad_facility_values_are_form_messages_not_errors(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    await panel.get("/domain/a.example/smtp")
    refused = await panel.post(
        "/domain/a.example/smtp", add="smtp", username="alice", sender="own", hourly="many"
    )
    assert refused.status_code == 422
    assert "the hourly limit must be a whole number" in refused.text
    refused = await panel.post(
        "/domain/a.example/smtp", add="smtp", username="alice", sender="own", max_size="big"
    )
    assert refused.status_code == 422
    assert "is not a size" in refused.text
    assert await world.runtime.services.users.smtp_accounts(OP, A) == []


async def test_users_page_adds_changes_password_and_removes(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    await panel.get("/domain/a.example/users")
    weak = await panel.post("/domain/a.example/users", username="dave", password="short")
    assert weak.status_code == 422
    assert "at least 10 characters" in weak.text
    duplicate = await panel.post("/domain/a.example/users", username="ALICE", password=PW)
    assert duplicate.status_code == 409
    assert "user alice@a.example already exists" in duplicate.text
    changed = await panel.post(
        "/domain/a.example/users/alice/password", password="a brand new secret"
    )
    assert changed.status_code == 303
    outcome = await world.runtime.web_access.logins.login(
        "user", "alice@a.example", "a brand new secret", ClientInfo("127.0.0.9", "test")
    )
    assert isinstance(outcome, Login) and outcome.kind == "user"
    unconfirmed = await panel.post("/domain/a.example/users/alice/remove")
    assert unconfirmed.headers["location"] == "/domain/a.example/users/alice/remove"
    removed = await panel.post("/domain/a.example/users/alice/remove", confirm="yes")
    assert removed.status_code == 303
    names = [u.address.local for u in await world.runtime.services.users.users(OP, A)]
    assert names == ["boss"]


async def test_mailbox_page_shows_usage_and_adds_a_mailbox_with_quota(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.runtime.services.users.add_user(OP, addr("carol@a.example"), PW)
    panel = await logged_in(client, "domain", "a.example")
    page = await panel.get("/domain/a.example/mailboxes")
    assert "alice@a.example" in page.text
    assert '<meter min="0" max="10000000" value="0"' in page.text
    assert '<option value="carol">carol</option>' in page.text
    added = await panel.post("/domain/a.example/mailboxes", username="carol", quota="5MB")
    assert added.status_code == 303
    boxes = {str(b.address): b for b in await world.runtime.services.users.mailboxes(OP, A)}
    assert str(boxes["carol@a.example"].quota) == "5MB"
    page = await panel.get("/domain/a.example/mailboxes")
    assert "Every user has a mailbox" in page.text


async def test_customer_reaches_its_domain_panel_without_logging_in_again(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    page = await panel.get("/customer/")
    assert 'href="/domain/a.example/"' in page.text
    smtp = await panel.get("/domain/a.example/smtp")
    assert smtp.status_code == 200
    assert "Mail SMTP Authentication (SendMail) Settings" in smtp.text
    added = await panel.post("/domain/a.example/users", username="erin", password=PW)
    assert added.status_code == 303
    (entry, *_) = await world.runtime.web_access.audit.entries(OP, 1)
    assert (entry.actor, entry.action, entry.target) == (
        "customer:acme",
        "user.add",
        "erin@a.example",
    )
