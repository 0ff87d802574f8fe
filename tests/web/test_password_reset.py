"""Forgot password at every level: the same answer for everyone, a single-use link mailed to
the contact address and read back from the real Maildir, sessions ended, rate limits."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mailhost.errors import NotFound
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from mailhost.services.password_reset import PasswordResetService
from mailhost.services.sessions import Login
from mailhost.services.throttle import MemoryLimiter
from tests.web.conftest import HOSTNAME, OP, PW, Panel, World, addr, logged_in

NEW = "a completely new passphrase"
LINK = re.compile(r"(https?://\S+/reset/(\S+))")
LEVELS = [
    ("customer", "acme"),
    ("domain", "a.example"),
    ("user", "alice@a.example"),
    ("provider", "root"),
]


async def inbox(rt: Runtime, address: str = "boss@a.example") -> list[email.message.EmailMessage]:
    """Every message in the real Maildir of `address`, parsed, once the reset requests
    answered so far are done (the panel answers before it looks the login up)."""
    await rt.web_access.resets.drain()
    return await maildir_messages(rt, address)


async def maildir_messages(rt: Runtime, address: str) -> list[email.message.EmailMessage]:
    boxes = await rt.services.users.mailboxes(OP, DomainName.parse(address.split("@")[1]))
    (box,) = [b for b in boxes if str(b.address) == address]
    messages = []
    for stored in await rt.store.list(box.ref):
        raw = b"".join([chunk async for chunk in rt.store.read(box.ref, stored.uid)])
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        messages.append(parsed)
    return messages


def link_in(message: email.message.EmailMessage) -> tuple[str, str]:
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, "no reset link in the mail"
    return found.group(1), found.group(2)


async def request_reset(panel: Panel, level: str, login: str) -> httpx.Response:
    await panel.get(f"/forgot/{level}")
    return await panel.post(f"/forgot/{level}", login=login)


@pytest.mark.parametrize(("level", "login"), LEVELS)
async def test_reset_link_is_mailed_works_once_and_ends_other_sessions(
    world: World, client: httpx.AsyncClient, level: str, login: str
) -> None:
    rt = world.runtime
    elsewhere = await logged_in(client, level, login)
    old_session = client.cookies["mailhost_session"]
    client.cookies.clear()
    panel = Panel(client)
    answer = await request_reset(panel, level, login)
    assert answer.status_code == 200
    assert "If that login exists and has a contact address" in answer.text
    (message,) = await inbox(rt)
    assert message["To"] == "boss@a.example"
    assert message["Auto-Submitted"] == "auto-generated"
    url, token = link_in(message)
    assert url.startswith(f"http://{HOSTNAME}/reset/")  # [web] public_url, port 0: none
    form = await panel.get(f"/reset/{token}")
    assert form.status_code == 200 and login.split("@")[0] in form.text
    mismatch = await panel.post(f"/reset/{token}", password=NEW, confirm=NEW + "!")
    assert mismatch.status_code == 422
    done = await panel.post(f"/reset/{token}", password=NEW, confirm=NEW)
    assert (done.status_code, done.headers["location"]) == (
        303,
        f"/login/{level}?done=password_reset",
    )
    assert (await panel.login(level, login, PW)).status_code == 401
    assert (await panel.login(level, login, NEW)).status_code == 303
    gone = await panel.get(f"/reset/{token}")
    assert gone.status_code == 404
    again = await panel.post(f"/reset/{token}", password=NEW + "2", confirm=NEW + "2")
    assert again.status_code == 404
    assert "this reset link is not valid" in again.text
    # The session opened before the reset is over.
    assert elsewhere.csrf
    client.cookies.set("mailhost_session", old_session)
    stale = await client.get("/tokens" if level != "user" else "/user/")
    assert stale.status_code == 303


async def test_unknown_and_known_logins_get_the_same_answer(world: World, panel: Panel) -> None:
    known = await request_reset(panel, "customer", "acme")
    unknown = await request_reset(panel, "customer", "nobody")
    invalid = await request_reset(panel, "domain", "not a domain!")
    assert known.status_code == unknown.status_code == invalid.status_code == 200
    assert known.text == unknown.text
    assert len(await inbox(world.runtime)) == 1


async def test_user_without_a_recovery_address_gets_no_mail_but_the_same_answer(
    world: World, panel: Panel
) -> None:
    await world.runtime.services.users.add_user(OP, addr("norecovery@a.example"), PW)
    known = await request_reset(panel, "user", "alice@a.example")
    silent = await request_reset(panel, "user", "norecovery@a.example")
    assert known.text == silent.text
    assert len(await inbox(world.runtime)) == 1


async def test_reset_requests_are_rate_limited_per_login(world: World, panel: Panel) -> None:
    answers = [(await request_reset(panel, "customer", "acme")).text for _ in range(5)]
    assert len(set(answers)) == 1
    assert len(await inbox(world.runtime)) == 3


async def test_a_forged_host_header_does_not_end_up_in_the_link(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = Panel(client)
    await panel.get("/forgot/customer")
    await client.post(
        "/forgot/customer",
        data={"csrf": panel.csrf, "login": "acme"},
        headers={"Host": "attacker.example"},
    )
    (message,) = await inbox(world.runtime)
    url, _ = link_in(message)
    assert url.startswith(f"http://{HOSTNAME}/reset/")


async def test_reset_for_a_remote_contact_goes_to_the_outbound_queue(
    world: World, panel: Panel
) -> None:
    rt = world.runtime
    await rt.services.accounts.add_customer(OP, "remote", "Bulk Hosting", "it@remote.example", PW)
    answer = await request_reset(panel, "customer", "remote")
    assert answer.status_code == 200
    await rt.web_access.resets.drain()
    queued = await rt.queue.queued(10)
    assert [q.recipient for q in queued] == ["it@remote.example"]
    assert queued[0].sender == f"postmaster@{HOSTNAME}"


async def test_expired_and_unknown_links_are_refused(world: World) -> None:
    rt = world.runtime
    now = [datetime(2030, 1, 1, 12, 0, tzinfo=UTC)]
    resets = PasswordResetService(
        rt.units,
        rt.services.passwords,
        rt.services.delivery,
        MemoryLimiter(per_address=9, per_account=9, window_seconds=60),
        f"postmaster@{HOSTNAME}",
        clock=lambda: now[0],
    )
    await resets.request("customer", "acme", lambda t: f"http://x/reset/{t}", _client())
    (message,) = await inbox(rt)
    _, token = link_in(message)
    assert (await resets.check(token)).login == "acme"
    now[0] += timedelta(hours=1, seconds=1)
    with pytest.raises(NotFound):
        await resets.check(token)
    with pytest.raises(NotFound):
        await resets.complete(token, NEW)
    with pytest.raises(NotFound):
        await resets.check("not-a-token")
    outcome = await rt.web_access.logins.login("customer", "acme", PW, _client())
    assert isinstance(outcome, Login)


def _client() -> ClientInfo:
    return ClientInfo("127.0.0.5", "test")
