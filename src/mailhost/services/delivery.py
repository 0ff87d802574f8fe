"""Accept a message: durable Maildir copies for hosted mailboxes, spool + queue for the rest.

Both are durable when the call returns, so the SMTP edge may answer 250.
Relayed recipients are spooled (fsynced) first and queued (committed) second;
the outbound worker (outbound/worker.py) takes them from there. An alias's
copies for addresses elsewhere are spooled apart, one entry per forwarding
domain, with the envelope sender rewritten by SRS (model/srs.py): the queue
keeps one sender per message. Each Maildir
copy starts with `Return-Path:` and `Delivered-To:` (RFC 5321 §4.4), the
trace of its final delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from mailhost.interfaces import DeliveryQueue, MailStore, Spool, UsageCounters
from mailhost.logs import event
from mailhost.model.envelope import Envelope, Forward, Reason, Refuse, Relay, new_message_id
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRecord
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.services.ledger import UsageLedger
from mailhost.services.usage import UsageService, utc_now

log = logging.getLogger("mailhost.delivery")


@dataclass(frozen=True, slots=True)
class Delivered:
    uids: tuple[str, ...]


def final_trace(sender: str, mailbox: MailboxRecord) -> bytes:
    """RFC 5321 §4.4: the delivering server adds the reverse-path as `Return-Path:`;
    `Delivered-To:` names the mailbox, as Postfix's local delivery does. The sender is
    UTF-8 only if it came in an SMTPUTF8 transaction, whose message may have UTF-8
    header fields anyway (RFC 6531 §3.7.3, RFC 6532 §3.2); it is written as it came."""
    return f"Return-Path: <{sender}>\r\nDelivered-To: {mailbox.address}\r\n".encode()


class DeliveryService:
    def __init__(
        self,
        store: MailStore,
        usage: UsageService,
        policy: InboundPolicy,
        counters: UsageCounters,
        spool: Spool,
        queue: DeliveryQueue,
        *,
        queue_lifetime: timedelta = timedelta(hours=120),
    ) -> None:
        self._policy = policy
        self._spool = spool
        self._queue = queue
        self._lifetime = queue_lifetime
        self._store = store
        self._ledger = UsageLedger(counters, usage.current_month)

    async def deliver_local(
        self, mailboxes: Sequence[MailboxRecord], message: bytes, *, sender: str | None = None
    ) -> Delivered:
        """Returns when every copy is durable and counted; the caller may then answer 250.

        With a `sender` (the envelope's, "" for the null sender) each copy begins
        with its final-delivery trace.
        """
        boxes = _unique(mailboxes)
        if len(boxes) == 1:  # the common case, without gather's tasks
            return Delivered((await self._copy(boxes[0], message, sender),))
        uids = await asyncio.gather(*(self._copy(box, message, sender) for box in boxes))
        return Delivered(tuple(uids))

    async def _copy(self, mailbox: MailboxRecord, message: bytes, sender: str | None) -> str:
        if sender is not None:
            message = final_trace(sender, mailbox) + message
        # The copy and its usage are written at the same time, not one after the
        # other: the sender waits for the slower of the two, not for both in turn.
        size = len(message)
        counted = self._count(mailbox, stored=size, transferred=size)
        try:
            stored = await self._store.deliver(mailbox.ref, message)
        except BaseException:
            await self._uncount(counted, mailbox, size)
            raise
        await counted
        self._policy.stored(mailbox, size)
        event(log, "stored", to=mailbox.address, size=size, uid=stored.uid, level=logging.DEBUG)
        return stored.uid

    def _count(
        self, mailbox: MailboxRecord, *, stored: int, transferred: int
    ) -> asyncio.Future[None]:
        return self._ledger.record(
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

    async def accept(self, envelope: Envelope, message: bytes) -> None:
        """Store the message as the envelope's verdicts say, with no second lookup:
        durable when it returns, so the edge may answer 250 with `envelope.id`."""
        if envelope.relayed:
            await self._enqueue(envelope, message)
        for forward in envelope.forwards:
            await self._forward(envelope, forward, message)
        if envelope.mailboxes:
            await self.deliver_local(envelope.mailboxes, message, sender=envelope.sender)

    async def send(self, sender: str, recipients: Sequence[EmailAddress], message: bytes) -> None:
        """The Outbox of mailhost's own mail (reset links, notices, bounces): hosted
        recipients get a Maildir copy (postmaster@ and abuse@ go where their domain
        says); others go to the outbound queue, one message per queue owner."""
        envelopes = [Envelope(sender)]
        for recipient in recipients:
            verdict = await self._policy.route(recipient)
            if isinstance(verdict, Refuse):
                if verdict.reason is not Reason.RELAY_DENIED:
                    log.warning("not sending to %s: %s", recipient, verdict.reason.value)
                    continue
                verdict = Relay(recipient)  # a domain we do not host
            if isinstance(verdict, Relay) and not envelopes[-1].relays_for(verdict.owner):
                envelopes.append(Envelope(sender))
            envelopes[-1].add(recipient, verdict)
        for envelope in envelopes:
            if envelope.recipients:
                await self.accept(envelope, message)

    async def _enqueue(self, envelope: Envelope, message: bytes) -> None:
        await self._queued(
            envelope.id,
            envelope.sender,
            envelope.relayed,
            message,
            (envelope.customer_id, envelope.domain_id),
        )

    async def _forward(self, envelope: Envelope, forward: Forward, message: bytes) -> None:
        """Alias copies for addresses elsewhere, sent as from the alias's domain: their
        receivers check its SPF, not the original sender's. `<>` stays `<>`."""
        sender = envelope.sender
        srs = self._policy.srs
        if srs is not None:
            sender = srs.forward(sender, forward.forwarder, utc_now())
        owner = (forward.owner.customer_id, forward.owner.domain_id)
        queued = new_message_id()
        await self._queued(queued, sender, forward.addresses, message, owner)
        # The copy has a queue id of its own: this line ties it to the message's.
        event(
            log,
            "forwarded",
            id=envelope.id,
            queue_id=queued,
            sender=sender or "<>",
            to=[str(a) for a in forward.addresses],
        )

    async def _queued(
        self,
        message_id: str,
        sender: str,
        recipients: Sequence[EmailAddress],
        message: bytes,
        owner: tuple[int | None, int | None],
    ) -> None:
        body = await self._spool.write(message, message_id)  # fsynced before any row refers to it
        now = utc_now()
        try:
            await self._queue.enqueue(
                sender,
                [str(recipient) for recipient in recipients],
                body,
                owner[0],
                owner[1],
                now,
                now + self._lifetime,
            )
        except BaseException:
            await self._spool.remove(body.message_id)  # nothing refers to it: no orphan
            raise


def _unique(mailboxes: Sequence[MailboxRecord]) -> list[MailboxRecord]:
    """One copy per mailbox even if RCPT named it twice (bob@ and BOB@)."""
    seen: dict[int, MailboxRecord] = {}
    for mailbox in mailboxes:
        seen.setdefault(mailbox.id, mailbox)
    return list(seen.values())
