"""The delivery worker: claim due rows → route → sign → send → record; back off, expire, bounce.

Rows of one message that route to the same hops go out in one SMTP
transaction. A 2xx after DATA deletes the row; a 4xx or no connection defers
it with exponential backoff (base · 2^attempts, capped), until the queue
lifetime runs out; a 5xx, a null MX or expiry fails it, and the sender gets one
DSN per message and batch through the Outbox (local mailbox, or queued with
the null sender). When no row of a message is left its spool file goes.

The outcomes of the messages in flight are recorded by group commit: one
transaction takes whatever messages finished while the previous one was
committing, and relayed bytes are counted per customer the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from mailhost.batching import GroupCommit
from mailhost.errors import InvalidAddress
from mailhost.interfaces import (
    Attempt,
    AttemptResult,
    Deferred,
    DeliveryQueue,
    Failed,
    Outbox,
    QueuedDelivery,
    Relayed,
    Spool,
)
from mailhost.logs import event
from mailhost.model.message import needs_smtputf8
from mailhost.model.names import EmailAddress
from mailhost.outbound.bounces import FailedRecipient, compose_dsn, should_bounce
from mailhost.outbound.dkim import DkimKeyring
from mailhost.outbound.routing import Route, Router, RoutingError
from mailhost.outbound.transport import Reply, SmtpTransport
from mailhost.services.usage import UsageService, utc_now

log = logging.getLogger("mailhost.outbound")

MAX_BACKOFF = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    hostname: str  # Reporting-MTA of DSNs
    retry_base: timedelta
    batch: int = 50
    poll_seconds: float = 5.0


def backoff(base: timedelta, attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed ones (1, 2, ...)."""
    exponent = min(max(attempts - 1, 0), 20)
    return min(base * (1 << exponent), MAX_BACKOFF)


# Per outcome of a message, whether this worker still held it; and whether the message
# has no row left (its spool file may go).
_Recorded = tuple[list[bool], bool]

