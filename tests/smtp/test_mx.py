"""The MX on 127.0.0.1 with the real services, database and Maildir, driven over SMTP.

Most tests talk to the server with a small dialogue helper on asyncio streams, so
they can send raw bytes (pipelined commands, bare LFs) and read every reply; one
uses Python's smtplib to show a stock client is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import smtplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import MailboxRecord
from mailhost.runtime import Runtime
from mailhost.smtp.headers import first_bare_line_ending
from mailhost.smtp.listeners import EsmtpProtocol, start_mx_server
from mailhost.smtp.session import SessionDependencies, sender_syntax_ok
from mailhost.tls.authority import CertificateAuthority
from mailhost.tls.contexts import CertificateStore, client_context
from tests.quotas import add_small_mailbox
from tests.smtp.dialogue import Dialogue, stuffed

OP = ProviderActor("test")
PW = "correct horse battery"
HOSTNAME = "mx.example.test"
DOMAIN = DomainName.parse("example.com")
BOB = EmailAddress.hosted("bob@example.com")
CAROL = EmailAddress.hosted("carol@example.com")  # 1000 bytes of room
NOBOX = EmailAddress.hosted("nobox@example.com")  # a user without a mailbox
MAX_SIZE = 10_000
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as (?P<id>[0-9a-f]{8,16}-[0-9a-f]{16})")
MESSAGE = (
    b"From: Alice <alice@remote.test>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".a line that starts with a dot\r\n"
    b"caf\xc3\xa9 in 8 bits\r\n"
)


@dataclass
class Mx:
    port: int

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Dialogue]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        smtp = Dialogue(reader, writer, HOSTNAME)
        try:
            await smtp.greeting()
            yield smtp
        finally:
            await smtp.close()


StartMx = Callable[..., Awaitable[Mx]]


@pytest.fixture
async def hosted(runtime: Runtime) -> Runtime:
    """example.com with bob (mailbox), carol (mailbox with 1000 bytes of room) and nobox
    (no mailbox)."""
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "acme@contact.test", PW)
    await accounts.add_domain(OP, DOMAIN, "acme", PW)
    for user in (BOB, CAROL, NOBOX):
        await users.add_user(OP, user, PW)
    await users.add_mailbox(OP, BOB, ByteSize.parse("100MB"))
    await add_small_mailbox(runtime, CAROL, room=1000)
    return runtime


@pytest.fixture
async def start_mx(hosted: Runtime) -> AsyncIterator[StartMx]:
    servers: list[asyncio.Server] = []

    async def start(
        *,
        max_message_size: int = MAX_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = 30.0,
    ) -> Mx:
        deps = SessionDependencies(
            service="MX",
            policy=hosted.services.inbound,
            delivery=hosted.services.delivery,
            hostname=HOSTNAME,
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            idle_timeout=idle_timeout,
        )
        server = await start_mx_server("127.0.0.1", 0, deps)
        servers.append(server)
        return Mx(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def mailbox_of(runtime: Runtime, address: EmailAddress) -> MailboxRecord:
    mailboxes = await runtime.services.users.mailboxes(OP, DOMAIN)
    return next(m for m in mailboxes if m.address == address)


async def stored(runtime: Runtime, address: EmailAddress) -> list[bytes]:
    """The messages in the mailbox, in arrival order, as bytes on disk."""
    ref = (await mailbox_of(runtime, address)).ref
    return [
        b"".join([chunk async for chunk in runtime.store.read(ref, message.uid)])
        for message in await runtime.store.list(ref)
    ]


def split_trace(message: bytes, content: bytes) -> str:
    """The Received header the MX put before `content`, unfolded, after the final
    delivery's Return-Path: and Delivered-To: (RFC 5321 §4.4)."""
    assert message.endswith(content)
    header = message[: -len(content)]
    final = re.match(rb"Return-Path: <[^>\r\n]*>\r\nDelivered-To: [^\r\n]+\r\n", header)
    assert final is not None, header
    header = header[final.end() :]
    assert header.startswith(b"Received: ") and header.endswith(b"\r\n")
    assert first_bare_line_ending(header) is None
    return header.decode("ascii").removesuffix("\r\n").replace("\r\n\t", " ")


def trace_pattern(helo: str, protocol: str, queue_id: str, rcpt: str | None) -> str:
    date = r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000"
    for_clause = "" if rcpt is None else f" for <{re.escape(rcpt)}>"
    return (
        rf"Received: from {re.escape(helo)} \(\[127\.0\.0\.1\]\) by {re.escape(HOSTNAME)}"
        rf" with {protocol} id {queue_id}{for_clause}; {date}"
    )


