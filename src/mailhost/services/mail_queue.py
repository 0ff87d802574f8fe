"""The outbound queue and its delivery log: the provider lists, retries and deletes queued
mail; the provider, customers and domain managers read the log, each only their own."""

from __future__ import annotations

from collections.abc import Sequence

from mailhost.errors import NotFound, NotPermitted
from mailhost.interfaces import DeliveryQueue, QueuedDelivery, Spool, UnitOfWorkFactory
from mailhost.model.actors import Actor, CustomerActor, DomainActor, UserActor
from mailhost.model.delivery_log import DeliveryLogPage, DeliveryLogQuery
from mailhost.services import access
from mailhost.services.usage import utc_now


class MailQueueService:
    def __init__(self, queue: DeliveryQueue, spool: Spool, units: UnitOfWorkFactory) -> None:
        self._queue = queue
        self._spool = spool
        self._units = units

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

    async def delivery_log(
        self, actor: Actor, query: DeliveryLogQuery | None = None
    ) -> DeliveryLogPage:
        """The log entries `actor` may read that match `query`, newest first: the provider
        all (mailhost's own mail too), a customer its domains' (also of domains it has
        since removed), a domain's manager its domain's. A domain filter naming a domain
        the actor may not see is "not hosted here", as everywhere."""
        query = DeliveryLogQuery() if query is None else query
        if isinstance(actor, UserActor):
            raise NotPermitted(
                "only the provider, a customer or a domain's manager may read the delivery log"
            )
        customer_id = domain_id = None
        if isinstance(actor, CustomerActor | DomainActor):
            customer_id = actor.customer_id
        if isinstance(actor, DomainActor):
            domain_id = actor.domain_id
        if query.domain is not None:
            async with self._units() as uow:
                found = await uow.directory.domain_by_name(query.domain)
                domain_id = access.visible_domain(actor, found, query.domain).id
        return await self._queue.log(
            query.limit,
            query.offset,
            search=query.search,
            status=query.status,
            customer_id=customer_id,
            domain_id=domain_id,
        )
