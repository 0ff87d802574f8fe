"""The provider's view of the outbound queue: list, retry now, delete, read the delivery log."""

from __future__ import annotations

from collections.abc import Sequence

from mailhost.errors import NotFound
from mailhost.interfaces import DeliveryLogRecord, DeliveryQueue, QueuedDelivery, Spool
from mailhost.model.actors import Actor
from mailhost.services import access
from mailhost.services.usage import utc_now


class MailQueueService:
    def __init__(self, queue: DeliveryQueue, spool: Spool) -> None:
        self._queue = queue
        self._spool = spool

    async def queued(self, actor: Actor, limit: int = 1000) -> Sequence[QueuedDelivery]:
        access.require_provider(actor, "see the outbound queue")
        return await self._queue.queued(limit)

    async def retry(self, actor: Actor, delivery_id: int | None) -> int:
        """Make one row (or all, for None) due now; returns how many."""
        access.require_provider(actor, "retry queued mail")
        count = await self._queue.retry(delivery_id, utc_now())
        if delivery_id is not None and count == 0:
            raise NotFound(f"no queued delivery {delivery_id}")
        return count

    async def delete(self, actor: Actor, delivery_id: int) -> QueuedDelivery:
        """Drop one recipient from the queue without a bounce (logged as deleted)."""
        access.require_provider(actor, "delete queued mail")
        removed = await self._queue.delete(delivery_id, utc_now())
        if removed is None:
            raise NotFound(f"no queued delivery {delivery_id}")
        if await self._queue.pending(removed.message_id) == 0:
            await self._spool.remove(removed.message_id)
        return removed

    async def delivery_log(self, actor: Actor, limit: int = 100) -> Sequence[DeliveryLogRecord]:
        access.require_provider(actor, "read the delivery log")
        return await self._queue.log(limit)
