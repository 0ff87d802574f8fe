"""The worker's log: one `delivery` line per recipient and attempt, one `bounce` line per DSN,
each with the queue id the submission's 250 reply gave."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from mailhost.logs import EVENT_ATTRIBUTE, FIELDS_ATTRIBUTE
from mailhost.runtime import Runtime
from tests.outbound.conftest import Sink, hosted_customer

MESSAGE = b"From: bob@example.com\r\nTo: alice@remote.test\r\nSubject: out\r\n\r\nHello.\r\n"


async def queue(rt: Runtime, recipient: str) -> tuple[str, datetime]:
    """Spool and queue MESSAGE from bob@example.com; returns its queue id and when."""
    body = await rt.spool.write(MESSAGE)
    now = datetime.now(UTC)
    lifetime = timedelta(hours=120)
    await rt.queue.enqueue("bob@example.com", [recipient], body, None, None, now, now + lifetime)
    return body.message_id, now


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    found = [r for r in caplog.records if getattr(r, EVENT_ATTRIBUTE, None) == name]
    return [dict(getattr(record, FIELDS_ATTRIBUTE)) for record in found]


def without_delay(fields: dict[str, object]) -> dict[str, object]:
    delay = fields.pop("delay")
    assert isinstance(delay, float) and delay >= 0
    return fields


async def test_a_deferred_then_sent_message_logs_both_attempts(
    runtime: Runtime, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.handler.data_replies = ["451 4.3.0 greylisted, come back later"]
    queue_id, queued = await queue(runtime, "alice@remote.test")

    with caplog.at_level(logging.INFO, logger="mailhost.outbound"):
        await runtime.worker.run_once(queued)
        await runtime.worker.run_once(queued + timedelta(seconds=61))

    line = {"id": queue_id, "to": "alice@remote.test", "relay": f"127.0.0.1:{sink.port}"}
    assert [without_delay(fields) for fields in events(caplog, "delivery")] == [
        {
            **line,
            "status": "deferred",
            "reply": "451 4.3.0 greylisted, come back later",
            "attempt": 1,
        },
        {**line, "status": "sent", "reply": "250 2.0.0 accepted by sink", "attempt": 2},
    ]


async def test_a_refused_recipient_logs_bounced_and_the_bounce(
    runtime: Runtime, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    await hosted_customer(runtime)
    sink.handler.rcpt_replies["alice@remote.test"] = "550 5.1.1 no such user"
    queue_id, _ = await queue(runtime, "alice@remote.test")

    with caplog.at_level(logging.INFO, logger="mailhost.outbound"):
        await runtime.worker.run_once()

    [delivery] = events(caplog, "delivery")
    assert (delivery["status"], delivery["reply"]) == ("bounced", "550 5.1.1 no such user")
    assert events(caplog, "bounce") == [
        {"id": queue_id, "to": "bob@example.com", "recipients": ["alice@remote.test"]}
    ]


async def test_giving_up_at_the_queue_lifetime_logs_expired(
    runtime: Runtime, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    await hosted_customer(runtime)
    sink.handler.data_replies = ["451 4.3.0 busy"]
    queue_id, _ = await queue(runtime, "alice@remote.test")
    (row,) = await runtime.queue.queued(10)

    with caplog.at_level(logging.INFO, logger="mailhost.outbound"):
        await runtime.worker.run_once(row.expires_at)

    [delivery] = events(caplog, "delivery")
    assert (delivery["id"], delivery["status"]) == (queue_id, "expired")
    assert str(delivery["reply"]).startswith("451 4.3.0 busy (gave up: not delivered within")
    assert [bounce["id"] for bounce in events(caplog, "bounce")] == [queue_id]


async def test_an_unreachable_host_logs_deferred_with_no_relay(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    queue_id, _ = await queue(runtime, "alice@down.test")

    with caplog.at_level(logging.INFO, logger="mailhost.outbound"):
        await runtime.worker.run_once()

    [delivery] = events(caplog, "delivery")
    assert (delivery["id"], delivery["status"], delivery["relay"]) == (queue_id, "deferred", "none")
    assert str(delivery["reply"]).startswith("451 4.4.1 cannot connect to 127.0.0.1 port ")
