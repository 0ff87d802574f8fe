"""Login history: each login sees its own recent logins and no one else's; the user's
recovery address hears of a login from a new address after failures; old lines go."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mailhost.interfaces import LoginKind
from mailhost.model.logins import AttemptFacts, Authenticated, BadCredentials, ClientInfo
from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from mailhost.services.login_history import LoginHistoryService
from mailhost.services.sessions import Login
from tests.web.conftest import OP, PW, World, addr, logged_in

# (kind, login, its page, another login of the same kind that must stay out of sight)
LEVELS: list[tuple[LoginKind, str, str, str]] = [
    ("provider", "root", "/logins", "ops"),
    ("customer", "acme", "/logins", "other"),
    ("domain", "a.example", "/logins", "b.example"),
    ("user", "alice@a.example", "/user/", "bob@b.example"),
]


async def fail(rt: Runtime, kind: LoginKind, login: str, client: str) -> None:
    outcome = await rt.web_access.logins.login(
        kind, login, "a wrong guess", ClientInfo(client, "web")
    )
    assert isinstance(outcome, BadCredentials)


async def user_id(rt: Runtime, address: str) -> int:
    return (await rt.services.users.user(OP, addr(address))).id


async def messages(rt: Runtime, address: str) -> list[email.message.EmailMessage]:
    boxes = await rt.services.users.mailboxes(OP, DomainName.parse(address.split("@")[1]))
    (box,) = [b for b in boxes if str(b.address) == address]
    found = []
    for stored in await rt.store.list(box.ref):
        raw = b"".join([chunk async for chunk in rt.store.read(box.ref, stored.uid)])
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        found.append(parsed)
    return found


@pytest.mark.parametrize(("kind", "login", "page", "neighbour"), LEVELS)
async def test_each_login_sees_its_own_recent_logins_and_no_one_elses(
    world: World,
    client: httpx.AsyncClient,
    kind: LoginKind,
    login: str,
    page: str,
    neighbour: str,
) -> None:
    rt = world.runtime
    await rt.web_access.admins.add(OP, "ops", "ops@a.example", PW)
    await fail(rt, kind, login, "127.0.1.1")
    await fail(rt, kind, neighbour, "127.0.2.2")
    await fail(rt, "customer" if kind != "customer" else "domain", "a.example", "127.0.3.3")

    panel = await logged_in(client, kind, login)
    text = (await panel.get(page)).text

    assert "Recent logins" in text
    assert "127.0.1.1" in text and "failed" in text
    assert "127.0.0.1" in text and "logged in" in text  # this very login, from the client
    assert "127.0.2.2" not in text  # another tenant's (or admin's) login
    assert "127.0.3.3" not in text  # another kind of login


async def test_a_customer_on_its_domains_pages_still_sees_its_own_history(
    world: World, client: httpx.AsyncClient
) -> None:
    await fail(world.runtime, "domain", "a.example", "127.0.4.4")
    panel = await logged_in(client, "customer", "acme")
    assert (await panel.get("/domain/a.example/")).status_code == 200
    assert "127.0.4.4" not in (await panel.get("/logins")).text


async def test_the_users_page_shows_service_address_and_app_password(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    alice = await user_id(rt, "alice@a.example")
    for service, client_address, app_password in (
        ("pop3", "127.0.5.5", "Thunderbird at home"),
        ("submission", "127.0.6.6", None),
    ):
        await rt.penalties.attempts.record(
            AttemptFacts(
                datetime.now(UTC),
                "user",
                "alice@a.example",
                ClientInfo(client_address, service),
                alice,
                True,
                "accepted",
                app_password,
            )
        )
    panel = await logged_in(client, "user", "alice@a.example")
    text = (await panel.get("/user/")).text
    assert "POP3" in text and "127.0.5.5" in text and "Thunderbird at home" in text
    assert "SMTP (sending)" in text and "127.0.6.6" in text
    assert "Control panel" in text  # the panel login just made


async def test_a_login_from_a_new_address_after_failures_mails_the_recovery_address(
    world: World,
) -> None:
    rt = world.runtime
    auth, history = rt.services.authentication, rt.web_access.history
    alice = "alice@a.example"  # recovery address boss@a.example
    for _ in range(2):
        outcome = await auth.authenticate(alice, "a wrong guess", ClientInfo("127.0.0.9", "pop3"))
        assert isinstance(outcome, BadCredentials)
    outcome = await auth.authenticate(alice, PW, ClientInfo("127.0.0.10", "pop3"))
    assert isinstance(outcome, Authenticated)

    assert await history.send_notices() == 1
    assert await history.send_notices() == 0  # once only
    (notice,) = await messages(rt, "boss@a.example")
    assert notice["Subject"] == "New login to alice@a.example from 127.0.0.10"
    assert notice["Auto-Submitted"] == "auto-generated"
    body = notice.get_body(("plain",))
    assert body is not None and "through POP3" in body.get_content()

    # Failures again, then the address already seen, then a new address with no
    # failures since the last success: none of these is news.
    await auth.authenticate(alice, "a wrong guess", ClientInfo("127.0.0.9", "pop3"))
    assert isinstance(
        await auth.authenticate(alice, PW, ClientInfo("127.0.0.10", "pop3")), Authenticated
    )
    assert isinstance(
        await auth.authenticate(alice, PW, ClientInfo("127.0.0.11", "pop3")), Authenticated
    )
    assert await history.send_notices() == 0
    assert len(await messages(rt, "boss@a.example")) == 1


async def test_a_user_can_turn_the_new_address_notice_off(
    world: World, client: httpx.AsyncClient
) -> None:
    rt = world.runtime
    panel = await logged_in(client, "user", "alice@a.example")
    assert 'name="wanted" value="true" checked' in (await panel.get("/user/")).text
    answer = await panel.post("/user/login-notices")  # the box unticked: nothing sent
    assert answer.status_code == 303 and answer.headers["location"] == "/user/?done=notices_off"
    page = (await panel.get(answer.headers["location"])).text
    assert "New-address login notices are off." in page and "checked" not in page

    auth = rt.services.authentication
    await auth.authenticate("alice@a.example", "a wrong guess", ClientInfo("127.0.0.9", "pop3"))
    outcome = await auth.authenticate("alice@a.example", PW, ClientInfo("127.0.0.12", "pop3"))
    assert isinstance(outcome, Authenticated)
    assert await rt.web_access.history.send_notices() == 0
    assert await messages(rt, "boss@a.example") == []

    answer = await panel.post("/user/login-notices", wanted="true")
    assert answer.headers["location"] == "/user/?done=notices_on"
    assert 'name="wanted" value="true" checked' in (await panel.get("/user/")).text


async def test_old_and_surplus_attempts_are_forgotten(world: World) -> None:
    rt = world.runtime
    alice = await user_id(rt, "alice@a.example")
    now = datetime.now(UTC)

    async def attempt(age: timedelta, subject: int | None, account: str) -> None:
        facts = AttemptFacts(
            now - age, "user", account, ClientInfo("127.0.7.7", "pop3"), subject, False, "x"
        )
        await rt.penalties.attempts.record(facts)

    await attempt(timedelta(days=31), alice, "alice@a.example")  # past keeping
    await attempt(timedelta(hours=1), None, "nobody@a.example")  # names no login: past the window
    await attempt(timedelta(minutes=1), None, "nobody@a.example")  # still counts for penalties
    for _ in range(4):  # beyond the window: only the newest 2 per account stay
        await attempt(timedelta(days=2), alice, "alice@a.example")
    history = LoginHistoryService(
        rt.penalties.attempts,
        rt.services.delivery,
        "postmaster@mx.hosting.test",
        penalty_window=timedelta(minutes=15),
        keep_per_account=2,
    )

    assert await history.prune() == 4
    login = await rt.web_access.logins.login(
        "user", "alice@a.example", PW, ClientInfo("127.0.8.8", "web")
    )
    assert isinstance(login, Login)
    assert len(await history.recent(login)) == 3  # two kept failures and this login


async def test_a_removed_users_history_goes_with_it(world: World) -> None:
    rt = world.runtime
    alice = await user_id(rt, "alice@a.example")
    await fail(rt, "user", "alice@a.example", "127.0.9.9")
    assert len(await rt.penalties.attempts.history("user", alice, 10)) == 1

    await rt.services.users.remove_user(OP, addr("alice@a.example"))

    assert await rt.penalties.attempts.history("user", alice, 10) == []
    # Deleted with the user's row (ON DELETE CASCADE), not left behind nameless.
    since = datetime.now(UTC) - timedelta(hours=1)
    assert await rt.penalties.attempts.failures_of("user", "alice@a.example", since, 10) == 0


async def test_the_running_server_sends_the_notice_by_itself(world: World) -> None:
    rt = world.runtime
    auth = rt.services.authentication
    rt.start_worker()  # as `serve` does: the login history's watcher among the tasks
    try:
        await auth.authenticate("alice@a.example", "a wrong guess", ClientInfo("127.0.0.9", "pop3"))
        outcome = await auth.authenticate("alice@a.example", PW, ClientInfo("127.0.0.13", "pop3"))
        assert isinstance(outcome, Authenticated)
        for _ in range(600):  # woken by the due notice; the bound only stops a hang
            if await messages(rt, "boss@a.example"):
                break
            await asyncio.sleep(0.05)
    finally:
        await rt.stop_worker()
    (notice,) = await messages(rt, "boss@a.example")
    assert notice["Subject"] == "New login to alice@a.example from 127.0.0.13"