async def test_smtplib_message_lands_byte_exact_after_a_received_header(
    start_mx: StartMx, hosted: Runtime
) -> None:
    mx = await start_mx()

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", mx.port, local_hostname="client.test", timeout=10) as c:
            c.ehlo()
            c.mail("alice@remote.test", ["BODY=8BITMIME", "SIZE=300"])
            c.rcpt("bob@example.com")
            return c.data(MESSAGE)

    code, text = await asyncio.to_thread(send)
    match = QUEUED.fullmatch(f"{code} {text.decode()}")
    assert match is not None, (code, text)
    [message] = await stored(hosted, BOB)
    trace = split_trace(message, MESSAGE)
    assert re.fullmatch(trace_pattern("client.test", "ESMTP", match["id"], str(BOB)), trace)
    bob = await mailbox_of(hosted, BOB)
    assert bob.used_bytes == len(message)


async def test_null_sender_and_helo_are_accepted(start_mx: StartMx, hosted: Runtime) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        assert await smtp.say("HELO old.client.test", "250 ") == f"250 {HOSTNAME}"
        await smtp.say("MAIL FROM:<>", "250 2.1.0 Ok")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5 Ok")
        queued = QUEUED.fullmatch(await smtp.data(MESSAGE, "250 2.0.0"))
        await smtp.say("QUIT", "221 2.0.0 Bye")
    assert queued is not None
    [message] = await stored(hosted, BOB)
    assert re.fullmatch(
        trace_pattern("old.client.test", "SMTP", queued["id"], str(BOB)),
        split_trace(message, MESSAGE),
    )


async def test_unknown_user_and_user_without_mailbox_get_550_5_1_1(start_mx: StartMx) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        assert await smtp.say("RCPT TO:<nobody@example.com>", "550") == (
            "550 5.1.1 <nobody@example.com>: no such user here"
        )
        assert await smtp.say("RCPT TO:<nobox@example.com>", "550") == (
            "550 5.1.1 <nobox@example.com>: no mailbox here"
        )


async def test_non_hosted_domain_is_refused_as_relay(start_mx: StartMx) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        assert await smtp.say("RCPT TO:<carol@elsewhere.test>", "554") == (
            "554 5.7.1 <carol@elsewhere.test>: relay access denied"
        )
        # RFC 5321 §3.3: DATA after every RCPT was refused.
        await smtp.say("DATA", "554 5.5.1 no valid recipients")
        await smtp.say("NOOP", "250 2.0.0 Ok")


async def test_oversized_messages_get_552_5_3_4(start_mx: StartMx, hosted: Runtime) -> None:
    mx = await start_mx(max_message_size=2000)
    too_big = MESSAGE + (b"y" * 98 + b"\r\n") * 25
    async with mx.connect() as smtp:
        assert "SIZE 2000" in await smtp.ehlo()
        await smtp.say(
            "MAIL FROM:<alice@remote.test> SIZE=2001", "552 5.3.4 message size exceeds fixed limit"
        )
        await smtp.say("MAIL FROM:<alice@remote.test> SIZE=2000", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await smtp.data(too_big, "552 5.3.4 message size exceeds fixed limit")
        await smtp.say("NOOP", "250 2.0.0 Ok")
    assert await stored(hosted, BOB) == []


async def test_quota_refuses_at_data_then_at_rcpt(start_mx: StartMx, hosted: Runtime) -> None:
    mx = await start_mx()
    content = MESSAGE + b"z" * 300 + b"\r\n"
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<carol@example.com>", "250 2.1.5")
        await smtp.data(content, "250 2.0.0")
        # ~620 of the 1000 bytes taken: the next copy would not fit.
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<carol@example.com>", "250 2.1.5")
        await smtp.data(
            content, "552 5.2.2 <carol@example.com>: message would exceed the mailbox quota"
        )
        # Fill the mailbox to exactly its quota: no room left, so RCPT is refused.
        carol = await mailbox_of(hosted, CAROL)
        assert carol.quota is not None
        room = carol.quota.bytes - carol.used_bytes
        await hosted.services.delivery.deliver_local([carol], b"x" * room)
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<carol@example.com>", "552 5.2.2 <carol@example.com>: mailbox full")
    assert len(await stored(hosted, CAROL)) == 2


SMUGGLED = b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nsmuggled\r\n"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r.\r\n"])
async def test_bare_line_endings_are_refused_and_smuggle_nothing(
    start_mx: StartMx, hosted: Runtime, fake_end: bytes
) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await smtp.say("DATA", "354 ")
        smtp.writer.write(b"Subject: s\r\n\r\nfirst" + fake_end + SMUGGLED + b".\r\n" + b"QUIT\r\n")
        # Exactly one reply to the whole DATA, then QUIT's: the fake end ended nothing.
        assert await smtp.rest() == [
            "550 5.5.2 bare CR or LF in message not allowed",
            "221 2.0.0 Bye",
        ]
    assert await stored(hosted, BOB) == []


