"""A sink SMTP server on 127.0.0.1 (aiosmtpd, not our code) and settings that route to it.

Every recipient domain a test uses is a static route to a sink or a closed
port, so the worker never asks real DNS and never leaves the loopback.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, LoginPassword, Session

from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from mailhost.tls.authority import CertificateAuthority

OP = ProviderActor("test")
PW = "correct horse battery"


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    tls: bool
    options: tuple[str, ...] = ()  # the MAIL FROM parameters (BODY=8BITMIME, SMTPUTF8)


@dataclass
class SinkHandler:
    """Scripted replies: per-recipient RCPT replies, and DATA replies used up in order."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    mail_reply: str | None = None
    received: list[Received] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            self.logins.append(session.auth_data.login)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        content = envelope.original_content
        assert isinstance(content, bytes)
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                content,
                session.ssl is not None,
                tuple(envelope.mail_options),
            )
        )
        return "250 2.0.0 accepted by sink"


@dataclass
class Sink:
    port: int
    handler: SinkHandler
    connections: int = 0

    @property
    def received(self) -> list[Received]:
        return self.handler.received


async def start_sink(
    tls: ssl.SSLContext | None,
    *,
    require_tls: bool = True,
    smtputf8: bool = False,
    eight_bit: bool = True,
) -> tuple[Sink, asyncio.Server]:
    """`smtputf8`: offer SMTPUTF8 (RFC 6531); `eight_bit=False`: do not offer 8BITMIME
    (aiosmtpd then decodes the data, as UTF-8: it takes 8-bit bytes all the same)."""
    handler = SinkHandler()
    sink = Sink(0, handler)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        sink.connections += 1
        return SMTP(
            handler,
            hostname="sink.test",
            decode_data=not eight_bit,
            enable_SMTPUTF8=smtputf8 or not eight_bit,
            tls_context=tls,
            require_starttls=tls is not None and require_tls,
            loop=loop,
        )

    server = await loop.create_server(protocol, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    return sink, server


@pytest.fixture
def sink_tls(tmp_path: Path) -> ssl.SSLContext:
    authority = CertificateAuthority.load_or_create(tmp_path / "sink-ca")
    files = authority.issue(["sink.test"], tmp_path / "sink-certs")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    return context


@pytest.fixture
async def sink(sink_tls: ssl.SSLContext) -> AsyncIterator[Sink]:
    """Offers STARTTLS and requires it: mail reaching it went over TLS."""
    started, server = await start_sink(sink_tls)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
async def plain_sink() -> AsyncIterator[Sink]:
    """No STARTTLS at all: opportunistic TLS must still deliver in the clear."""
    started, server = await start_sink(None)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
async def broken_tls_sink(tmp_path: Path, sink_tls: ssl.SSLContext) -> AsyncIterator[Sink]:
    """Offers STARTTLS but fails every handshake (it wants a client certificate nobody has)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    files = CertificateAuthority.load_or_create(tmp_path / "sink-ca").issue(
        ["sink.test"], tmp_path / "sink-certs"
    )
    context.load_cert_chain(files.cert, files.key)
    context.load_verify_locations(tmp_path / "sink-ca" / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    started, server = await start_sink(context, require_tls=False)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings(
    data_dir: Path,
    database_url: str,
    sink: Sink,
    plain_sink: Sink,
    broken_tls_sink: Sink,
    closed_port: int,
) -> Settings:
    routes = {
        "remote.test": f"127.0.0.1:{sink.port}",
        "far.test": f"127.0.0.1:{sink.port}",
        "plain.test": f"127.0.0.1:{plain_sink.port}",
        "brokentls.test": f"127.0.0.1:{broken_tls_sink.port}",
        "down.test": f"127.0.0.1:{closed_port}",
    }
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_DELIVERY_ROUTES": ",".join(f"{d}={t}" for d, t in routes.items()),
        "MAILHOST_DELIVERY_RETRY_BASE_SECONDS": "60",
        "MAILHOST_SERVER_HOSTNAME": "mx.example.com",
    }
    return load_settings(None, data_dir, environ)


def addr(text: str) -> EmailAddress:
    return EmailAddress.parse(text)


async def hosted_customer(rt: Runtime) -> int:
    """Customer acme hosting example.com (with DKIM keys) and bob@example.com with a mailbox."""
    customer = await rt.services.accounts.add_customer(
        OP, "acme", "Bulk Hosting", "acme@contact.test", PW
    )
    await rt.services.accounts.add_domain(OP, DomainName.parse("example.com"), "acme", PW)
    await rt.services.users.add_user(OP, addr("bob@example.com"), PW)
    await rt.services.users.add_mailbox(OP, addr("bob@example.com"), ByteSize.parse("100MB"))
    return customer.id
