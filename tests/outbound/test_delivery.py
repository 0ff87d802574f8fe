"""Submitted mail through the real worker to a sink on 127.0.0.1: DKIM, retries, bounces."""

from __future__ import annotations

import asyncio
import email
import email.policy
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from email.message import Message

import dkim
import pytest

from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from mailhost.settings import Settings
from tests.conftest import cheap_passwords
from tests.envelopes import queue_mail
from tests.outbound.conftest import OP, Sink, addr, hosted_customer

MESSAGE = (
    b"From: Bob <bob@example.com>\r\n"
    b"To: alice@remote.test\r\n"
    b"Subject: out\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello Alice,\r\n"
    b".leading dot stays\r\n"
    b"caf\xc3\xa9 8-bit\r\n"
)


async def submit(rt: Runtime, *recipients: str, sender: str = "bob@example.com") -> str:
    customer = await hosted_customer_id(rt)
    return await queue_mail(rt, sender, [addr(r) for r in recipients], MESSAGE, customer, None)


async def hosted_customer_id(rt: Runtime) -> int:
    found = await rt.services.accounts.customers(OP)
    if found:
        return found[0].id
    return await hosted_customer(rt)


async def mailbox_messages(rt: Runtime) -> list[bytes]:
    (box,) = await rt.services.users.mailboxes(OP, DomainName.parse("example.com"))
    contents: list[bytes] = []
    for stored in await rt.store.list(box.ref):
        async with aclosing(rt.store.read(box.ref, stored.uid)) as stream:
            contents.append(b"".join([chunk async for chunk in stream]))
    return contents


async def dns_for(rt: Runtime) -> dict[bytes, bytes]:
    records = await rt.dkim.records(DomainName.parse("example.com"))
    return {f"{r.name}.".encode(): r.text.encode() for r in records}


def verify_all(data: bytes, txt: dict[bytes, bytes]) -> list[bytes]:
    """The a= tag of each DKIM signature on `data`, having checked every one verifies."""
    checker = dkim.DKIM(data)
    signatures = [v for k, v in checker.headers if k.lower() == b"dkim-signature"]
    algorithms: list[bytes] = []
    for index in range(len(signatures)):
        assert checker.verify(idx=index, dnsfunc=lambda name, timeout=5: txt.get(name))
        algorithms.append(checker.signature_fields[b"a"])
    return algorithms


async def test_message_reaches_the_sink_byte_intact_with_a_valid_dkim_signature(
    runtime: Runtime, sink: Sink
) -> None:
    queue_id = await submit(runtime, "alice@remote.test", "carol@far.test")
    assert await runtime.worker.run_once() == 2
    (got,) = sink.received  # both recipients route to the sink: one transaction
    assert got.sender == "bob@example.com"
    assert got.recipients == ["alice@remote.test", "carol@far.test"]
    assert got.tls  # the sink requires STARTTLS
    assert got.data.endswith(MESSAGE)
    assert got.data.startswith(b"DKIM-Signature: ")
    algorithms = verify_all(got.data, await dns_for(runtime))
    assert sorted(algorithms) == [b"ed25519-sha256", b"rsa-sha256"]
    assert await runtime.queue.queued(10) == []
    assert await runtime.spool.ids() == []  # all deliveries done: the body is gone
    log = (await runtime.services.mail_queue.delivery_log(OP)).entries
    assert {(e.recipient, e.status, e.message_id) for e in log} == {
        ("alice@remote.test", "delivered", queue_id),
        ("carol@far.test", "delivered", queue_id),
    }
    assert all(e.remote_reply == "250 2.0.0 accepted by sink" for e in log)


async def test_relayed_bytes_count_toward_the_customers_monthly_transfer(
    runtime: Runtime, sink: Sink
) -> None:
    await submit(runtime, "alice@remote.test")
    (before,) = await runtime.services.usage.report(OP, "acme")
    await runtime.worker.run_once()
    (after,) = await runtime.services.usage.report(OP, "acme")
    (got,) = sink.received
    assert after.transfer_bytes - before.transfer_bytes == len(got.data)