async def test_starttls_with_the_local_ca(
    start_mx: StartMx, hosted: Runtime, tmp_path: Path
) -> None:
    authority = await asyncio.to_thread(CertificateAuthority.load_or_create, tmp_path / "ca")
    await asyncio.to_thread(authority.issue, [HOSTNAME], tmp_path / "certs")
    certificates = CertificateStore(tmp_path / "certs", HOSTNAME)
    mx = await start_mx(ssl_context=await asyncio.to_thread(certificates.server_context))
    async with mx.connect() as smtp:
        assert await smtp.ehlo() == [
            "PIPELINING",
            "SIZE 10000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "STARTTLS",
        ]
        await smtp.say("STARTTLS", "220 2.0.0 Ready to start TLS")
        await smtp.writer.start_tls(client_context(authority.ca_path), server_hostname=HOSTNAME)
        tls = smtp.writer.get_extra_info("ssl_object")
        assert isinstance(tls, ssl.SSLObject) and tls.version() in ("TLSv1.2", "TLSv1.3")
        # RFC 3207 §4.2: the session starts over; STARTTLS is not offered twice, AUTH never.
        await smtp.say("MAIL FROM:<alice@remote.test>", "503 5.5.1")
        assert await smtp.ehlo("tls.client.test") == [
            "PIPELINING",
            "SIZE 10000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ]
        await smtp.say("STARTTLS", "503 5.5.1 TLS already active")  # never TLS in TLS
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        queued = QUEUED.fullmatch(await smtp.data(MESSAGE, "250 2.0.0"))
        await smtp.say("QUIT", "221 2.0.0")
    assert queued is not None
    [message] = await stored(hosted, BOB)
    assert re.fullmatch(
        trace_pattern("tls.client.test", "ESMTPS", queued["id"], str(BOB)),
        split_trace(message, MESSAGE),
    )


async def test_starttls_serves_the_domain_certificate_by_sni(
    start_mx: StartMx, hosted: Runtime
) -> None:
    # add_domain issued mail.example.com; the default certificate is for another name.
    await hosted.prepare_tls()
    assert hosted.settings.server.hostname != DOMAIN.mail_host
    mx = await start_mx(ssl_context=await asyncio.to_thread(hosted.certificates.server_context))
    trust = client_context(hosted.settings.tls.ca_dir / "ca.pem")
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("STARTTLS", "220 2.0.0")
        await smtp.writer.start_tls(trust, server_hostname=DOMAIN.mail_host)
        tls = smtp.writer.get_extra_info("ssl_object")
        assert isinstance(tls, ssl.SSLObject)
        certificate = tls.getpeercert()
        assert certificate is not None
        assert certificate["subjectAltName"] == (("DNS", "mail.example.com"),)
        await smtp.ehlo()
        await smtp.say("QUIT", "221 2.0.0")


async def test_plaintext_pipelined_behind_starttls_is_discarded(
    start_mx: StartMx, tmp_path: Path
) -> None:
    # RFC 3207 §4.2 (the CVE-2011-0411 injection): commands sent in the clear behind
    # STARTTLS must not be executed inside the TLS session.
    authority = await asyncio.to_thread(CertificateAuthority.load_or_create, tmp_path / "ca")
    await asyncio.to_thread(authority.issue, [HOSTNAME], tmp_path / "certs")
    certificates = CertificateStore(tmp_path / "certs", HOSTNAME)
    mx = await start_mx(ssl_context=await asyncio.to_thread(certificates.server_context))
    async with mx.connect() as smtp:
        await smtp.ehlo()
        smtp.writer.write(b"STARTTLS\r\nNOOP injected\r\n")
        assert await smtp.reply() == ["220 2.0.0 Ready to start TLS"]
        await smtp.writer.start_tls(client_context(authority.ca_path), server_hostname=HOSTNAME)
        # The first reply inside TLS answers our EHLO, not the injected NOOP.
        assert "STARTTLS" not in await smtp.ehlo()
        await smtp.say("QUIT", "221 2.0.0")


async def test_ehlo_without_tls_offers_no_starttls_and_no_auth(start_mx: StartMx) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        assert await smtp.ehlo() == [
            "PIPELINING",
            "SIZE 10000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ]
        await smtp.say("AUTH PLAIN AGJvYgBzZWNyZXQ=", "502 5.5.1 AUTH is not offered here")
        await smtp.say("STARTTLS", "454 4.7.0 TLS not available")
        await smtp.say("VRFY bob@example.com", "252 2.0.0")
        await smtp.say("HELP", "214 2.0.0")


async def test_pipelined_commands_are_answered_in_order(start_mx: StartMx, hosted: Runtime) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        smtp.writer.write(
            b"MAIL FROM:<alice@remote.test>\r\n"
            b"RCPT TO:<nobody@example.com>\r\n"
            b"RCPT TO:<bob@example.com>\r\n"
            b"RCPT TO:<BOB@Example.COM>\r\n"
            b"DATA\r\n"
        )
        replies = [(await smtp.reply())[0][:9] for _ in range(5)]
        assert replies == ["250 2.1.0", "550 5.1.1", "250 2.1.5", "250 2.1.5", "354 End d"]
        smtp.writer.write(stuffed(MESSAGE) + b".\r\n")
        assert (await smtp.reply())[0].startswith("250 2.0.0 Ok: queued as ")
    # Two RCPTs for one mailbox make one copy, without a `for` clause (two recipients).
    [message] = await stored(hosted, BOB)
    assert " for <" not in split_trace(message, MESSAGE)


async def test_the_hundred_and_first_recipient_gets_452_4_5_3(
    start_mx: StartMx, hosted: Runtime
) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        smtp.writer.write(b"RCPT TO:<bob@example.com>\r\n" * 101)
        replies = [(await smtp.reply())[0] for _ in range(101)]
        assert replies == ["250 2.1.5 Ok"] * 100 + ["452 4.5.3 too many recipients"]
        await smtp.data(MESSAGE, "250 2.0.0")
    assert len(await stored(hosted, BOB)) == 1


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("MAIL FROM:<ab>", "501 5.1.7 bad sender address syntax"),
        ("MAIL FROM:<a@>", "501 5.1.7 bad sender address syntax"),
        ("MAIL FROM:<a@-b.test>", "501 5.1.7 bad sender address syntax"),
        ("MAIL FROM:<a@b.test> SIZE", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL FROM:<a@b.test> FOO=1", "555 5.5.4 parameters not recognized"),
        ("RCPT TO:<bob@example.com>", "503 5.5.1 Error: need MAIL command"),
        ("DATA", "554 5.5.1 no valid recipients"),
        ("EXPN staff", "502 5.5.1 EXPN not implemented"),
        ("FROBNICATE", "500 5.5.1 Error: command not recognized"),
        ("NOOP " + "x" * 600, "500 5.5.2 Error: command line too long"),
    ],
)
async def test_protocol_errors_carry_enhanced_codes(
    start_mx: StartMx, command: str, reply: str
) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.say("MAIL FROM:<a@b.test>", "503 5.5.1 Error: send HELO/EHLO first")
        await smtp.ehlo()
        await smtp.say(command, reply)
        await smtp.say("NOOP", "250 2.0.0 Ok")


async def test_recipient_syntax_errors_get_501_5_1_3(start_mx: StartMx) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("MAIL FROM:<alice@remote.test>", "503 5.5.1 Error: nested MAIL command")
        await smtp.say("RCPT TO:<a@>", "501 5.1.3 bad recipient address syntax")
        await smtp.say('RCPT TO:<"a b"@example.com>', "501 5.1.3 bad recipient address syntax")
        await smtp.say("RCPT TO:<bob@example.com> NOTIFY=NEVER", "555 5.5.4")


@pytest.mark.parametrize("greeting", ["EHLO", "HELO"])
async def test_command_lines_are_limited_to_512_octets(start_mx: StartMx, greeting: str) -> None:
    mx = await start_mx()
    async with mx.connect() as smtp:
        if greeting == "EHLO":
            await smtp.ehlo()
        else:
            await smtp.say("HELO client.test", "250 ")
        await smtp.say("NOOP " + "x" * 505, "250 2.0.0 Ok")  # 510 + CRLF = 512
        await smtp.say("NOOP " + "x" * 506, "500 5.5.2 Error: command line too long")


async def test_text_lines_are_limited_to_998_octets(start_mx: StartMx, hosted: Runtime) -> None:
    mx = await start_mx()
    longest = b"Subject: x\r\n\r\n." + b"x" * 997 + b"\r\n"  # 998 + CRLF, dot-stuffed to 1001
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await smtp.data(b"Subject: x\r\n\r\n" + b"x" * 1500 + b"\r\n", "500 5.6.0")
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await smtp.data(longest, "250 2.0.0")
    [message] = await stored(hosted, BOB)
    assert message.endswith(longest)


async def test_idle_client_is_told_and_disconnected(start_mx: StartMx) -> None:
    mx = await start_mx(idle_timeout=0.3)
    async with mx.connect() as smtp:
        await smtp.ehlo()
        assert await smtp.rest() == [f"421 4.4.2 {HOSTNAME} Error: timeout exceeded"]


async def test_storage_failure_is_451_with_a_logged_reference(
    start_mx: StartMx, hosted: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    root = hosted.store.root
    assert not root.exists()
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_bytes(b"not a directory")
    mx = await start_mx()
    async with mx.connect() as smtp:
        await smtp.ehlo()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        with caplog.at_level(logging.ERROR, logger="mailhost.smtp"):
            line = await smtp.data(MESSAGE, "451 4.3.0 temporary failure, try again later (ref ")
        ref = line.removesuffix(")").rsplit(" ", 1)[1]
        [record] = [r for r in caplog.records if ref in r.getMessage()]
        assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)
        # The client retries in the same session once the disk is back.
        root.unlink()
        await smtp.say("MAIL FROM:<alice@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<bob@example.com>", "250 2.1.5")
        await smtp.data(MESSAGE, "250 2.0.0")
    [message] = await stored(hosted, BOB)
    # The failed copy gave back the bytes counted for it while it was being written.
    assert (await mailbox_of(hosted, BOB)).used_bytes == len(message)


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("<>", True),
        ("alice@remote.test", True),
        ('"alice smith"@remote.test', True),
        ("bounce+x=y@mail_relay.remote.test", True),
        ("alice@[192.0.2.1]", True),
        ("alice@remote.test.", True),
        ("alice", False),
        ("@remote.test", False),
        ("alice@", False),
        ("alice@-remote.test", False),
        ("alice@remote..test", False),
        ('al"ice@remote.test', False),
        ("a" * 250 + "@remote.test", False),
    ],
)
def test_sender_syntax_is_checked_loosely(path: str, ok: bool) -> None:
    assert sender_syntax_ok(path) is ok


