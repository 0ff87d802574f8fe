"""Group-committed usage counters: many deliveries, one transaction.

Every delivery must have its bytes in the database before the SMTP edge
answers 250 (so database and disk agree), but one SQLite transaction per
message serialises all connections on the database's single writer. The
ledger queues each change and a single flusher commits whatever has queued
up since the last commit; every caller waits for the commit that holds its
change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from mailhost.interfaces import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class _Change:
    mailbox_id: int | None
    customer_id: int
    stored: int  # bytes added to (or, negative, freed from) the mailbox
    transferred: int  # bytes added to the customer's monthly transfer
    done: asyncio.Future[None]


class UsageLedger:
    def __init__(self, units: UnitOfWorkFactory, month: Callable[[], str]) -> None:
        self._units = units
        self._month = month
        self._pending: list[_Change] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(
        self, *, customer_id: int, mailbox_id: int | None, stored: int, transferred: int
    ) -> None:
        """Returns once the change is committed; raises what the commit raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Change(mailbox_id, customer_id, stored, transferred, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await asyncio.shield(done)

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._commit(batch)
            except Exception as exc:  # every waiter of this batch gets the failure
                for change in batch:
                    if not change.done.done():
                        change.done.set_exception(exc)
                continue
            for change in batch:
                if not change.done.done():
                    change.done.set_result(None)

    async def _commit(self, batch: list[_Change]) -> None:
        stored: defaultdict[int, int] = defaultdict(int)
        transferred: defaultdict[int, int] = defaultdict(int)
        for change in batch:
            if change.mailbox_id is not None and change.stored:
                stored[change.mailbox_id] += change.stored
            if change.transferred > 0:
                transferred[change.customer_id] += change.transferred
        month = self._month()
        async with self._units() as uow:
            # Sorted, so two nodes' flushers take row locks in the same order.
            for mailbox_id in sorted(stored):
                await uow.facilities.add_mailbox_used(mailbox_id, stored[mailbox_id])
            for customer_id in sorted(transferred):
                await uow.usage.add_transfer(customer_id, month, transferred[customer_id])
            await uow.commit()