async def test_sink_answering_451_first_gets_the_message_on_the_retry(
    runtime: Runtime, sink: Sink
) -> None:
    sink.handler.data_replies = ["451 4.3.0 greylisted, come back later"]
    await submit(runtime, "alice@remote.test")
    start = datetime.now(UTC)
    await runtime.worker.run_once(start)
    assert sink.received == []
    (row,) = await runtime.queue.queued(10)
    assert row.attempts == 1
    assert row.last_reply == "451 4.3.0 greylisted, come back later"
    assert row.next_attempt_at == start + timedelta(seconds=60)  # retry_base_seconds
    assert await runtime.worker.run_once(start + timedelta(seconds=59)) == 0
    assert await runtime.worker.run_once(start + timedelta(seconds=61)) == 1
    (got,) = sink.received
    assert got.data.endswith(MESSAGE)
    statuses = [e.status for e in (await runtime.services.mail_queue.delivery_log(OP)).entries]
    assert statuses == ["delivered", "deferred"]


async def test_backoff_doubles_and_expiry_fails_with_a_bounce(runtime: Runtime, sink: Sink) -> None:
    sink.handler.data_replies = ["451 4.3.0 busy"] * 5
    await submit(runtime, "alice@remote.test")
    (row,) = await runtime.queue.queued(10)
    now = row.created_at
    waits = []
    for _ in range(3):
        await runtime.worker.run_once(now)
        (row,) = await runtime.queue.queued(10)
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert waits == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]
    await runtime.worker.run_once(row.expires_at)
    assert await runtime.queue.queued(10) == []
    (bounce,) = await mailbox_messages(runtime)
    status = delivery_status(bounce)
    assert status[1]["Action"] == "failed"
    assert "gave up: not delivered within 120 hours" in status[1]["Diagnostic-Code"]


def subparts(message: Message) -> list[Message]:
    payload = message.get_payload()
    assert isinstance(payload, list)
    return [part for part in payload if isinstance(part, Message)]


def delivery_status(raw: bytes) -> list[Message]:
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    parts = subparts(parsed)
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    return subparts(parts[1])


async def test_550_bounces_to_the_senders_mailbox(runtime: Runtime, sink: Sink) -> None:
    sink.handler.rcpt_replies["alice@remote.test"] = "550 5.1.1 <alice@remote.test>: no such user"
    await submit(runtime, "alice@remote.test", "carol@far.test")
    await runtime.worker.run_once()
    (got,) = sink.received
    assert got.recipients == ["carol@far.test"]  # the other recipient still gets it
    (bounce,) = await mailbox_messages(runtime)
    parsed = email.message_from_bytes(bounce, policy=email.policy.compat32)
    assert parsed["To"] == "<bob@example.com>"
    assert parsed["From"] == "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    per_message, per_recipient = delivery_status(bounce)
    assert per_message["Reporting-MTA"] == "dns; mx.example.com"
    assert per_recipient["Final-Recipient"] == "rfc822; alice@remote.test"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; 127.0.0.1"
    assert per_recipient["Diagnostic-Code"] == "smtp; 550 5.1.1 <alice@remote.test>: no such user"
    headers = str(subparts(parsed)[2].get_payload())
    assert "Subject: out" in headers and "Hello Alice" not in headers
    assert await runtime.spool.ids() == []
    log = (await runtime.services.mail_queue.delivery_log(OP)).entries
    statuses = {(e.recipient, e.status) for e in log}
    assert statuses == {("alice@remote.test", "failed"), ("carol@far.test", "delivered")}


async def test_mail_from_the_null_sender_is_never_bounced(runtime: Runtime, sink: Sink) -> None:
    await hosted_customer(runtime)
    sink.handler.rcpt_replies["alice@remote.test"] = "550 5.1.1 no such user"
    await runtime.services.delivery.send("", [addr("alice@remote.test")], MESSAGE)
    await runtime.worker.run_once()
    assert sink.received == []
    assert await mailbox_messages(runtime) == []
    assert await runtime.queue.queued(10) == []  # failed, not retried, not bounced
    (entry,) = (await runtime.services.mail_queue.delivery_log(OP)).entries
    assert (entry.sender, entry.status) == ("", "failed")


