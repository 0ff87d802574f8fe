"""SMTPUTF8 (RFC 6531) end to end: offered on the MX and on submission, UTF-8 addresses
taken only with it, stored as they came, relayed only where the next hop offers it.

Real servers on 127.0.0.1, the real database and Maildir, and the real delivery
worker sending to two aiosmtpd sinks: remote.test offers SMTPUTF8, old.test does not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from mailhost.smtp.listeners import start_mx_server, start_submission_server
from mailhost.smtp.session import SessionDependencies
from mailhost.tls.contexts import client_context
from tests.outbound.conftest import Sink, start_sink
from tests.smtp.dialogue import Dialogue

OP = ProviderActor("test")
PW = "correct horse battery"
HOSTNAME = "mx.example.com"
EXAMPLE = DomainName.parse("example.com")
BUECHER = DomainName.parse("bücher.example")  # hosted as xn--bcher-kva.example
NEEDS_SMTPUTF8 = "553 5.6.7 non-ASCII address requires SMTPUTF8"
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as (?P<id>\S+)")
# RFC 6532: UTF-8 header fields, which only an SMTPUTF8 transaction may carry.
LETTER = (
    "From: Jörg <jörg@absender.example>\r\n"
    "To: Bob <bob@bücher.example>, Zoë <zoë@remote.test>\r\n"
    "Subject: Grüße\r\n"
    "\r\n"
    "Hallo, café in 8 bits.\r\n"
).encode()
# The same from alice, whom submission lets write only as herself.
SUBMITTED = LETTER.replace(
    "Jörg <jörg@absender.example>".encode(), "Älice <alice@example.com>".encode()
)


@dataclass
class Servers:
    mx: int
    submission: int  # 465-style: TLS from the first byte
    trust: ssl.SSLContext


@pytest.fixture
async def utf8_sink() -> AsyncIterator[Sink]:
    started, server = await start_sink(None, smtputf8=True)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
async def old_sink() -> AsyncIterator[Sink]:
    started, server = await start_sink(None)  # 8BITMIME, but no SMTPUTF8
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
def settings(data_dir: Path, database_url: str, utf8_sink: Sink, old_sink: Sink) -> Settings:
    routes = f"remote.test=127.0.0.1:{utf8_sink.port},old.test=127.0.0.1:{old_sink.port}"
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_DELIVERY_ROUTES": routes,
    }
    return load_settings(None, data_dir, environ)


@pytest.fixture
async def hosted(runtime: Runtime) -> Runtime:
    """Customer acme: example.com with alice (mailbox, SMTP account that relays) and
    bücher.example with bob (mailbox)."""
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "alice@example.com", PW)
    for domain in (EXAMPLE, BUECHER):
        await accounts.add_domain(OP, domain, "acme", PW)
    alice, bob = EmailAddress.hosted("alice@example.com"), EmailAddress.hosted("bob@bücher.example")
    for user in (alice, bob):
        await users.add_user(OP, user, PW)
        await users.add_mailbox(OP, user, ByteSize.parse("100MB"))
    await users.add_smtp_account(OP, alice, SmtpFacilities())
    await runtime.prepare_tls()
    return runtime


@pytest.fixture
async def servers(hosted: Runtime) -> AsyncIterator[Servers]:
    def deps(service: str, submission: bool) -> SessionDependencies:
        return SessionDependencies(
            service=service,
            policy=hosted.submission if submission else hosted.services.inbound,
            authenticator=hosted.services.authentication if submission else None,
            delivery=hosted.services.delivery,
            hostname=HOSTNAME,
            ssl_context=context if submission else None,
            max_message_size=50_000,
            idle_timeout=30.0,
        )

    context = await asyncio.to_thread(hosted.certificates.server_context)
    started = [
        await start_mx_server("127.0.0.1", 0, deps("MX", False)),
        await start_submission_server("127.0.0.1", 0, deps("submission", True), implicit_tls=True),
    ]
    mx, submission = (server.sockets[0].getsockname()[1] for server in started)
    yield Servers(mx, submission, client_context(hosted.settings.tls.ca_dir / "ca.pem"))
    for server in started:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def connect(port: int, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Dialogue]:
    if tls is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    else:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname=EXAMPLE.mail_host
        )
    smtp = Dialogue(reader, writer, HOSTNAME)
    try:
        await smtp.greeting()
        yield smtp
    finally:
        await smtp.close()


async def say(smtp: Dialogue, command: str | bytes, expect: str) -> str:
    """`Dialogue.say` for UTF-8 commands, or raw bytes that are not UTF-8 at all."""
    smtp.writer.write((command if isinstance(command, bytes) else command.encode()) + b"\r\n")
    [line] = await smtp.reply()
    assert line.startswith(expect), f"{command!r}: expected {expect!r}, got {line!r}"
    return line


async def stored(runtime: Runtime, domain: DomainName, address: str) -> list[bytes]:
    boxes = await runtime.services.users.mailboxes(OP, domain)
    ref = next(box.ref for box in boxes if str(box.address) == address)
    contents: list[bytes] = []
    for message in await runtime.store.list(ref):
        async with aclosing(runtime.store.read(ref, message.uid)) as stream:
            contents.append(b"".join([chunk async for chunk in stream]))
    return contents


def trace(message: bytes, content: bytes) -> str:
    """Return-Path, Delivered-To and Received, unfolded, as UTF-8 text."""
    assert message.endswith(content)
    return message[: -len(content)].decode().replace("\r\n\t", " ")


async def test_mx_takes_utf8_addresses_with_smtputf8_and_stores_them_as_they_came(
    servers: Servers, hosted: Runtime
) -> None:
    async with connect(servers.mx) as smtp:
        assert "SMTPUTF8" in await smtp.ehlo()
        await say(smtp, "MAIL FROM:<jörg@absender.example> SMTPUTF8 BODY=8BITMIME", "250 2.1.0")
        # A U-label domain names the hosted A-label domain (RFC 5890).
        await say(smtp, "RCPT TO:<bob@bücher.example>", "250 2.1.5")
        queued = QUEUED.fullmatch(await smtp.data(LETTER, "250 2.0.0"))
    assert queued is not None
    [message] = await stored(hosted, BUECHER, "bob@xn--bcher-kva.example")
    assert re.fullmatch(
        r"Return-Path: <jörg@absender\.example>\r\n"
        r"Delivered-To: bob@xn--bcher-kva\.example\r\n"
        rf"Received: from client\.test \(\[127\.0\.0\.1\]\) by mx\.example\.com"
        rf" with UTF8SMTP id {queued['id']} for <bob@xn--bcher-kva\.example>; [^\r\n]+\r\n",
        trace(message, LETTER),
    )


async def test_mx_refuses_non_ascii_addresses_without_smtputf8_with_553_5_6_7(
    servers: Servers, hosted: Runtime
) -> None:
    async with connect(servers.mx) as smtp:
        await smtp.ehlo()
        assert await say(smtp, "MAIL FROM:<jörg@absender.example>", "553") == NEEDS_SMTPUTF8
        assert await say(smtp, "MAIL FROM:<alice@bücher.example>", "553") == NEEDS_SMTPUTF8
        await say(smtp, "MAIL FROM:<alice@remote.test>", "250 2.1.0")
        assert await say(smtp, "RCPT TO:<bob@bücher.example>", "553") == NEEDS_SMTPUTF8
        await say(smtp, "RCPT TO:<bob@xn--bcher-kva.example>", "250 2.1.5")  # the A-label is ASCII
        content = b"Subject: plain\r\n\r\nhi\r\n"
        await smtp.data(content, "250 2.0.0")
    [message] = await stored(hosted, BUECHER, "bob@xn--bcher-kva.example")
    assert " with ESMTP id " in trace(message, content)
    async with connect(servers.mx) as smtp:
        await smtp.say("HELO old.client.test", "250 ")  # no EHLO, no MAIL parameters
        await smtp.say("MAIL FROM:<alice@remote.test> SMTPUTF8", "501 5.5.4 Syntax: MAIL FROM:")


async def test_mx_utf8_syntax_is_checked_in_octets_and_unknown_users_are_550(
    servers: Servers,
) -> None:
    async with connect(servers.mx) as smtp:
        await smtp.ehlo()
        # Bytes that are not UTF-8 are no address, SMTPUTF8 or not.
        await say(smtp, b"MAIL FROM:<\xffrg@absender.example> SMTPUTF8", "501 5.1.7")
        await say(smtp, "MAIL FROM:<jörg@absender.example> SMTPUTF8=YES", "501 5.5.4 Syntax: SMTP")
        await say(smtp, "MAIL FROM:<jörg@absender.example> SMTPUTF8", "250 2.1.0")
        await say(smtp, b"RCPT TO:<b\xffb@xn--bcher-kva.example>", "501 5.1.3")
        # RFC 5321 §4.5.3.1.1 counts octets: 33 two-octet letters are too many.
        await say(smtp, f"RCPT TO:<{'é' * 33}@bücher.example>", "501 5.1.3")
        # Hosted users have ASCII names; the reply stays ASCII.
        assert await say(smtp, "RCPT TO:<jörg@bücher.example>", "550") == (
            "550 5.1.1 <j?rg@xn--bcher-kva.example>: no such user here"
        )
        assert await say(smtp, "RCPT TO:<zoë@remote.test>", "554") == (
            "554 5.7.1 <zo?@remote.test>: relay access denied"
        )


async def test_submission_relays_utf8_only_where_the_next_hop_offers_smtputf8(
    servers: Servers, hosted: Runtime, utf8_sink: Sink, old_sink: Sink
) -> None:
    async with connect(servers.submission, tls=servers.trust) as smtp:
        keywords = await smtp.ehlo()
        assert "SMTPUTF8" in keywords and "AUTH PLAIN LOGIN" in keywords
        token = base64.b64encode(f"\0alice@example.com\0{PW}".encode()).decode()
        await smtp.say(f"AUTH PLAIN {token}", "235 2.7.0")
        await say(smtp, "MAIL FROM:<alice@example.com>", "250 2.1.0")
        assert await say(smtp, "RCPT TO:<zoë@remote.test>", "553") == NEEDS_SMTPUTF8
        await say(smtp, "RSET", "250 2.0.0")
        await say(smtp, "MAIL FROM:<alice@example.com> SMTPUTF8", "250 2.1.0")
        await say(smtp, "RCPT TO:<zoë@remote.test>", "250 2.1.5")
        await say(smtp, "RCPT TO:<bob@bücher.example>", "250 2.1.5")
        await smtp.data(SUBMITTED, "250 2.0.0")
        await say(smtp, "MAIL FROM:<alice@example.com> SMTPUTF8", "250 2.1.0")
        await say(smtp, "RCPT TO:<zoë@old.test>", "250 2.1.5")
        await smtp.data(SUBMITTED, "250 2.0.0")
    [copy] = await stored(hosted, BUECHER, "bob@xn--bcher-kva.example")
    assert " with UTF8SMTPSA id " in trace(copy, SUBMITTED)
    assert await hosted.worker.run_once() == 2
    (got,) = utf8_sink.received
    assert (got.sender, got.recipients) == ("alice@example.com", ["zoë@remote.test"])
    assert sorted(got.options) == ["BODY=8BITMIME", "SMTPUTF8"]
    assert got.data.endswith(SUBMITTED)
    # RFC 6531 §3.2: not downgraded, bounced, with the reason in the DSN.
    assert old_sink.received == []
    [dsn] = await stored(hosted, EXAMPLE, "alice@example.com")
    assert b"Status: 5.6.7" in dsn
    assert b"553 5.6.7 127.0.0.1 does not support SMTPUTF8, which this message needs" in dsn
