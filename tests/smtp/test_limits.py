"""Session limits on the MX and submission listeners, and their graceful stop, over real sockets.

Errors slow a client down and then end its session (Postfix's soft and hard error
limits), connections are limited per client address and in all, idle clients time
out (in the TLS handshake too), a burst of connections is greeted whole, and a stop
lets a message in DATA finish while idle sessions are told 421 4.3.2. The limits are
small here so the tests are quick; delays are checked only from below.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from mailhost.smtp.admission import Admission, SessionLimits
from tests.smtp import dialogue
from tests.smtp.listening import Kind, listening

OP = ProviderActor("test")
PW = "correct horse battery"
HOSTNAME = "mx.example.test"
DOMAIN = DomainName.parse("example.com")
SERVER_NAME = DOMAIN.mail_host
BOB = EmailAddress.hosted("bob@example.com")
ALICE = EmailAddress.hosted("alice@example.com")
SLEEP = 0.05
ERRORS = SessionLimits(soft_error_limit=3, hard_error_limit=6, error_sleep_seconds=SLEEP)
MESSAGE = b"From: a@remote.test\r\nTo: bob@example.com\r\nSubject: s\r\n\r\nbody\r\n"
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as \S+")
SHUTTING_DOWN = f"421 4.3.2 {HOSTNAME} Service shutting down"


@pytest.fixture
def settings(data_dir: Path, sqlite_template: Path) -> Settings:
    # The limits live in the protocol, not in the database: SQLite alone is enough.
    database = data_dir / "mailhost.db"
    shutil.copy(sqlite_template, database)
    environ = {
        "MAILHOST_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
    }
    return load_settings(None, data_dir, environ)


@pytest.fixture
async def hosted(runtime: Runtime) -> Runtime:
    """example.com with bob (a mailbox) and alice (an SMTP account)."""
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "acme@contact.test", PW)
    await accounts.add_domain(OP, DOMAIN, "acme", PW)
    for user in (BOB, ALICE):
        await users.add_user(OP, user, PW)
    await users.add_mailbox(OP, BOB, ByteSize.parse("100MB"))
    await users.add_smtp_account(OP, ALICE, SmtpFacilities())
    await runtime.prepare_tls()
    return runtime


class Dialogue(dialogue.Dialogue):
    """A client that also measures how long the server takes to answer."""

    async def timed(self, command: str, expect: str) -> float:
        """Seconds from sending `command` to its reply (checked like `say`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.say(command, expect)
        return loop.time() - started


@dataclass
class Listener:
    port: int
    sessions: Admission
    trust: ssl.SSLContext | None  # set on the implicit-TLS port

    async def open(self, client: str = "127.0.0.1") -> Dialogue:
        """Connected from `client` (any 127.x.y.z is this host), greeting not read yet."""
        if self.trust is None:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, local_addr=(client, 0)
            )
        else:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                self.port,
                local_addr=(client, 0),
                ssl=self.trust,
                server_hostname=SERVER_NAME,
            )
        return Dialogue(reader, writer, HOSTNAME)

    @contextlib.asynccontextmanager
    async def connect(self, client: str = "127.0.0.1") -> AsyncIterator[Dialogue]:
        smtp = await self.open(client)
        try:
            await smtp.greeting()
            yield smtp
        finally:
            await smtp.close()


Start = Callable[..., Awaitable[Listener]]


@pytest.fixture
async def start(hosted: Runtime) -> AsyncIterator[Start]:
    async with listening(hosted, HOSTNAME) as on:

        async def start(
            kind: Kind, limits: SessionLimits, *, idle_timeout: float = 30.0
        ) -> Listener:
            sessions = Admission(limits)
            port = await on.start(
                kind, sessions, max_message_size=50_000, idle_timeout=idle_timeout
            )
            return Listener(port, sessions, on.trust if kind == "submissions" else None)

        yield start


async def stored(runtime: Runtime, address: EmailAddress) -> list[bytes]:
    mailboxes = await runtime.services.users.mailboxes(OP, DOMAIN)
    ref = next(m for m in mailboxes if m.address == address).ref
    return [
        b"".join([chunk async for chunk in runtime.store.read(ref, message.uid)])
        for message in await runtime.store.list(ref)
    ]


async def test_guessed_recipients_are_slowed_then_the_session_ends_with_421_4_7_0(
    start: Start,
) -> None:
    mx = await start("mx", ERRORS)
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<a@remote.test>", "250 2.1.0")
        for n in (1, 2):
            await smtp.say(f"RCPT TO:<guess{n}@example.com>", "550 5.1.1")
        # The third error reaches the soft limit: from here on every reply waits.
        waits = [await smtp.timed("RCPT TO:<guess3@example.com>", "550 5.1.1")]
        waits.append(await smtp.timed("NOOP", "250 2.0.0"))
        waits.append(await smtp.timed("RCPT TO:<bob@example.com>", "250 2.1.5"))
        for n in (4, 5):
            waits.append(await smtp.timed(f"RCPT TO:<guess{n}@example.com>", "550 5.1.1"))
        assert all(wait >= SLEEP for wait in waits), waits
        # The sixth error is the hard limit: its reply, then 421, then the connection ends.
        await smtp.say("RCPT TO:<guess6@example.com>", "550 5.1.1")
        assert await smtp.rest() == [f"421 4.7.0 {HOSTNAME} Error: too many errors"]
    # The count is per session: a new connection starts afresh and delivers.
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<a@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<guess7@example.com>", "550 5.1.1")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        line = await smtp.data(MESSAGE, "250 2.0.0")
        assert QUEUED.fullmatch(line), line


