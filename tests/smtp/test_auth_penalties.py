"""SMTP AUTH on submission under penalties: failures slow their address, never lock anyone out.

The real runtime serves implicit-TLS submission; each client picks its own
127.0.0.x source address, so the server sees separate machines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.throttle import penalty_seconds
from mailhost.settings import Settings
from mailhost.tls.contexts import client_context
from tests.serving import HOSTNAME, serving, serving_settings
from tests.smtp.dialogue import Dialogue

OP = ProviderActor("test")
PW = "correct horse battery"
DAVE = "dave@example.test"
CAP = 0.05
INVALID = "535 5.7.8 Authentication credentials invalid"


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return serving_settings(data_dir, database_url, str(CAP))


@dataclass
class Served:
    runtime: Runtime
    port: int


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[Served]:
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    await runtime.services.accounts.add_domain(OP, DomainName.parse("example.test"), "acme", PW)
    await runtime.services.users.add_user(OP, EmailAddress.hosted(DAVE), PW)
    await runtime.services.users.add_smtp_account(OP, EmailAddress.hosted(DAVE), SmtpFacilities())
    async with serving(runtime) as ports:
        yield Served(runtime, ports["Submissions"])


@contextlib.asynccontextmanager
async def submission(served: Served, source: str) -> AsyncIterator[Dialogue]:
    """An implicit-TLS connection from `source` (a 127.x.y.z address), after EHLO."""
    trust = client_context(served.runtime.settings.tls.ca_dir / "ca.pem")
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", served.port, ssl=trust, server_hostname=HOSTNAME, local_addr=(source, 0)
    )
    smtp = Dialogue(reader, writer, HOSTNAME)
    try:
        await smtp.greeting()
        await smtp.ehlo()
        yield smtp
    finally:
        await smtp.close()


async def auth(smtp: Dialogue, password: str, expect: str) -> str:
    token = base64.b64encode(f"\0{DAVE}\0{password}".encode()).decode()
    return await smtp.say(f"AUTH PLAIN {token}", expect)


async def standing_failures(served: Served, source: str) -> int:
    since = datetime.now(UTC) - timedelta(hours=1)
    return (await served.runtime.penalties.attempts.failures_from(source, since, 100)).failures


async def test_a_stale_mail_program_never_locks_its_owner_out(served: Served) -> None:
    async with submission(served, "127.0.0.2") as stale:
        for _ in range(6):  # the old password, every retry answered 535 (never 454)
            await auth(stale, "last month's password", INVALID)
    assert await standing_failures(served, "127.0.0.2") == 6
    # Another address owes nothing: the right password is accepted at once.
    assert await served.runtime.penalties.address_wait("127.0.0.3") == 0.0
    async with submission(served, "127.0.0.3") as laptop:
        await auth(laptop, PW, "235 2.7.0 Authentication successful")
    # The failing address, given the right password, gets in after its penalty.
    async with submission(served, "127.0.0.2") as stale:
        await auth(stale, PW, "235 2.7.0 Authentication successful")
    assert await standing_failures(served, "127.0.0.2") == 0


async def test_many_connections_from_one_address_guess_no_faster(served: Served) -> None:
    async def guess(n: int) -> None:
        async with submission(served, "127.0.0.5") as guesser:
            await auth(guesser, f"guess number {n}", INVALID)

    started = time.monotonic()
    await asyncio.gather(*(guess(n) for n in range(10)))
    assert time.monotonic() - started >= sum(penalty_seconds(n, CAP) for n in range(10)) * 0.99
