"""Submission (587-style STARTTLS and 465-style implicit TLS) with the real services.

Real TLS with the local CA, real argon2 (cheap parameters), the real database
(SQLite and PostgreSQL) and Maildir, and the real delivery worker sending to an
aiosmtpd sink on 127.0.0.1 (the domains remote.test and far.test route there).
Most tests speak SMTP line by line so every reply is checked by code and text;
smtplib shows that a stock client is served.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import smtplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.model.actors import CustomerActor, ProviderActor
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.message import author_addresses
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from mailhost.smtp.listeners import start_submission_server
from mailhost.smtp.session import SessionDependencies
from mailhost.tls.contexts import client_context
from tests.outbound.conftest import Sink, start_sink
from tests.smtp import dialogue

OP = ProviderActor("test")
PW = "correct horse battery"
HOSTNAME = "mx.example.com"
DOMAIN = DomainName.parse("example.com")
SERVER_NAME = DOMAIN.mail_host  # what mail clients of example.com connect to (SNI)
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as (?P<id>\S+)")
MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Zed <zed@remote.test>\r\n"
    b"Subject: out\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello Zed,\r\n"
    b".a line that starts with a dot\r\n"
    b"caf\xc3\xa9 in 8 bits\r\n"
)


def addr(text: str) -> EmailAddress:
    return EmailAddress.parse(text)


def written_by(author: str, to: str = "zed@remote.test") -> bytes:
    return f"From: {author}\r\nTo: {to}\r\nSubject: s\r\n\r\nbody\r\n".encode()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Sink]:
    started, server = await start_sink(None)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
def settings(data_dir: Path, database_url: str, sink: Sink) -> Settings:
    route = f"127.0.0.1:{sink.port}"
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_DELIVERY_ROUTES": f"remote.test={route},far.test={route}",
        "MAILHOST_AUTH_PENALTY_MAX_SECONDS": "0.05",
    }
    return load_settings(None, data_dir, environ)


@pytest.fixture
async def hosted(runtime: Runtime) -> Runtime:
    """example.com of customer acme (contact boss@example.com); its users:

    alice: SMTP account, defaults (relay, own address only, no limits), mailbox
    dave:  SMTP account with D, H2, N2, S2KB
    rita:  SMTP account with relaying off
    nora:  no SMTP account; bob: mailbox, no SMTP account; boss: mailbox
    """
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@example.com", PW)
    await runtime.services.accounts.add_domain(OP, DOMAIN, "acme", PW)
    users = runtime.services.users
    for name in ("alice", "bob", "boss", "dave", "rita", "nora"):
        await users.add_user(OP, addr(f"{name}@example.com"), PW)
    for name in ("alice", "bob", "boss"):
        await users.add_mailbox(OP, addr(f"{name}@example.com"), ByteSize.parse("100MB"))
    limited = SmtpFacilities(True, SenderScope.DOMAIN, 2, 2, ByteSize.parse("2KB"))
    for name, facilities in (
        ("alice", SmtpFacilities()),
        ("dave", limited),
        ("rita", SmtpFacilities(relay=False)),
    ):
        await users.add_smtp_account(OP, addr(f"{name}@example.com"), facilities)
    await runtime.prepare_tls()
    return runtime


@dataclass
class Dialogue(dialogue.Dialogue):
    """A submission client: STARTTLS with the test CA, AUTH PLAIN, a whole transaction."""

    trust: ssl.SSLContext

    async def starttls(self) -> None:
        await self.say("STARTTLS", "220 2.0.0 Ready to start TLS")
        await self.writer.start_tls(self.trust, server_hostname=SERVER_NAME)

    async def login(self, user: str, password: str = PW, expect: str = "235 2.7.0") -> str:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return await self.say(f"AUTH PLAIN {token}", expect)

    async def send(self, sender: str, recipients: list[str], content: bytes, expect: str) -> str:
        await self.say(f"MAIL FROM:<{sender}>", "250 2.1.0")
        for recipient in recipients:
            await self.say(f"RCPT TO:<{recipient}>", "250 2.1.5")
        return await self.data(content, expect)


@dataclass
class Submission:
    starttls_port: int
    implicit_port: int
    trust: ssl.SSLContext

    @contextlib.asynccontextmanager
    async def connect(self, *, implicit: bool = False) -> AsyncIterator[Dialogue]:
        if implicit:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.implicit_port, ssl=self.trust, server_hostname=SERVER_NAME
            )
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.starttls_port)
        smtp = Dialogue(reader, writer, HOSTNAME, self.trust)
        try:
            await smtp.greeting()
            yield smtp
        finally:
            await smtp.close()

    @contextlib.asynccontextmanager
    async def session(self, user: str, *, implicit: bool = False) -> AsyncIterator[Dialogue]:
        """Connected, encrypted and authenticated as `user`."""
        async with self.connect(implicit=implicit) as smtp:
            await smtp.ehlo()
            if not implicit:
                await smtp.starttls()
                await smtp.ehlo()
            await smtp.login(user)
            yield smtp


StartSubmission = Callable[..., Awaitable[Submission]]


@pytest.fixture
async def submission(hosted: Runtime) -> AsyncIterator[Submission]:
    context = await asyncio.to_thread(hosted.certificates.server_context)
    deps = SessionDependencies(
        service="submission",
        policy=hosted.submission,
        authenticator=hosted.services.authentication,
        delivery=hosted.services.delivery,
        hostname=HOSTNAME,
        ssl_context=context,
        max_message_size=50_000,
        idle_timeout=30.0,
    )
    servers = [
        await start_submission_server("127.0.0.1", 0, deps, implicit_tls=False),
        await start_submission_server("127.0.0.1", 0, deps, implicit_tls=True),
    ]
    trust = client_context(hosted.settings.tls.ca_dir / "ca.pem")
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    yield Submission(ports[0], ports[1], trust)
    for server in servers:
        server.close()
        await server.wait_closed()


async def stored(runtime: Runtime, address: str) -> list[bytes]:
    boxes = await runtime.services.users.mailboxes(OP, DOMAIN)
    ref = next(box.ref for box in boxes if str(box.address) == address)
    contents: list[bytes] = []
    for message in await runtime.store.list(ref):
        async with aclosing(runtime.store.read(ref, message.uid)) as stream:
            contents.append(b"".join([chunk async for chunk in stream]))
    return contents


async def dkim_dns(runtime: Runtime) -> dict[bytes, bytes]:
    """The TXT records `domain add` told the operator to publish, as a resolver would serve them."""
    return {f"{r.name}.".encode(): r.text.encode() for r in await runtime.dkim.records(DOMAIN)}


def dkim_valid(message: bytes, txt: dict[bytes, bytes]) -> bool:
    return bool(dkim.verify(message, dnsfunc=lambda name, timeout=5: txt.get(name)))


# ---------------------------------------------------------------- TLS and AUTH


async def test_before_starttls_only_starttls_is_offered_and_auth_and_mail_are_refused(
    submission: Submission,
) -> None:
    async with submission.connect() as smtp:
        keywords = await smtp.ehlo()
        assert "STARTTLS" in keywords
        assert not any(k.startswith("AUTH") for k in keywords)
        token = base64.b64encode(f"\0alice@example.com\0{PW}".encode()).decode()
        for command in (f"AUTH PLAIN {token}", "MAIL FROM:<alice@example.com>"):
            await smtp.say(command, "530 5.7.0 Must issue a STARTTLS command first")
        await smtp.say("NOOP", "250 2.0.0 Ok")


async def test_after_starttls_only_plain_and_login_are_offered(
    submission: Submission, hosted: Runtime
) -> None:
    async with submission.connect() as smtp:
        await smtp.ehlo()
        await smtp.starttls()
        tls = smtp.writer.get_extra_info("ssl_object")
        assert isinstance(tls, ssl.SSLObject)
        peer = tls.getpeercert()
        assert peer is not None and peer["subjectAltName"] == (("DNS", SERVER_NAME),)
        keywords = await smtp.ehlo()
        assert "STARTTLS" not in keywords
        assert "AUTH PLAIN LOGIN" in keywords
        for mechanism in ("CRAM-MD5", "NTLM", "GSSAPI"):
            await smtp.say(f"AUTH {mechanism}", "504 5.5.4 Unrecognized authentication type")
        await smtp.say("MAIL FROM:<alice@example.com>", "530 5.7.0 Authentication required")
        await smtp.login("alice@example.com")
        await smtp.login("alice@example.com", expect="503 5.5.1 Already authenticated")


async def test_auth_login_and_plain_with_a_prompt(submission: Submission) -> None:
    async with submission.connect(implicit=True) as smtp:
        await smtp.ehlo()
        assert await smtp.say("AUTH LOGIN", "334 ") == "334 VXNlcm5hbWU6"  # "Username:"
        assert await smtp.say(base64.b64encode(b"Alice@Example.COM").decode(), "334 ") == (
            "334 UGFzc3dvcmQ6"  # "Password:"
        )
        await smtp.say(
            base64.b64encode(PW.encode()).decode(), "235 2.7.0 Authentication successful"
        )
    async with submission.connect(implicit=True) as smtp:
        await smtp.ehlo()
        await smtp.say("AUTH PLAIN", "334 ")
        await smtp.say(base64.b64encode(f"\0bob@example.com\0{PW}".encode()).decode(), "235 2.7.0")


async def test_bad_or_borrowed_credentials_are_535_and_aborts_501(
    submission: Submission,
) -> None:
    async with submission.connect(implicit=True) as smtp:
        await smtp.ehlo()
        await smtp.login("alice@example.com", "wrong password!", "535 5.7.8 Authentication cre")
        await smtp.login("ghost@example.com", PW, "535 5.7.8 Authentication credentials invalid")
        # RFC 4616 authzid: bob's password does not let bob act as alice.
        token = base64.b64encode(f"alice@example.com\0bob@example.com\0{PW}".encode()).decode()
        await smtp.say(f"AUTH PLAIN {token}", "535 5.7.8 Authentication credentials invalid")
        await smtp.say("AUTH PLAIN", "334 ")
        await smtp.say("*", "501 5.7.0 Auth aborted")
        await smtp.say("AUTH PLAIN !!!", "501 5.5.2 Cannot decode the AUTH response")
        await smtp.say("MAIL FROM:<alice@example.com>", "530 5.7.0 Authentication required")


async def test_repeated_failures_are_only_slowed_and_the_right_password_still_works(
    submission: Submission,
) -> None:
    async with submission.connect(implicit=True) as smtp:
        await smtp.ehlo()
        for _ in range(6):  # each failure is 535 and slows this address; none locks dave
            await smtp.login("dave@example.com", "not the password", "535 5.7.8")
        await smtp.login("dave@example.com", PW, "235 2.7.0 Authentication successful")
    async with submission.connect(implicit=True) as smtp:  # another connection, another account
        await smtp.ehlo()
        await smtp.login("alice@example.com", PW, "235 2.7.0")


# ---------------------------------------------------------------- the SMTP account decides


async def test_smtplib_relays_out_byte_intact_with_a_valid_dkim_signature(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    def send() -> dict[str, tuple[int, bytes]]:
        with SniSMTP(
            "127.0.0.1", submission.starttls_port, local_hostname="client.test", timeout=20
        ) as client:
            client.starttls(context=submission.trust)
            client.login("alice@example.com", PW)
            return client.sendmail("alice@example.com", ["zed@remote.test"], MESSAGE)

    assert await asyncio.to_thread(send) == {}
    assert sink.received == []  # accepted (spooled, queued), not yet sent
    assert await hosted.worker.run_once() == 1
    (got,) = sink.received
    assert (got.sender, got.recipients) == ("alice@example.com", ["zed@remote.test"])
    assert got.data.endswith(MESSAGE)
    header = got.data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ")
    assert re.search(rb"Received: from client\.test \(\[127\.0\.0\.1\]\) by mx\.example", header)
    assert b"with ESMTPSA" in header
    assert dkim_valid(got.data, await dkim_dns(hosted))
    assert not dkim_valid(got.data.replace(b"Hello Zed", b"Hello Eve"), await dkim_dns(hosted))


async def test_user_without_smtp_account_may_not_relay_but_may_mail_hosted_users(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    async with submission.session("nora@example.com") as smtp:
        await smtp.say("MAIL FROM:<nora@example.com>", "250 2.1.0")
        assert await smtp.say("RCPT TO:<zed@remote.test>", "550") == (
            "550 5.7.1 nora@example.com has no SMTP account: relaying refused"
        )
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await smtp.say("RCPT TO:<nobody@example.com>", "550 5.1.1 <nobody@example.com>: no such")
        await smtp.data(written_by("nora@example.com", "bob@example.com"), "250 2.0.0")
    [message] = await stored(hosted, "bob@example.com")
    assert message.endswith(written_by("nora@example.com", "bob@example.com"))
    assert await hosted.worker.run_once() == 0 and sink.received == []


async def test_relay_facility_off_refuses_other_domains(
    submission: Submission, hosted: Runtime
) -> None:
    async with submission.session("rita@example.com") as smtp:
        await smtp.say("MAIL FROM:<rita@example.com>", "250 2.1.0")
        assert await smtp.say("RCPT TO:<zed@remote.test>", "550") == (
            "550 5.7.1 rita@example.com's SMTP account does not allow relaying: relaying refused"
        )
        await smtp.say("RCPT TO:<alice@example.com>", "250 2.1.5")
        await smtp.data(written_by("rita@example.com"), "250 2.0.0")
    assert len(await stored(hosted, "alice@example.com")) == 1


async def test_changed_facilities_hold_from_the_next_session(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    users, alice = hosted.services.users, addr("alice@example.com")
    async with submission.session("alice@example.com") as smtp:
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
    await users.set_smtp_facilities(OP, alice, SmtpFacilities(relay=False, hourly_limit=1))
    async with submission.session("alice@example.com") as smtp:
        await smtp.say("MAIL FROM:<alice@example.com>", "250 2.1.0")
        assert await smtp.say("RCPT TO:<zed@remote.test>", "550") == (
            "550 5.7.1 alice@example.com's SMTP account does not allow relaying: relaying refused"
        )
    # Relaying on again: the hourly limit of 1 set with it counts from now on.
    await users.set_smtp_facilities(OP, alice, SmtpFacilities(hourly_limit=1))
    async with submission.session("alice@example.com") as smtp:
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
        assert await smtp.say("MAIL FROM:<alice@example.com>", "451") == (
            "451 4.7.1 hourly limit of 1 messages reached for alice@example.com, try later"
        )
    assert await hosted.worker.run_once() == 2
    assert len(sink.received) == 2


@pytest.mark.parametrize(
    ("user", "sender", "allowed"),
    [
        ("alice", "alice@example.com", True),
        ("alice", "ALICE@Example.COM", True),
        ("alice", "bob@example.com", False),
        ("alice", "alice@remote.test", False),
        ("alice", "", False),  # MAIL FROM:<>
        ("dave", "anyone@example.com", True),  # D: any address of the domain
        ("dave", "dave@far.test", False),
        ("nora", "nora@example.com", True),
        ("nora", "bob@example.com", False),
    ],
)
async def test_mail_from_is_limited_to_the_sender_scope(
    submission: Submission, user: str, sender: str, allowed: bool
) -> None:
    async with submission.session(f"{user}@example.com") as smtp:
        if allowed:
            await smtp.say(f"MAIL FROM:<{sender}>", "250 2.1.0 Ok")
        else:
            assert await smtp.say(f"MAIL FROM:<{sender}>", "553") == (
                f"553 5.7.1 sender <{sender or '<>'}> not allowed for {user}@example.com"
            )


@pytest.mark.parametrize(
    "author",
    [
        "Bob <bob@example.com>",
        "alice@example.com, eve@remote.test",
        "not an address",
        '"alice@example.com" <eve@remote.test>',
    ],
)
async def test_from_header_outside_the_scope_is_553_after_data(
    submission: Submission, hosted: Runtime, sink: Sink, author: str
) -> None:
    async with submission.session("alice@example.com") as smtp:
        line = await smtp.send(
            "alice@example.com", ["zed@remote.test"], written_by(author), "553 5.7.1 sender <"
        )
        assert line.endswith("> not allowed for alice@example.com")
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
    assert await hosted.worker.run_once() == 1
    assert len(sink.received) == 1


@pytest.mark.parametrize("field", ["Sender", "Resent-From", "Resent-Sender"])
async def test_every_sender_field_is_held_to_the_from_scope(
    submission: Submission, hosted: Runtime, sink: Sink, field: str
) -> None:
    # A Sender: or Resent-From: is what many readers show; it may claim no more than From:.
    forged = f"{field}: Boss <boss@remote.test>\r\n".encode() + MESSAGE
    async with submission.session("alice@example.com") as smtp:
        line = await smtp.send("alice@example.com", ["zed@remote.test"], forged, "553 5.7.1")
        assert line.endswith("<boss@remote.test> not allowed for alice@example.com")
        own = f"{field}: alice@example.com\r\n".encode() + MESSAGE
        await smtp.send("alice@example.com", ["zed@remote.test"], own, "250 2.0.0")
    assert await hosted.worker.run_once() == 1
    assert len(sink.received) == 1


async def test_hourly_limit_counts_across_connections(
    submission: Submission, hosted: Runtime
) -> None:
    for _ in range(2):  # H2
        async with submission.session("dave@example.com") as smtp:
            await smtp.send(
                "dave@example.com", ["zed@remote.test"], written_by("dave@example.com"), "250"
            )
    async with submission.session("dave@example.com", implicit=True) as smtp:
        assert await smtp.say("MAIL FROM:<dave@example.com>", "451") == (
            "451 4.7.1 hourly limit of 2 messages reached for dave@example.com, try later"
        )
    async with submission.session("alice@example.com") as smtp:  # alice has no hourly limit
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")


async def test_hourly_limit_holds_for_concurrent_connections(
    submission: Submission, hosted: Runtime
) -> None:
    async def attempt(smtp: Dialogue) -> str:
        await smtp.say("MAIL FROM:<dave@example.com>", "250 2.1.0")
        await smtp.say("RCPT TO:<zed@remote.test>", "250 2.1.5")
        await smtp.say("DATA", "354 ")
        smtp.writer.write(written_by("dave@example.com") + b".\r\n")
        [line] = await smtp.reply()
        return line

    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(submission.session("dave@example.com"))
            for _ in range(5)
        ]
        # Every transaction passes MAIL (nothing counted yet); the count at DATA is atomic.
        lines = await asyncio.gather(*(attempt(smtp) for smtp in sessions))
    assert sorted(line[:9] for line in lines) == ["250 2.0.0"] * 2 + ["451 4.7.1"] * 3
    assert len(await hosted.queue.queued(100)) == 2


async def test_recipients_per_message_limit_is_452_naming_it(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    async with submission.session("dave@example.com") as smtp:
        await smtp.say("MAIL FROM:<dave@example.com>", "250 2.1.0")
        await smtp.say("RCPT TO:<zed@remote.test>", "250 2.1.5")
        await smtp.say("RCPT TO:<amy@far.test>", "250 2.1.5")
        assert await smtp.say("RCPT TO:<bob@example.com>", "452") == (
            "452 4.5.3 too many recipients: dave@example.com may send to 2 per message"
        )
        await smtp.data(written_by("dave@example.com"), "250 2.0.0")
    assert await hosted.worker.run_once() == 2
    assert [sorted(r.recipients) for r in sink.received] == [["amy@far.test", "zed@remote.test"]]
    assert await stored(hosted, "bob@example.com") == []


async def test_account_size_limit_is_552_at_mail_and_after_data(
    submission: Submission, hosted: Runtime
) -> None:
    big = written_by("dave@example.com") + (b"x" * 76 + b"\r\n") * 30
    async with submission.session("dave@example.com") as smtp:
        assert await smtp.say("MAIL FROM:<dave@example.com> SIZE=2001", "552") == (
            "552 5.3.4 message exceeds dave@example.com's limit of 2KB"
        )
        await smtp.say("MAIL FROM:<dave@example.com> SIZE=2000", "250 2.1.0")
        await smtp.say("RCPT TO:<zed@remote.test>", "250 2.1.5")
        await smtp.data(big, "552 5.3.4 message exceeds dave@example.com's limit of 2KB")
        await smtp.send("dave@example.com", ["zed@remote.test"], written_by("dave@x"), "553 5.7.1")
    assert await hosted.queue.queued(10) == []
    # The server-wide limit (here 50 kB) still applies to accounts without one.
    async with submission.session("alice@example.com") as smtp:
        await smtp.say("MAIL FROM:<alice@example.com> SIZE=50001", "552 5.3.4 message size")
        big = big.replace(b"dave@", b"alice@")
        await smtp.send("alice@example.com", ["zed@remote.test"], big, "250 2.0.0")


async def test_transfer_limit_notices_at_80_and_100_percent_then_refuses_relay(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    limits = PlanLimits(None, None, ByteSize.parse("100KB"), None)
    await hosted.services.accounts.add_plan(OP, "Tiny", limits)
    customer = await hosted.services.accounts.change_plan(OP, "acme", "Tiny")
    usage = hosted.services.usage
    await usage.add_transfer(customer.id, 79_000)
    async with submission.session("alice@example.com") as smtp:
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
    assert await stored(hosted, "boss@example.com") == []  # 79 %: nobody told yet
    await usage.add_transfer(customer.id, 1_000)
    async with submission.session("alice@example.com") as smtp:
        for _ in range(2):  # told once, however often the 80 % are seen
            await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
    [notice] = await stored(hosted, "boss@example.com")
    assert b"Subject: Your plan Tiny: 80% of this month's data transfer used" in notice
    await usage.add_transfer(customer.id, 20_000)
    async with submission.session("alice@example.com") as smtp:
        await smtp.say("MAIL FROM:<alice@example.com>", "250 2.1.0")
        assert await smtp.say("RCPT TO:<zed@remote.test>", "451") == (
            "451 4.7.1 monthly data transfer of plan Tiny (100KB) used up: "
            "relaying refused, try later"
        )
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")  # hosted mail still flows
        await smtp.data(written_by("alice@example.com", "bob@example.com"), "250 2.0.0")
        await smtp.say("MAIL FROM:<alice@example.com>", "250 2.1.0")
    notices = await stored(hosted, "boss@example.com")
    assert len(notices) == 2
    assert b"Subject: Your plan Tiny: 100% of this month's data transfer used" in notices[1]


async def test_implicit_tls_submission_sends_and_traces_esmtpsa(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    async with submission.connect(implicit=True) as smtp:
        keywords = await smtp.ehlo()
        assert "STARTTLS" not in keywords and "AUTH PLAIN LOGIN" in keywords
        await smtp.say("MAIL FROM:<alice@example.com>", "530 5.7.0 Authentication required")
        await smtp.login("alice@example.com")
        line = await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
        await smtp.say("QUIT", "221 2.0.0 Bye")
    queued = QUEUED.fullmatch(line)
    assert queued is not None
    assert await hosted.worker.run_once() == 1
    (got,) = sink.received
    trace = got.data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ")
    assert re.search(
        rb"Received: from client\.test \(\[127\.0\.0\.1\]\) by mx\.example\.com with ESMTPSA id "
        rb"[0-9a-f]{8,16}-[0-9a-f]{16} for <zed@remote\.test>;",
        trace,
    )


async def test_a_recipient_named_twice_is_sent_once(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    async with submission.session("alice@example.com") as smtp:
        await smtp.send(
            "alice@example.com",
            ["zed@remote.test", "zed@REMOTE.test", "bob@example.com", "BOB@example.com"],
            MESSAGE,
            "250 2.0.0",
        )
    assert await hosted.worker.run_once() == 1
    assert [r.recipients for r in sink.received] == [["zed@remote.test"]]
    assert len(await stored(hosted, "bob@example.com")) == 1


async def test_bare_line_endings_are_never_relayed(submission: Submission, hosted: Runtime) -> None:
    async with submission.session("alice@example.com") as smtp:
        await smtp.say("MAIL FROM:<alice@example.com>", "250 2.1.0")
        await smtp.say("RCPT TO:<zed@remote.test>", "250 2.1.5")
        await smtp.say("DATA", "354 ")
        smtp.writer.write(b"From: alice@example.com\r\n\r\nfirst\n.\nMAIL FROM:<x@y.test>\r\n.\r\n")
        [line] = await smtp.reply()
        assert line == "550 5.5.2 bare CR or LF in message not allowed"
    assert await hosted.queue.queued(10) == []


class SniSMTP(smtplib.SMTP):
    """smtplib's client, asking for and checking mail.example.com (SNI) while connecting to
    127.0.0.1, as a mail client configured with "mail.example.com" would."""

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: object = None
    ) -> tuple[int, bytes]:
        reply = super().connect(host, port)
        self._host = SERVER_NAME
        return reply


@pytest.mark.parametrize(
    ("header", "authors"),
    [
        (b"From: Alice <alice@example.com>\r\nTo: x@y.test\r\n", ["alice@example.com"]),
        (
            b'From: "Smith, A" <a@example.com>,\r\n b@example.com\r\n',
            ["a@example.com", "b@example.com"],
        ),
        (b"Subject: none\r\n", None),
        (b"From: not an address\r\n", [""]),
        (b"From: a@example.com <eve@remote.test>\r\n", [""]),
        (b"From: <>\r\n", [""]),
        (b"from:a@example.com\r\nFROM : b@example.com\r\n", ["a@example.com", "b@example.com"]),
        (b"X-From: eve@remote.test\r\n Continued-From: eve@remote.test\r\n", None),
        (b"Sender: eve@remote.test\r\n", ["eve@remote.test"]),
        (
            b"resent-from: a@example.com\r\nResent-Sender:eve@remote.test\r\n",
            ["a@example.com", "eve@remote.test"],
        ),
        (b"X-Sender: eve@remote.test\r\nOriginal-Sender: b@example.com\r\n", None),
    ],
)
def test_author_addresses_are_read_from_the_header_only(
    header: bytes, authors: list[str] | None
) -> None:
    assert author_addresses(header + b"\r\nFrom: eve@remote.test\r\n") == authors


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_author_addresses_never_looks_past_the_header(header: bytes, body: bytes) -> None:
    header = header.replace(b"\r\n\r\n", b"\r\n")
    if header.startswith(b"\r\n"):
        return
    found = author_addresses(header + b"\r\n\r\n" + body)
    alone = author_addresses(header + b"\r\n\r\n")
    assert found == alone
    assert found is None or all(a == "" or "@" in a for a in found)


@given(st.text(alphabet='<>@"(),:;.=?\\ \tqa', max_size=40))
def test_author_addresses_survive_any_from_field(value: str) -> None:
    # The stdlib header parser crashes on some inputs (":;:", ".:"); those count as unparsable.
    found = author_addresses(f"From:{value}\r\n\r\n".encode())
    assert found is not None and all(a == "" or "@" in a for a in found)


async def _set_enabled(runtime: Runtime, level: str, enabled: bool) -> None:
    if level == "domain":
        await runtime.services.accounts.set_domain_enabled(OP, DOMAIN, enabled)
    else:
        await runtime.services.accounts.set_customer_enabled(OP, "acme", enabled)


@pytest.mark.parametrize("level", ["domain", "customer"])
async def test_queued_mail_of_a_disabled_tenant_is_held_and_goes_once_enabled(
    submission: Submission, hosted: Runtime, sink: Sink, level: str
) -> None:
    async with submission.session("alice@example.com") as smtp:
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
    await _set_enabled(hosted, level, False)
    assert await hosted.worker.run_once() == 0  # held: not even attempted
    (held,) = await hosted.queue.queued(10)
    assert (held.recipient, held.attempts) == ("zed@remote.test", 0)
    async with submission.connect(implicit=True) as smtp:
        await smtp.ehlo()
        await smtp.login("alice@example.com", expect="535 5.7.8 Authentication credentials invalid")
    await _set_enabled(hosted, level, True)
    assert await hosted.worker.run_once() == 1
    (got,) = sink.received
    assert got.recipients == ["zed@remote.test"] and got.data.endswith(MESSAGE)
    async with submission.session("alice@example.com", implicit=True):
        pass  # logs in again


async def test_mailhosts_own_mail_is_never_held(hosted: Runtime, sink: Sink) -> None:
    await _set_enabled(hosted, "customer", False)
    notice = b"From: postmaster@mx.example.com\r\nSubject: notice\r\n\r\nhi\r\n"
    await hosted.services.delivery.send(
        "postmaster@mx.example.com", [addr("zed@remote.test")], notice
    )
    assert await hosted.worker.run_once() == 1
    assert [got.recipients for got in sink.received] == [["zed@remote.test"]]


async def test_a_pending_domain_of_another_customer_is_relayed_never_stored(
    submission: Submission, hosted: Runtime, sink: Sink
) -> None:
    """mallory claims remote.test without proving it: mail to it still goes to its real MX."""
    accounts, users = hosted.services.accounts, hosted.services.users
    mallory = await accounts.add_customer(OP, "mallory", "Bulk Hosting", "m@evil.test", PW)
    squatter = CustomerActor(mallory.id, mallory.login)
    await accounts.add_domain(squatter, DomainName.parse("remote.test"), "mallory", PW)
    await users.add_user(squatter, addr("zed@remote.test"), PW)
    await users.add_mailbox(squatter, addr("zed@remote.test"), ByteSize.parse("100MB"))
    async with submission.session("nora@example.com") as smtp:
        await smtp.say("MAIL FROM:<nora@example.com>", "250 2.1.0")
        # Not hosted: nora, without an SMTP account, may not send there at all.
        assert await smtp.say("RCPT TO:<zed@remote.test>", "550") == (
            "550 5.7.1 nora@example.com has no SMTP account: relaying refused"
        )
    async with submission.session("alice@example.com") as smtp:
        await smtp.send("alice@example.com", ["zed@remote.test"], MESSAGE, "250 2.0.0")
    assert await hosted.worker.run_once() == 1
    (got,) = sink.received
    assert got.recipients == ["zed@remote.test"]
    (box,) = await users.mailboxes(OP, DomainName.parse("remote.test"))
    assert await hosted.store.list(box.ref) == []
    async with submission.connect(implicit=True) as smtp:
        await smtp.ehlo()
        # The squatter's own user cannot log in either: nothing to send as, nothing to read.
        await smtp.login("zed@remote.test", expect="535 5.7.8 Authentication credentials invalid")


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
async def test_starttls_inside_tls_is_503_and_the_session_goes_on(
    submission: Submission, implicit: bool
) -> None:
    # RFC 3207 §4.2: TLS is negotiated once; a second STARTTLS, or one on the
    # implicit-TLS port, must not start TLS within TLS.
    async with submission.session("alice@example.com", implicit=implicit) as smtp:
        await smtp.say("STARTTLS", "503 5.5.1 TLS already active")
        await smtp.say("NOOP", "250 2.0.0")
        await smtp.say("QUIT", "221 2.0.0")