async def test_failed_auth_and_refused_commands_count_as_errors_on_submission(
    start: Start,
) -> None:
    submissions = await start("submissions", ERRORS)
    bad = "AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHdyb25n"  # alice@example.com, "wrong"
    async with submissions.connect() as smtp:
        await smtp.ehlo()
        await smtp.say(bad, "535 5.7.8")
        await smtp.say("MAIL FROM:<alice@example.com>", "530 5.7.0 Authentication required")
        waits = [await smtp.timed("FROBNICATE", "500 5.5.1")]  # the soft limit
        waits.append(await smtp.timed("NOOP", "250 2.0.0"))
        waits.append(await smtp.timed(bad, "535 5.7.8"))
        waits.append(await smtp.timed("RCPT TO:<bob@example.com>", "530 5.7.0"))
        assert all(wait >= SLEEP for wait in waits), waits
        await smtp.say("MAIL FROM:<alice@example.com>", "530 5.7.0")
        assert await smtp.rest() == [f"421 4.7.0 {HOSTNAME} Error: too many errors"]
    async with submissions.connect() as smtp:
        await smtp.ehlo()
        login = "AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ=="
        await smtp.say(login, "235 2.7.0")


@pytest.mark.parametrize("kind", ["mx", "submission", "submissions"])
async def test_connections_over_the_limits_are_turned_away_with_421_4_7_0(
    start: Start, kind: Kind
) -> None:
    listener = await start(kind, SessionLimits(max_connections=3, max_connections_per_client=2))
    async with contextlib.AsyncExitStack() as held:
        first = await held.enter_async_context(listener.connect("127.0.0.1"))
        await held.enter_async_context(listener.connect("127.0.0.1"))
        crowded = await listener.open("127.0.0.1")
        assert await crowded.rest() == [
            f"421 4.7.0 {HOSTNAME} Error: too many connections from 127.0.0.1"
        ]
        await crowded.close()
        await held.enter_async_context(listener.connect("127.0.0.2"))  # the third in all
        full = await listener.open("127.0.0.3")
        assert await full.rest() == [f"421 4.7.0 {HOSTNAME} Error: too many connections"]
        await full.close()
        assert listener.sessions.live == 3
        # A session that ends frees its place, for its client and in all.
        await first.say("QUIT", "221 2.0.0")
        assert await first.rest() == []
        async with listener.connect("127.0.0.1") as again:
            await again.ehlo()


@pytest.mark.parametrize("kind", ["mx", "submission"])
async def test_a_client_idle_before_ehlo_is_told_and_disconnected(start: Start, kind: Kind) -> None:
    listener = await start(kind, SessionLimits(), idle_timeout=0.3)
    async with listener.connect() as smtp:
        assert await smtp.rest() == [f"421 4.4.2 {HOSTNAME} Error: timeout exceeded"]
    assert listener.sessions.live == 0


async def test_a_client_idle_in_the_tls_handshake_is_disconnected(start: Start) -> None:
    # Plain TCP to the implicit-TLS port, and no ClientHello: the handshake never starts.
    submissions = await start("submissions", SessionLimits(), idle_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", submissions.port)
    try:
        async with asyncio.timeout(10):  # the handshake's own limit would be 30 s
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_a_burst_of_a_thousand_connections_is_all_greeted(start: Start) -> None:
    mx = await start("mx", SessionLimits(max_connections=2000, max_connections_per_client=2000))
    greeted: list[Dialogue] = []

    async def connect() -> None:
        smtp = await mx.open()
        greeted.append(smtp)
        await smtp.greeting()

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(connect() for _ in range(1000)))
        assert mx.sessions.live == 1000
    finally:
        await asyncio.gather(*(smtp.close() for smtp in greeted))


async def test_stop_lets_data_finish_and_tells_idle_sessions_421_4_3_2(
    start: Start, hosted: Runtime
) -> None:
    mx = await start("mx", SessionLimits())
    async with mx.connect() as sending, mx.connect() as idle:
        await sending.ehlo()
        await sending.say("MAIL FROM:<a@remote.test>", "250 2.1.0")
        await sending.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await sending.say("DATA", "354 ")
        sending.writer.write(MESSAGE[:20])
        await sending.writer.drain()
        await idle.ehlo()
        stopping = asyncio.create_task(mx.sessions.stop(grace_seconds=30))
        assert await idle.rest() == [SHUTTING_DOWN]
        sending.writer.write(MESSAGE[20:] + b".\r\n")
        [line, goodbye] = await sending.rest()
        assert QUEUED.fullmatch(line), line
        assert goodbye == SHUTTING_DOWN
        await stopping
    assert [message.endswith(MESSAGE) for message in await stored(hosted, BOB)] == [True]
    # Once stopping, the listener admits nobody (the runtime also closed its socket).
    late = await mx.open()
    assert await late.rest() == [SHUTTING_DOWN]
    await late.close()


async def test_a_message_still_in_data_when_the_grace_ends_gets_no_250(
    start: Start, hosted: Runtime
) -> None:
    mx = await start("mx", SessionLimits())
    async with mx.connect() as sending:
        await sending.ehlo()
        await sending.say("MAIL FROM:<a@remote.test>", "250 2.1.0")
        await sending.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await sending.say("DATA", "354 ")
        sending.writer.write(MESSAGE[:20])
        await sending.writer.drain()
        await mx.sessions.stop(grace_seconds=0.2)
        with contextlib.suppress(ConnectionResetError):
            assert await sending.rest() == []
    assert await stored(hosted, BOB) == []