async def test_unreachable_host_is_deferred_not_failed(runtime: Runtime) -> None:
    await submit(runtime, "alice@down.test")
    await runtime.worker.run_once()
    (row,) = await runtime.queue.queued(10)
    assert row.attempts == 1
    assert row.last_reply.startswith("451 4.4.1 cannot connect to 127.0.0.1 port ")
    assert await mailbox_messages(runtime) == []


async def test_server_without_starttls_still_gets_the_mail(
    runtime: Runtime, plain_sink: Sink
) -> None:
    await submit(runtime, "dave@plain.test")
    await runtime.worker.run_once()
    (got,) = plain_sink.received
    assert not got.tls
    assert got.data.endswith(MESSAGE)


async def test_failed_tls_handshake_falls_back_to_plaintext(
    runtime: Runtime, broken_tls_sink: Sink
) -> None:
    await submit(runtime, "erin@brokentls.test")
    await runtime.worker.run_once()
    (got,) = broken_tls_sink.received
    assert not got.tls
    assert broken_tls_sink.connections == 2  # the failed TLS attempt, then plaintext
    assert got.data.endswith(MESSAGE)


async def test_one_connection_carries_consecutive_messages(runtime: Runtime, sink: Sink) -> None:
    await submit(runtime, "alice@remote.test")
    await runtime.worker.run_once()
    await submit(runtime, "carol@far.test")
    await runtime.worker.run_once()
    assert len(sink.received) == 2
    assert sink.connections == 1


async def test_queue_survives_a_restart(settings: Settings, sink: Sink) -> None:
    async with Runtime(settings, passwords=cheap_passwords()) as first:
        await submit(first, "alice@remote.test")
    assert sink.received == []
    async with Runtime(settings, passwords=cheap_passwords()) as second:
        assert await second.worker.run_once() == 1
    (got,) = sink.received
    assert got.data.endswith(MESSAGE)


async def test_background_worker_delivers_soon_after_submit(runtime: Runtime, sink: Sink) -> None:
    await hosted_customer(runtime)
    runtime.start_worker()
    await submit(runtime, "alice@remote.test")
    async with asyncio.timeout(20):
        while not sink.received:
            await asyncio.sleep(0.05)
    await runtime.stop_worker()
    assert sink.received[0].recipients == ["alice@remote.test"]


async def test_two_workers_on_one_database_never_deliver_a_row_twice(
    settings: Settings, sink: Sink
) -> None:
    async with (
        Runtime(settings, passwords=cheap_passwords()) as one,
        Runtime(settings, passwords=cheap_passwords()) as two,
    ):
        customer = await hosted_customer(one)
        for n in range(24):
            message = MESSAGE.replace(b"Subject: out", f"Subject: m{n}".encode())
            await queue_mail(
                one, "bob@example.com", [addr(f"r{n}@remote.test")], message, customer, None
            )

        async def drain(rt: Runtime) -> int:
            total = 0
            while handled := await rt.worker.run_once():
                total += handled
            return total

        handled = await asyncio.gather(drain(one), drain(two))
    assert sum(handled) == 24
    recipients = sorted(r for got in sink.received for r in got.recipients)
    assert recipients == sorted(f"r{n}@remote.test" for n in range(24))


@pytest.mark.parametrize("sender", ["", "bob@example.com"])
async def test_sender_is_kept_on_the_envelope(runtime: Runtime, sink: Sink, sender: str) -> None:
    await hosted_customer(runtime)
    await queue_mail(runtime, sender, [addr("alice@remote.test")], MESSAGE, None, None)
    await runtime.worker.run_once()
    (got,) = sink.received
    assert got.sender == (sender or "<>")
