"""Accept a message: durable Maildir copies for hosted mailboxes, spool + queue for the rest.

Both are durable when the call returns, so the SMTP edge may answer 250.
Remote recipients are spooled (fsynced) first and queued (committed) second;
the outbound worker (outbound/worker.py) takes them from there.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from mailhost.errors import NotFound, TemporaryFailure
from mailhost.interfaces import (
    DeliveryLogRecord,
    DeliveryQueue,
    MailStore,
    QueuedDelivery,
    Spool,
    UnitOfWorkFactory,
    UsageCounters,
)
from mailhost.model.actors import Actor
from mailhost.model.envelope import Accept, Reason, Refuse
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRecord
from mailhost.services import access
from mailhost.services.inbound_policy import InboundPolicy, room_for
from mailhost.services.ledger import UsageLedger
from mailhost.services.usage import UsageService, utc_now

log = logging.getLogger("mailhost.delivery")


@dataclass(frozen=True, slots=True)
class Delivered:
    uids: tuple[str, ...]


class DeliveryService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        store: MailStore,
        usage: UsageService,
        policy: InboundPolicy,
        counters: UsageCounters,
        *,
        spool: Spool | None = None,
        queue: DeliveryQueue | None = None,
        queue_lifetime: timedelta = timedelta(hours=120),
    ) -> None:
        self._policy = policy
        self._spool = spool
        self._queue = queue
        self._lifetime = queue_lifetime
        self._units = units
        self._store = store
        self._usage = usage
        self._ledger = UsageLedger(counters, usage.current_month)

    async def deliver_local(self, mailboxes: Sequence[MailboxRecord], message: bytes) -> Delivered:
        """Returns when every copy is durable and counted; the caller may then answer 250."""
        boxes = _unique(mailboxes)
        if len(boxes) == 1:  # the common case, without gather's tasks
            return Delivered((await self._copy(boxes[0], message),))
        uids = await asyncio.gather(*(self._copy(box, message) for box in boxes))
        return Delivered(tuple(uids))

    async def _copy(self, mailbox: MailboxRecord, message: bytes) -> str:
        # The copy and its usage are written at the same time, not one after the
        # other: the sender waits for the slower of the two, not for both in turn.
        size = len(message)
        counted = asyncio.ensure_future(self._count(mailbox, stored=size, transferred=size))
        try:
            stored = await self._store.deliver(mailbox.ref, message)
        except BaseException:
            await self._uncount(counted, mailbox, size)
            raise
        await counted
        self._policy.stored(mailbox, size)
        log.info("delivered %s bytes to %s as %s", size, mailbox.address, stored.uid)
        return stored.uid

    async def _count(self, mailbox: MailboxRecord, *, stored: int, transferred: int) -> None:
        await self._ledger.record(
            customer_id=mailbox.customer_id,
            mailbox_id=mailbox.id,
            stored=stored,
            transferred=transferred,
        )

    async def _uncount(
        self, counted: asyncio.Future[None], mailbox: MailboxRecord, size: int
    ) -> None:
        """A copy that failed gives its bytes back (the transfer did take place)."""
        try:
            await counted
        except Exception:
            return  # never counted: nothing to give back; the copy's failure is raised
        await self._count(mailbox, stored=-size, transferred=0)

    async def send(self, sender: str, recipients: Sequence[EmailAddress], message: bytes) -> None:
        """The Outbox: hosted recipients get a Maildir copy; others go to the outbound queue."""
        split = await self._split(recipients)
        for address, refusal in split.refused:
            log.warning("not sending to %s: %s", address, refusal.reason.value)
        if split.remote:
            await self._enqueue(sender, split.remote, message, customer_id=None, domain_id=None)
        if split.local:
            await self.deliver_local(split.local, message)

    async def submit(
        self,
        sender: str,
        recipients: Sequence[EmailAddress],
        message: bytes,
        customer_id: int | None,
        domain_id: int | None,
    ) -> str:
        """Accept a submitted message; durable when it returns, so the edge may answer 250.

        `sender` is the MAIL FROM address ("" for the null sender); `customer_id` and
        `domain_id` are the sending user's, so that the queued mail is held while either
        is disabled (storage/database/queue.py). Returns the
        queue id for the 250 reply. Raises TemporaryFailure, having stored
        nothing, if a hosted recipient cannot take the message now (gone since
        RCPT, or the message would overflow the mailbox: RFC 5321 §4.5.3.1.10
        lets 452/552 be retried).
        """
        split = await self._split(recipients)
        if split.refused:
            address, refusal = split.refused[0]
            raise TemporaryFailure(f"cannot deliver to {address} now: {refusal.reason.value}")
        full = [box for box in split.local if not room_for(box, len(message))]
        if full:
            raise TemporaryFailure(f"mailbox {full[0].address} has no room for this message")
        queue_id = new_queue_id()
        if split.remote:
            queue_id = await self._enqueue(sender, split.remote, message, customer_id, domain_id)
        if split.local:
            await self.deliver_local(split.local, message)
        return queue_id

    async def _split(self, recipients: Sequence[EmailAddress]) -> _Split:
        split = _Split([], [], [])
        for recipient in recipients:
            verdict = await self._policy.check_recipient(recipient)
            if isinstance(verdict, Accept):
                split.local.append(verdict.mailbox)
            elif verdict.reason is Reason.RELAY_DENIED:
                split.remote.append(recipient)  # a domain we do not host: relay it out
            else:
                split.refused.append((recipient, verdict))
        return split

    async def _enqueue(
        self,
        sender: str,
        recipients: Sequence[EmailAddress],
        message: bytes,
        customer_id: int | None,
        domain_id: int | None,
    ) -> str:
        if self._spool is None or self._queue is None:
            raise TemporaryFailure(
                f"cannot send to {', '.join(map(str, recipients))}: outbound delivery is not set up"
            )
        body = await self._spool.write(message)  # fsynced before any row refers to it
        now = utc_now()
        try:
            await self._queue.enqueue(
                sender,
                [str(recipient) for recipient in recipients],
                body,
                customer_id,
                domain_id,
                now,
                now + self._lifetime,
            )
        except BaseException:
            await self._spool.remove(body.message_id)  # nothing refers to it: no orphan
            raise
        return body.message_id

    async def queued(self, actor: Actor, limit: int = 1000) -> Sequence[QueuedDelivery]:
        access.require_provider(actor, "see the outbound queue")
        return await self._outbound().queued(limit)

    async def retry(self, actor: Actor, delivery_id: int | None) -> int:
        """Make one row (or all, for None) due now; returns how many."""
        access.require_provider(actor, "retry queued mail")
        count = await self._outbound().retry(delivery_id, utc_now())
        if delivery_id is not None and count == 0:
            raise NotFound(f"no queued delivery {delivery_id}")
        return count

    async def delete(self, actor: Actor, delivery_id: int) -> QueuedDelivery:
        """Drop one recipient from the queue without a bounce (logged as deleted)."""
        access.require_provider(actor, "delete queued mail")
        queue = self._outbound()
        removed = await queue.delete(delivery_id, utc_now())
        if removed is None:
            raise NotFound(f"no queued delivery {delivery_id}")
        if self._spool is not None and await queue.pending(removed.message_id) == 0:
            await self._spool.remove(removed.message_id)
        return removed

    async def delivery_log(self, actor: Actor, limit: int = 100) -> Sequence[DeliveryLogRecord]:
        access.require_provider(actor, "read the delivery log")
        return await self._outbound().log(limit)

    def _outbound(self) -> DeliveryQueue:
        if self._queue is None:
            raise TemporaryFailure("outbound delivery is not set up")
        return self._queue

    async def recount(self, mailboxes: Sequence[MailboxRecord]) -> list[Recount]:
        return await recount(self._units, self._store, mailboxes)

    async def expunged(self, mailbox_id: int, freed: int) -> None:
        """Record bytes freed by POP3 deletions."""
        if freed <= 0:
            return
        async with self._units() as uow:
            await uow.facilities.add_mailbox_used(mailbox_id, -freed)
            await uow.commit()


@dataclass(frozen=True, slots=True)
class _Split:
    local: list[MailboxRecord]
    remote: list[EmailAddress]
    refused: list[tuple[EmailAddress, Refuse]]


def new_queue_id() -> str:
    """An id for a message that had only local recipients (the spool names the others)."""
    return f"L{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Recount:
    mailbox: MailboxRecord
    recorded: int
    on_disk: int


async def recount(
    units: UnitOfWorkFactory, store: MailStore, mailboxes: Sequence[MailboxRecord]
) -> list[Recount]:
    """Make the database's used bytes agree with the Maildir files (repairs drift)."""
    results: list[Recount] = []
    for mailbox in mailboxes:
        on_disk = await store.usage(mailbox.ref)
        if on_disk != mailbox.used_bytes:
            async with units() as uow:
                await uow.facilities.set_mailbox_used(mailbox.id, on_disk)
                await uow.commit()
        results.append(Recount(mailbox, mailbox.used_bytes, on_disk))
    return results


def _unique(mailboxes: Sequence[MailboxRecord]) -> list[MailboxRecord]:
    """One copy per mailbox even if RCPT named it twice (bob@ and BOB@)."""
    seen: dict[int, MailboxRecord] = {}
    for mailbox in mailboxes:
        seen.setdefault(mailbox.id, mailbox)
    return list(seen.values())
