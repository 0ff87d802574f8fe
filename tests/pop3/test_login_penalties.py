"""POP3 logins under penalties, against the real server, database and authenticator.

Each client picks its own 127.0.0.x source address, so the server sees separate
machines: a phone holding an old password, its owner's laptop, a guesser.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailhost.errors import MailboxInUse
from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import MailboxRef
from mailhost.runtime import Runtime
from mailhost.services.throttle import penalty_seconds
from mailhost.settings import Settings
from tests.serving import serving, serving_settings

OP = ProviderActor("test")
PW = "correct horse battery"
BOB = "bob@example.test"
CAP = 0.05
REPLY_TIMEOUT = 30.0


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return serving_settings(data_dir, database_url, str(CAP))


@dataclass
class Served:
    runtime: Runtime
    port: int
    mailbox: MailboxRef


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[Served]:
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    domain = DomainName.parse("example.test")
    await runtime.services.accounts.add_domain(OP, domain, "acme", PW)
    await runtime.services.users.add_user(OP, EmailAddress.hosted(BOB), PW)
    await runtime.services.users.add_mailbox(OP, EmailAddress.hosted(BOB), ByteSize.parse("100MB"))
    [box] = await runtime.services.users.mailboxes(OP, domain)
    async with serving(runtime) as ports:
        yield Served(runtime, ports["POP3"], box.ref)


@dataclass
class Pop3:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def say(self, command: str, expect: str) -> str:
        self.writer.write(command.encode() + b"\r\n")
        async with asyncio.timeout(REPLY_TIMEOUT):
            line = (await self.reader.readline()).decode().rstrip("\r\n")
        assert line.startswith(expect), f"{command!r}: expected {expect!r}, got {line!r}"
        return line

    async def login(self, password: str, expect: str) -> str:
        await self.say(f"USER {BOB}", "+OK")
        return await self.say(f"PASS {password}", expect)


@contextlib.asynccontextmanager
async def pop3(served: Served, source: str) -> AsyncIterator[Pop3]:
    """A connection from `source` (a 127.x.y.z address); QUIT and closed at the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port, local_addr=(source, 0))
    client = Pop3(reader, writer)
    try:
        async with asyncio.timeout(REPLY_TIMEOUT):
            assert (await reader.readline()).startswith(b"+OK")
        yield client
        await client.say("QUIT", "+OK")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    await released(served)


async def standing_failures(served: Served, source: str) -> int:
    """Failures from `source` not yet forgiven by a success (what its penalty grows from)."""
    since = datetime.now(UTC) - timedelta(hours=1)
    return (await served.runtime.penalties.attempts.failures_from(source, since, 100)).failures


async def released(served: Served) -> None:
    """Wait until the server's session has let go of the mailbox."""
    for _ in range(500):
        try:
            async with served.runtime.store.exclusive(served.mailbox):
                return
        except MailboxInUse:
            await asyncio.sleep(0.01)
    raise AssertionError("the mailbox stayed locked")


async def test_a_stale_phone_never_locks_its_owner_out(served: Served) -> None:
    penalties = served.runtime.penalties
    async with pop3(served, "127.0.0.2") as phone:
        for _ in range(6):  # last month's password, retried
            await phone.login("last month's password", "-ERR [AUTH] invalid login or password")
    assert await standing_failures(served, "127.0.0.2") == 6
    # The laptop's address has no failures: no penalty, and the right password works.
    assert await penalties.address_wait("127.0.0.3") == 0.0
    async with pop3(served, "127.0.0.3") as laptop:
        await laptop.login(PW, "+OK bob@example.test has 0 messages")
    # The phone, given the new password, gets in from its penalised address too,
    # and that success forgives the address its failures on the account.
    async with pop3(served, "127.0.0.2") as phone:
        await phone.login(PW, "+OK bob@example.test has 0 messages")
    assert await standing_failures(served, "127.0.0.2") == 0
    assert await penalties.account_penalty("user", BOB) == 0.0


async def test_fifty_parallel_guesses_from_one_address_take_the_sum_of_their_penalties(
    served: Served,
) -> None:
    async def guess(n: int) -> None:
        async with pop3(served, "127.0.0.5") as guesser:
            await guesser.login(f"guess number {n}", "-ERR [AUTH]")

    started = time.monotonic()
    await asyncio.gather(*(guess(n) for n in range(50)))
    elapsed = time.monotonic() - started
    # More connections make guessing no faster: they wait in line for each other.
    assert elapsed >= sum(penalty_seconds(n, CAP) for n in range(50)) * 0.99


async def test_guesses_spread_over_many_addresses_are_slowed_and_the_owner_is_not(
    served: Served,
) -> None:
    penalties = served.runtime.penalties
    for n in range(10, 15):
        source = f"127.0.0.{n}"
        assert await penalties.address_wait(source) == 0.0  # each a fresh address
        started = time.monotonic()
        async with pop3(served, source) as guesser:
            await guesser.login("a spread guess", "-ERR [AUTH]")
        # The account's failures from the other addresses hold this answer back.
        assert time.monotonic() - started >= penalty_seconds(n - 9, CAP) * 0.99
    assert await penalties.account_penalty("user", BOB) == CAP
    assert await penalties.address_wait("127.0.0.20") == 0.0
    async with pop3(served, "127.0.0.20") as owner:
        await owner.login(PW, "+OK")