# The status of a delivery line in the log, in Postfix's words.
Status = Literal["sent", "deferred", "bounced", "expired"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery: QueuedDelivery
    result: AttemptResult
    host: str = ""  # the server that answered (the DSN's Remote-MTA); "" when none did
    relay: str = "none"  # its host:port, for the log
    expired: bool = False  # failed because the queue lifetime ran out

    @property
    def status(self) -> Status:
        if isinstance(self.result, Relayed):
            return "sent"
        if isinstance(self.result, Deferred):
            return "deferred"
        return "expired" if self.expired else "bounced"


class DeliveryWorker:
    def __init__(
        self,
        queue: DeliveryQueue,
        spool: Spool,
        router: Router,
        transport: SmtpTransport,
        outbox: Outbox,
        usage: UsageService,
        config: WorkerConfig,
        signer: DkimKeyring | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._queue = queue
        self._spool = spool
        self._router = router
        self._transport = transport
        self._outbox = outbox
        self._usage = usage
        self._config = config
        self._signer = signer
        self._clock = clock
        self._records = GroupCommit[Sequence[_Outcome], _Recorded](self._record_all)
        self._transfers = GroupCommit[tuple[int, int], None](self._add_transfers)

    async def run(self) -> None:
        """Work until cancelled; a failing batch is logged and retried, never fatal."""
        try:
            while True:
                try:
                    handled = await self.run_once()
                except Exception:
                    log.exception("delivery batch failed; rows are retried when their lease ends")
                    handled = 0
                await self._transport.close_idle()
                if handled < self._config.batch:
                    await self._queue.wait_for_work(self._config.poll_seconds)
        finally:
            await self._transport.close()

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim and attempt one batch of due rows; returns how many were claimed."""
        now = now or self._clock()
        claimed = await self._queue.claim_due(now, self._config.batch)
        by_message: dict[str, list[QueuedDelivery]] = {}
        for delivery in claimed:
            by_message.setdefault(delivery.message_id, []).append(delivery)
        async with asyncio.TaskGroup() as group:
            for rows in by_message.values():
                group.create_task(self._guarded(rows, now))
        return len(claimed)

    async def _guarded(self, rows: Sequence[QueuedDelivery], now: datetime) -> None:
        # One message's trouble must not cancel the other messages of the batch.
        try:
            await self._message(rows, now)
        except Exception:
            log.exception("delivery of %s failed; retried when its lease ends", rows[0].message_id)

    async def _message(self, rows: Sequence[QueuedDelivery], now: datetime) -> None:
        try:
            original = await self._spool.read(rows[0].message_id)
        except LookupError:
            log.error("spool file %s is missing; failing its deliveries", rows[0].message_id)
            lost = Failed("554 5.3.0 message body lost from the spool")
            await self._finish([_Outcome(row, lost) for row in rows], b"")
            return
        try:
            outcomes = await self._attempt(rows, original, now)
        except Exception:
            log.exception("delivery of %s failed unexpectedly", rows[0].message_id)
            outcomes = [self._verdict(row, "451 4.3.0 local error", False, now) for row in rows]
        await self._finish(outcomes, original)

    async def _attempt(
        self, rows: Sequence[QueuedDelivery], original: bytes, now: datetime
    ) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        routed: dict[Route, list[QueuedDelivery]] = {}
        for row in rows:
            try:
                route = await self._router.route(row.recipient.rpartition("@")[2])
            except RoutingError as exc:
                outcomes.append(self._verdict(row, exc.reply, exc.permanent, now))
                continue
            routed.setdefault(_shared(route), []).append(row)
        if not routed:
            return outcomes
        signed = await self._signed(original, rows[0].sender)
        for route, group in routed.items():
            sender, recipients = group[0].sender, [row.recipient for row in group]
            # Decided from the message, not remembered from its arrival: the queue
            # has no column for it, and the addresses and header are what need it.
            utf8 = needs_smtputf8(sender, recipients, original)
            replies = await self._transport.send(
                route.hops, sender, recipients, signed, smtputf8=utf8
            )
            outcomes += [self._judge(row, replies[row.recipient], now) for row in group]
            await self._count_transfer(group, replies, len(signed))
        return outcomes

    async def _signed(self, original: bytes, sender: str) -> bytes:
        if self._signer is None:
            return original
        return await self._signer.sign(original, sender) + original

    def _judge(self, row: QueuedDelivery, reply: Reply, now: datetime) -> _Outcome:
        if reply.ok:
            return _Outcome(row, Relayed(str(reply)), reply.host, reply.relay)
        return self._verdict(row, str(reply), reply.permanent, now, reply)

    def _verdict(
        self,
        row: QueuedDelivery,
        reply: str,
        permanent: bool,
        now: datetime,
        server: Reply | None = None,
    ) -> _Outcome:
        """Fail, defer or (past the queue lifetime) expire `row`; `server` is who said `reply`."""
        host, relay = (server.host, server.relay) if server is not None else ("", "none")
        if permanent:
            return _Outcome(row, Failed(reply), host, relay)
        if now >= row.expires_at:
            hours = (row.expires_at - row.created_at) / timedelta(hours=1)
            gave_up = Failed(f"{reply} (gave up: not delivered within {hours:g} hours)")
            return _Outcome(row, gave_up, host, relay, expired=True)
        retry_at = now + backoff(self._config.retry_base, row.attempts + 1)
        # The last try happens at expiry, not a whole backoff step before it.
        return _Outcome(row, Deferred(reply, min(retry_at, row.expires_at)), host, relay)

    async def _count_transfer(
        self, group: Sequence[QueuedDelivery], replies: dict[str, Reply], nbytes: int
    ) -> None:
        customer = group[0].customer_id
        if customer is not None and any(replies[row.recipient].ok for row in group):
            # One transaction carries the bytes once, however many recipients it has.
            await self._transfers.submit((customer, nbytes))

    async def _add_transfers(self, counts: Sequence[tuple[int, int]]) -> list[None]:
        by_customer: dict[int, int] = {}
        for customer, nbytes in counts:
            by_customer[customer] = by_customer.get(customer, 0) + nbytes
        for customer, nbytes in by_customer.items():
            await self._usage.add_transfer(customer, nbytes)
        return [None] * len(counts)

    async def _finish(self, outcomes: Sequence[_Outcome], original: bytes) -> None:
        if not outcomes:
            return
        owned, finished = await self._records.submit(outcomes)
        now = self._clock()
        failed: list[_Outcome] = []
        for outcome, ours in zip(outcomes, owned, strict=True):
            if not ours:
                log.warning("delivery %s was taken over by another worker", outcome.delivery.id)
                continue
            _log_attempt(outcome, now)
            if isinstance(outcome.result, Failed):
                failed.append(outcome)
        if failed:
            try:
                await self._bounce(failed, original, now)
            except Exception:
                # The rows are final already; a lost DSN is logged rather than the mail resent.
                log.exception("bounce for %s not sent", failed[0].delivery.message_id)
        if finished:
            # Not synced: after a crash the body may come back, with no row to send it
            # for, and the sweeper's orphan pass removes it; a sync per message was a
            # tenth of the worker's time draining a queue.
            await self._spool.remove(outcomes[0].delivery.message_id, durable=False)

    async def _record_all(self, messages: Sequence[Sequence[_Outcome]]) -> list[_Recorded]:
        """One transaction for the outcomes of every message in `messages`."""
        attempts = [Attempt(o.delivery, o.result) for outcomes in messages for o in outcomes]
        recorded = await self._queue.record(attempts, self._clock())
        owned = iter(recorded.owned)
        return [
            ([next(owned) for _ in outcomes], outcomes[0].delivery.message_id in recorded.finished)
            for outcomes in messages
        ]

    async def _bounce(self, failed: Sequence[_Outcome], original: bytes, now: datetime) -> None:
        first = failed[0].delivery
        if not should_bounce(first.sender):
            log.info("not bouncing %s: null sender (RFC 5321 §4.5.5)", first.message_id)
            return
        try:
            sender = EmailAddress.parse(first.sender)
        except InvalidAddress:
            log.warning("cannot bounce %s to %r: not an address", first.message_id, first.sender)
            return
        dsn = compose_dsn(
            reporting_mta=self._config.hostname,
            sender=str(sender),
            failures=[
                FailedRecipient(o.delivery.recipient, o.result.reply, o.host) for o in failed
            ],
            original=original,
            arrival=first.created_at,
            now=now,
        )
        await self._outbox.send("", [sender], dsn)
        # `id` is the bounced message's: grepping for it shows its whole story. (The DSN's
        # own queue id is not known here: the Outbox does not return one.)
        event(
            log,
            "bounce",
            id=first.message_id,
            to=str(sender),
            recipients=[outcome.delivery.recipient for outcome in failed],
        )


def _log_attempt(outcome: _Outcome, now: datetime) -> None:
    """One line per recipient and attempt; `id` is the queue id the 250 reply gave."""
    row = outcome.delivery
    event(
        log,
        "delivery",
        id=row.message_id,
        to=row.recipient,
        relay=outcome.relay,
        status=outcome.status,
        reply=outcome.result.reply,
        attempt=row.attempts + 1,
        delay=round((now - row.created_at).total_seconds(), 1),
    )


def _shared(route: Route) -> Route:
    """Recipients whose routes have the same hops share a transaction, whatever their domain."""
    return Route("", route.via, route.hops)
