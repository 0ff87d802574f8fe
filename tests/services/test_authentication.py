"""The shared Authenticator on a real database: argon2id, success cache, penalties."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import pytest

from mailhost.model.actors import ProviderActor
from mailhost.model.logins import Authenticated, BadCredentials, ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.services.authentication import AuthenticationService
from mailhost.services.throttle import Penalties
from mailhost.settings import Settings
from mailhost.storage.database.engine import session_factory
from mailhost.storage.database.login_attempts import SqlLoginAttempts
from mailhost.storage.database.unit_of_work import SqlLoginDirectory
from tests.conftest import cheap_passwords

OP = ProviderActor("test")
PW = "correct horse battery"
CLIENT = ClientInfo("127.0.0.1", "pop3")
ELSEWHERE = ClientInfo("127.0.0.2", "pop3")
PENALTY_CAP = 0.1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def bob(runtime: Runtime) -> EmailAddress:
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    await runtime.services.accounts.add_domain(OP, DomainName.parse("example.test"), "acme", PW)
    address = EmailAddress.hosted("bob@example.test")
    await runtime.services.users.add_user(OP, address, PW)
    await runtime.services.users.add_mailbox(OP, address, ByteSize.parse("100MB"))
    return address


def service(runtime: Runtime, clock: Clock, *, cache: float = 300) -> AuthenticationService:
    penalties = Penalties(
        SqlLoginAttempts(session_factory(runtime.engine)),
        max_seconds=PENALTY_CAP,
        window_seconds=900,
    )
    return AuthenticationService(
        SqlLoginDirectory(runtime.units),
        cheap_passwords(),
        penalties,
        cache_seconds=cache,
        clock=clock,
    )


async def test_right_password_authenticates_with_mailbox(
    runtime: Runtime, bob: EmailAddress
) -> None:
    outcome = await service(runtime, Clock()).authenticate("Bob@Example.test", PW, CLIENT)
    assert isinstance(outcome, Authenticated)
    assert outcome.login.address == bob
    assert outcome.login.mailbox is not None


async def test_wrong_password_and_unknown_user_look_the_same(
    runtime: Runtime, bob: EmailAddress, caplog: pytest.LogCaptureFixture
) -> None:
    auth = service(runtime, Clock())
    with caplog.at_level(logging.INFO, logger="mailhost.auth"):
        assert isinstance(
            await auth.authenticate(str(bob), "wrong password!", CLIENT), BadCredentials
        )
        assert isinstance(await auth.authenticate("eve@example.test", PW, CLIENT), BadCredentials)
        assert isinstance(await auth.authenticate("not an address", PW, CLIENT), BadCredentials)
    assert "wrong password!" not in caplog.text
    assert PW not in caplog.text


async def test_password_change_invalidates_cached_success(
    runtime: Runtime, bob: EmailAddress
) -> None:
    auth = service(runtime, Clock())
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), Authenticated)
    await runtime.services.users.change_password(OP, bob, "a brand new passphrase")
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), BadCredentials)
    outcome = await auth.authenticate(str(bob), "a brand new passphrase", CLIENT)
    assert isinstance(outcome, Authenticated)


async def test_repeated_failures_never_refuse_the_right_password(
    runtime: Runtime, bob: EmailAddress
) -> None:
    auth = service(runtime, Clock())
    for _ in range(6):
        assert isinstance(
            await auth.authenticate(str(bob), "bad guess 123", CLIENT), BadCredentials
        )
    # From another address at once, from the failing one after its penalty.
    assert isinstance(await auth.authenticate(str(bob), PW, ELSEWHERE), Authenticated)
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), Authenticated)


async def test_many_simultaneous_correct_logins_all_succeed(
    runtime: Runtime, bob: EmailAddress
) -> None:
    # A mail client opening more connections at once than the failure limit (3 here)
    # waits for its first logins instead of being locked out.
    auth = service(runtime, Clock(), cache=0)
    outcomes = await asyncio.gather(*(auth.authenticate(str(bob), PW, CLIENT) for _ in range(8)))
    assert all(isinstance(outcome, Authenticated) for outcome in outcomes)


async def test_hanging_up_on_a_held_answer_keeps_the_failure(
    runtime: Runtime, bob: EmailAddress
) -> None:
    auth = service(runtime, Clock(), cache=0)
    penalties = Penalties(
        SqlLoginAttempts(session_factory(runtime.engine)),
        max_seconds=PENALTY_CAP,
        window_seconds=900,
    )
    since = datetime.now(UTC) - timedelta(hours=1)
    for hung_up in range(1, 4):
        attempt = asyncio.ensure_future(auth.authenticate(str(bob), "a wrong guess!", CLIENT))
        while await penalties.attempts.failures_of("user", str(bob), since, 10) < hung_up:
            await asyncio.sleep(0.01)  # the failure is in; its answer is still held back
        attempt.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await attempt
    assert await penalties.address_wait(CLIENT.address) > 0
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), Authenticated)


async def test_removed_user_is_refused_though_its_login_is_cached(
    runtime: Runtime, bob: EmailAddress
) -> None:
    auth = service(runtime, Clock())  # the clock stands still: the cached success never expires
    first = await auth.authenticate(str(bob), PW, CLIENT)
    assert isinstance(first, Authenticated)
    await runtime.services.users.remove_user(OP, bob)
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), BadCredentials)
    # The address made again is a new user: its own password, its own (empty) facilities.
    await runtime.services.users.add_user(OP, bob, "another passphrase here")
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), BadCredentials)
    again = await auth.authenticate(str(bob), "another passphrase here", CLIENT)
    assert isinstance(again, Authenticated)
    assert again.login.user_id != first.login.user_id and again.login.mailbox is None


async def test_password_changed_by_another_process_ends_the_cached_success(
    settings: Settings, runtime: Runtime, bob: EmailAddress
) -> None:
    auth = service(runtime, Clock())
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), Authenticated)
    # Another node on the same database: this process's cache is never told.
    async with Runtime(settings, passwords=cheap_passwords()) as elsewhere:
        await elsewhere.services.users.change_password(OP, bob, "a brand new passphrase")
    assert isinstance(await auth.authenticate(str(bob), PW, CLIENT), BadCredentials)
