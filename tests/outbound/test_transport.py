"""SmtpTransport against aiosmtpd on 127.0.0.1: per-recipient replies, failover, smarthost AUTH."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from mailhost.outbound.routing import Hop
from mailhost.outbound.transport import SmtpTransport
from tests.outbound.conftest import Sink, SinkHandler

BODY = b"From: bob@example.com\r\nSubject: t\r\n\r\nhi\r\n"


def check_password(
    server: SMTP, session: object, envelope: object, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relay", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data)  # aiosmtpd answers 235/535


@pytest.fixture
async def smarthost(sink_tls: ssl.SSLContext) -> AsyncIterator[Sink]:
    """A relay that wants STARTTLS, then AUTH, before it takes any mail."""
    handler = SinkHandler()
    sink = Sink(0, handler)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="relay.test",
            decode_data=False,
            tls_context=sink_tls,
            require_starttls=True,
            auth_required=True,
            authenticator=check_password,
            loop=loop,
        ),
        "127.0.0.1",
        0,
    )
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


def hop(port: int, auth: tuple[str, str] | None = None) -> Hop:
    return Hop("127.0.0.1", "127.0.0.1", port, auth)


async def send(hops: list[Hop], *recipients: str) -> dict[str, str]:
    transport = SmtpTransport("mx.example.com", timeout=10)
    try:
        replies = await transport.send(hops, "bob@example.com", list(recipients), BODY)
    finally:
        await transport.close()
    return {recipient: str(reply) for recipient, reply in replies.items()}


async def test_each_recipient_gets_its_own_reply(sink: Sink) -> None:
    sink.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 gone"
    sink.handler.rcpt_replies["full@remote.test"] = "452 4.2.2 mailbox full"
    replies = await send([hop(sink.port)], "ok@remote.test", "gone@remote.test", "full@remote.test")
    assert replies == {
        "ok@remote.test": "250 2.0.0 accepted by sink",
        "gone@remote.test": "550 5.1.1 gone",
        "full@remote.test": "452 4.2.2 mailbox full",
    }
    assert [r.recipients for r in sink.received] == [["ok@remote.test"]]


async def test_refused_sender_answers_for_every_recipient(sink: Sink) -> None:
    sink.handler.mail_reply = "550 5.7.1 sender rejected"
    replies = await send([hop(sink.port)], "a@remote.test", "b@remote.test")
    assert replies == dict.fromkeys(["a@remote.test", "b@remote.test"], "550 5.7.1 sender rejected")
    assert sink.received == []


async def test_next_hop_is_tried_when_one_is_down(sink: Sink, closed_port: int) -> None:
    replies = await send([hop(closed_port), hop(sink.port)], "a@remote.test")
    assert replies == {"a@remote.test": "250 2.0.0 accepted by sink"}


async def test_all_hops_down_is_a_temporary_failure(closed_port: int) -> None:
    replies = await send([hop(closed_port)], "a@remote.test")
    assert replies["a@remote.test"].startswith(
        f"451 4.4.1 cannot connect to 127.0.0.1 port {closed_port}"
    )


async def test_smarthost_login_happens_over_tls(smarthost: Sink) -> None:
    replies = await send([hop(smarthost.port, ("relay", "s3cret"))], "a@remote.test")
    assert replies == {"a@remote.test": "250 2.0.0 accepted by sink"}
    (got,) = smarthost.received
    assert got.tls
    assert smarthost.handler.logins == [b"relay"]


async def test_wrong_smarthost_password_defers(smarthost: Sink) -> None:
    replies = await send([hop(smarthost.port, ("relay", "wrong"))], "a@remote.test")
    assert replies["a@remote.test"].startswith("451 4.7.0 127.0.0.1 refused our login: 535")
    assert smarthost.received == []


async def test_password_is_never_sent_without_tls(plain_sink: Sink) -> None:
    replies = await send([hop(plain_sink.port, ("relay", "s3cret"))], "a@remote.test")
    assert replies == {
        "a@remote.test": "451 4.7.0 127.0.0.1 offers no working STARTTLS; "
        "the password is not sent in the clear"
    }
    assert plain_sink.received == []
