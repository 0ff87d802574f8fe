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
from tests.outbound.conftest import Sink, SinkHandler, start_sink

BODY = b"From: bob@example.com\r\nSubject: t\r\n\r\nhi\r\n"
# RFC 6532: UTF-8 in the header too; the domain as its A-label, the local parts UTF-8.
UTF8_SENDER = "jörg@xn--bcher-kva.example"
UTF8_BODY = "From: Jörg <jörg@bücher.example>\r\nSubject: grüße\r\n\r\nhallo\r\n".encode()


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


@pytest.fixture
async def utf8_sink() -> AsyncIterator[Sink]:
    """Offers SMTPUTF8 and 8BITMIME."""
    started, server = await start_sink(None, smtputf8=True)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
async def seven_bit_sink() -> AsyncIterator[Sink]:
    """Does not offer 8BITMIME (but takes 8-bit bytes, as nearly every server does)."""
    started, server = await start_sink(None, eight_bit=False)
    yield started
    server.close()
    await server.wait_closed()


async def send_as(
    sink: Sink, sender: str, recipients: list[str], message: bytes, *, smtputf8: bool
) -> dict[str, str]:
    transport = SmtpTransport("mx.example.com", timeout=10)
    try:
        replies = await transport.send(
            [hop(sink.port)], sender, recipients, message, smtputf8=smtputf8
        )
    finally:
        await transport.close()
    return {recipient: str(reply) for recipient, reply in replies.items()}


async def test_message_needing_smtputf8_goes_with_it_where_offered(utf8_sink: Sink) -> None:
    recipients = ["zoë@remote.test", "ann@remote.test"]
    replies = await send_as(utf8_sink, UTF8_SENDER, recipients, UTF8_BODY, smtputf8=True)
    assert replies == dict.fromkeys(recipients, "250 2.0.0 accepted by sink")
    (got,) = utf8_sink.received
    assert (got.sender, got.recipients, got.data) == (UTF8_SENDER, recipients, UTF8_BODY)
    assert sorted(got.options) == ["BODY=8BITMIME", "SMTPUTF8"]


async def test_message_needing_smtputf8_fails_for_good_where_it_is_not_offered(
    plain_sink: Sink,
) -> None:
    # RFC 6531 §3.2: never downgraded; a 5xx, so the worker bounces it to the sender.
    replies = await send_as(
        plain_sink, UTF8_SENDER, ["zoë@plain.test", "ann@plain.test"], UTF8_BODY, smtputf8=True
    )
    assert replies == dict.fromkeys(
        ["zoë@plain.test", "ann@plain.test"],
        "553 5.6.7 127.0.0.1 does not support SMTPUTF8, which this message needs",
    )
    assert plain_sink.received == []
    # The same server takes mail that does not need SMTPUTF8, without the parameter.
    replies = await send_as(plain_sink, "bob@example.com", ["ann@plain.test"], BODY, smtputf8=False)
    assert replies == {"ann@plain.test": "250 2.0.0 accepted by sink"}
    assert [got.options for got in plain_sink.received] == [()]


async def test_8bit_content_is_declared_where_offered_and_sent_as_is_where_not(
    plain_sink: Sink, seven_bit_sink: Sink
) -> None:
    eight_bit = "From: bob@example.com\r\nSubject: t\r\n\r\ncafé\r\n".encode()
    for sink in (plain_sink, seven_bit_sink):
        for message in (eight_bit, BODY):
            replies = await send_as(sink, "bob@example.com", ["a@x.test"], message, smtputf8=False)
            assert replies == {"a@x.test": "250 2.0.0 accepted by sink"}
    assert [(got.data, got.options) for got in plain_sink.received] == [
        (eight_bit, ("BODY=8BITMIME",)),
        (BODY, ()),
    ]
    # RFC 6152 §3 would convert or bounce; like Postfix with disable_mime_output_conversion.
    assert [(got.data, got.options) for got in seven_bit_sink.received] == [
        (eight_bit, ()),
        (BODY, ()),
    ]


async def test_messages_to_one_destination_share_a_few_connections(plain_sink: Sink) -> None:
    transport = SmtpTransport("mx.example.com", timeout=10, per_destination=3)
    try:
        replies = await asyncio.gather(
            *(
                transport.send([hop(plain_sink.port)], "bob@example.com", [f"r{n}@x.test"], BODY)
                for n in range(12)
            )
        )
    finally:
        await transport.close()
    assert [str(r[f"r{n}@x.test"]) for n, r in enumerate(replies)] == [
        "250 2.0.0 accepted by sink"
    ] * 12
    assert len(plain_sink.received) == 12
    assert plain_sink.connections <= 3  # at most 3 at a time, each one reused
