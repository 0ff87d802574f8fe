"""The outbound queue and DeliveryService.submit on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from mailhost.errors import NotFound, NotPermitted
from mailhost.interfaces import (
    Attempt,
    AttemptResult,
    Deferred,
    DeliveryQueue,
    Failed,
    QueuedDelivery,
    Relayed,
)
from mailhost.model.actors import CustomerActor, ProviderActor, UserActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.storage.database.engine import create_engine, session_factory
from mailhost.storage.database.queue import DEFAULT_LEASE, SqlDeliveryQueue
from tests.envelopes import queue_mail

OP = ProviderActor("test")
PW = "correct horse battery"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def addr(text: str) -> EmailAddress:
    return EmailAddress.parse(text)


async def hosted(rt: Runtime) -> int:
    """Customer acme with example.com and bob@example.com holding a mailbox; its id."""
    customer = await rt.services.accounts.add_customer(
        OP, "acme", "Bulk Hosting", "acme@contact.test", PW
    )
    await rt.services.accounts.add_domain(OP, DomainName.parse("example.com"), "acme", PW)
    await rt.services.users.add_user(OP, addr("bob@example.com"), PW)
    await rt.services.users.add_mailbox(OP, addr("bob@example.com"), ByteSize.parse("100MB"))
    return customer.id


async def enqueue(rt: Runtime, *recipients: str, sender: str = "bob@example.com") -> str:
    body = await rt.spool.write(b"Subject: t\r\n\r\nhello\r\n")
    await rt.queue.enqueue(sender, recipients, body, None, None, T0, T0 + timedelta(days=5))
    return body.message_id


async def record(
    rt: Runtime, row: QueuedDelivery, result: AttemptResult, now: datetime = T0
) -> bool:
    """One attempt on its own; True if this worker still held the row."""
    (owned,) = (await rt.queue.record([Attempt(row, result)], now)).owned
    return owned


def test_sql_delivery_queue_is_a_delivery_queue(runtime: Runtime) -> None:
    queue: DeliveryQueue = runtime.queue
    assert queue is runtime.queue


async def test_enqueue_makes_one_row_per_recipient_and_a_claim_leases_them(
    runtime: Runtime,
) -> None:
    message_id = await enqueue(runtime, "a@remote.test", "b@remote.test", "c@other.test")
    claimed = await runtime.queue.claim_due(T0, 10)
    assert [d.recipient for d in claimed] == ["a@remote.test", "b@remote.test", "c@other.test"]
    assert {d.message_id for d in claimed} == {message_id}
    assert all(d.leased_until == T0 + DEFAULT_LEASE for d in claimed)
    assert all(d.sender == "bob@example.com" and d.size == 21 for d in claimed)
    # Leased rows are invisible to every other claim until the lease runs out.
    assert await runtime.queue.claim_due(T0 + timedelta(minutes=1), 10) == []
    taken_over = await runtime.queue.claim_due(T0 + DEFAULT_LEASE + timedelta(seconds=1), 10)
    assert [d.id for d in taken_over] == [d.id for d in claimed]


async def test_claim_takes_at_most_limit_rows_oldest_due_first(runtime: Runtime) -> None:
    await enqueue(runtime, *(f"r{n}@remote.test" for n in range(5)))
    first = await runtime.queue.claim_due(T0, 2)
    second = await runtime.queue.claim_due(T0, 10)
    assert [d.recipient for d in first] == ["r0@remote.test", "r1@remote.test"]
    assert [d.recipient for d in second] == [f"r{n}@remote.test" for n in range(2, 5)]


async def test_deferred_row_waits_until_its_retry_time(runtime: Runtime) -> None:
    await enqueue(runtime, "a@remote.test")
    (row,) = await runtime.queue.claim_due(T0, 10)
    retry_at = T0 + timedelta(hours=1)
    assert await record(runtime, row, Deferred("451 4.7.1 try later", retry_at))
    assert await runtime.queue.claim_due(T0 + timedelta(minutes=59), 10) == []
    (again,) = await runtime.queue.claim_due(retry_at, 10)
    assert again.id == row.id
    assert again.attempts == 1
    assert again.last_reply == "451 4.7.1 try later"
    assert again.next_attempt_at == retry_at


async def test_final_outcomes_remove_the_row_and_are_logged(runtime: Runtime) -> None:
    message_id = await enqueue(runtime, "a@remote.test", "b@remote.test")
    a, b = await runtime.queue.claim_due(T0, 10)
    assert await record(runtime, a, Relayed("250 2.0.0 ok"))
    assert await runtime.queue.pending(message_id) == 1
    assert await record(runtime, b, Failed("550 5.1.1 no such user"))
    assert await runtime.queue.pending(message_id) == 0
    assert await runtime.queue.queued(10) == []
    log = (await runtime.services.mail_queue.delivery_log(OP)).entries
    assert [(e.recipient, e.status, e.remote_reply) for e in log] == [
        ("b@remote.test", "failed", "550 5.1.1 no such user"),
        ("a@remote.test", "delivered", "250 2.0.0 ok"),
    ]
    assert all(e.message_id == message_id and e.sender == "bob@example.com" for e in log)
    assert all(e.at == T0 for e in log)


async def test_worker_that_lost_its_lease_cannot_record(runtime: Runtime) -> None:
    await enqueue(runtime, "a@remote.test")
    (stale,) = await runtime.queue.claim_due(T0, 10)
    later = T0 + DEFAULT_LEASE + timedelta(seconds=1)
    (fresh,) = await runtime.queue.claim_due(later, 10)
    assert not await record(runtime, stale, Relayed("250 ok"), later)
    assert await record(runtime, fresh, Relayed("250 ok"), later)
    assert (await runtime.queue.log(10)).total == 1


async def test_attempts_of_several_messages_are_recorded_together(runtime: Runtime) -> None:
    done = await enqueue(runtime, "a@remote.test", "b@remote.test")
    waiting = await enqueue(runtime, "c@remote.test", "d@remote.test")
    a, b, c, d = await runtime.queue.claim_due(T0, 10)
    retry_at = T0 + timedelta(hours=1)
    recorded = await runtime.queue.record(
        [
            Attempt(a, Relayed("250 2.0.0 ok")),
            Attempt(b, Failed("550 5.1.1 no such user")),
            Attempt(c, Deferred("451 4.7.1 try later", retry_at)),
            Attempt(d, Relayed("250 2.0.0 ok")),
        ],
        T0,
    )
    assert list(recorded.owned) == [True, True, True, True]
    assert recorded.finished == {done}  # c is still queued: `waiting`'s body stays
    (again,) = await runtime.queue.claim_due(retry_at, 10)
    assert (again.id, again.message_id, again.attempts) == (c.id, waiting, 1)
    log = (await runtime.services.mail_queue.delivery_log(OP)).entries
    assert [(e.recipient, e.status) for e in log] == [
        ("d@remote.test", "delivered"),
        ("c@remote.test", "deferred"),
        ("b@remote.test", "failed"),
        ("a@remote.test", "delivered"),
    ]


async def test_a_group_records_only_the_rows_this_worker_still_holds(runtime: Runtime) -> None:
    message_id = await enqueue(runtime, "a@remote.test", "b@remote.test")
    stale_a, _ = await runtime.queue.claim_due(T0, 10)
    later = T0 + DEFAULT_LEASE + timedelta(seconds=1)
    fresh_a, fresh_b = await runtime.queue.claim_due(later, 10)
    recorded = await runtime.queue.record(
        [Attempt(stale_a, Relayed("250 ok")), Attempt(fresh_b, Relayed("250 ok"))], later
    )
    assert list(recorded.owned) == [False, True]
    assert recorded.finished == frozenset()  # a is the other worker's, still queued
    assert [d.id for d in await runtime.queue.queued(10)] == [fresh_a.id]
    assert await runtime.queue.pending(message_id) == 1
    assert [e.recipient for e in (await runtime.queue.log(10)).entries] == ["b@remote.test"]


@pytest.fixture
async def second_queue(runtime: Runtime) -> AsyncIterator[SqlDeliveryQueue]:
    """The same database through another engine: what a second node sees."""
    engine = create_engine(runtime.settings.database.url)
    yield SqlDeliveryQueue(session_factory(engine))
    await engine.dispose()


async def test_concurrent_claims_never_share_a_row(
    runtime: Runtime, second_queue: SqlDeliveryQueue
) -> None:
    for batch in range(6):
        await enqueue(runtime, *(f"r{batch}-{n}@remote.test" for n in range(10)))

    async def drain(queue: SqlDeliveryQueue) -> list[int]:
        got: list[int] = []
        while claimed := await queue.claim_due(T0, 3):
            got += [d.id for d in claimed]
        return got

    mine, theirs = await asyncio.gather(drain(runtime.queue), drain(second_queue))
    assert len(mine) + len(theirs) == 60
    assert set(mine).isdisjoint(theirs)
    assert mine and theirs


async def test_accept_stores_local_copies_and_queues_remote_recipients(runtime: Runtime) -> None:
    customer_id = await hosted(runtime)
    message = b"From: bob@example.com\r\nSubject: out\r\n\r\nhi\r\n"
    queue_id = await queue_mail(
        runtime,
        "bob@example.com",
        [addr("alice@remote.test"), addr("bob@example.com"), addr("carol@far.test")],
        message,
        customer_id,
        None,
    )
    assert await runtime.spool.read(queue_id) == message
    queued = await runtime.services.mail_queue.queued(OP)
    assert [(d.recipient, d.message_id, d.customer_id) for d in queued] == [
        ("alice@remote.test", queue_id, customer_id),
        ("carol@far.test", queue_id, customer_id),
    ]
    assert queued[0].expires_at - queued[0].created_at == timedelta(hours=120)
    (box,) = await runtime.services.users.mailboxes(OP, DomainName.parse("example.com"))
    (stored,) = await runtime.store.list(box.ref)
    copy = b"".join([chunk async for chunk in runtime.store.read(box.ref, stored.uid)])
    # RFC 5321 §4.4: the final delivery's trace, then the message as sent; the relayed
    # copy (the spool's) carries no Return-Path: the next hop adds its own.
    trace = b"Return-Path: <bob@example.com>\r\nDelivered-To: bob@example.com\r\n"
    assert copy == trace + message
    assert stored.size == len(copy)


async def test_outbox_queues_remote_recipients_with_the_given_sender(runtime: Runtime) -> None:
    await runtime.services.delivery.send("", [addr("alice@remote.test")], b"Subject: n\r\n\r\n")
    (row,) = await runtime.services.mail_queue.queued(OP)
    assert (row.sender, row.recipient, row.customer_id) == ("", "alice@remote.test", None)


async def test_operator_retries_and_deletes_queued_mail(runtime: Runtime) -> None:
    message_id = await enqueue(runtime, "a@remote.test", "b@remote.test")
    a, b = await runtime.queue.claim_due(T0, 10)
    far = datetime.now(UTC) + timedelta(days=1)
    await record(runtime, a, Deferred("421 busy", far))
    await record(runtime, b, Deferred("421 busy", far))
    delivery = runtime.services.mail_queue
    assert await delivery.retry(OP, a.id) == 1
    due = await runtime.queue.claim_due(datetime.now(UTC) + timedelta(seconds=1), 10)
    assert [d.id for d in due] == [a.id]
    assert await delivery.retry(OP, None) == 2  # both rows (a's lease is left alone)
    removed = await delivery.delete(OP, b.id)
    assert removed.recipient == "b@remote.test"
    assert await runtime.spool.ids() == [message_id]  # a still needs the body
    await delivery.delete(OP, a.id)
    assert await runtime.spool.ids() == []
    statuses = [(e.recipient, e.status) for e in (await delivery.delivery_log(OP)).entries]
    assert ("b@remote.test", "deleted") in statuses and ("a@remote.test", "deleted") in statuses


async def test_unknown_queue_ids_and_other_actors_are_refused(runtime: Runtime) -> None:
    delivery = runtime.services.mail_queue
    with pytest.raises(NotFound, match="no queued delivery 999"):
        await delivery.retry(OP, 999)
    with pytest.raises(NotFound, match="no queued delivery 999"):
        await delivery.delete(OP, 999)
    customer = CustomerActor(1, "acme")
    with pytest.raises(NotPermitted, match="only the provider may see the outbound queue"):
        await delivery.queued(customer)
    user = UserActor(1, 1, 1, addr("bob@example.com"))
    with pytest.raises(NotPermitted, match="only the provider, a customer or a domain's manager"):
        await delivery.delivery_log(user)