@given(st.text(alphabet='a-._@[]"1\\ ', max_size=300))
def test_accepted_senders_have_a_local_part_and_a_plausible_domain(path: str) -> None:
    if path == "<>" or not sender_syntax_ok(path):
        return
    local, _, domain = path.rpartition("@")
    assert local and domain and len(path) <= 254
    assert " " not in domain and ".." not in domain and not domain.startswith((".", "-"))


_ATEXT = st.text("abcXYZ019.!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=12)
_AFTER = st.text(' \t()=SIZE1bx"\\', max_size=12)


@given(
    arg=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda local, domain, rest: f"<{local}@{domain}>{rest}",
            st.text(max_size=20),
            st.text(max_size=20),
            st.sampled_from(["", " SIZE=100", " BODY=8BITMIME", "x"]),
        ),
        st.builds(  # the plain shape of the fast path, and its near misses
            lambda lead, local, domain, rest: f"{lead}<{local}@{domain}>{rest}",
            st.sampled_from(["", " "]),
            _ATEXT,
            _ATEXT,
            st.one_of(_AFTER, st.sampled_from([" SIZE=100", "  BODY=8BITMIME ", "\tX=1"])),
        ),
    ),
    limit=st.sampled_from([0, 3, 64]),
)
@settings(max_examples=500)
def test_address_parsing_is_aiosmtpds_own(arg: str, limit: int) -> None:
    # listeners.EsmtpProtocol._getaddr is aiosmtpd's, faster; same answers, same errors.
    holder = SimpleNamespace(local_part_limit=limit)

    def outcome(parse: Callable[[object, str], object]) -> object:
        try:
            return parse(holder, arg)
        except Exception as error:  # the email parser's IndexError on "<", say
            return type(error)

    assert outcome(EsmtpProtocol._getaddr) == outcome(SMTP._getaddr)
