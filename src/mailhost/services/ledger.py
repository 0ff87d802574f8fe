"""Group-committed usage counters: many deliveries, one transaction.

Every delivery must have its bytes in the database before the SMTP edge
answers 250 (so database and disk agree), but one SQLite transaction per
message serialises all connections on the database's single writer. The
ledger queues each change and a single flusher commits whatever has queued
up since the last commit (mailhost.batching); every caller waits for the
commit that holds its change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailhost.batching import GroupCommit
from mailhost.interfaces import UsageCounters


@dataclass(frozen=True, slots=True)
class _Change:
    mailbox_id: int | None
    customer_id: int
    stored: int  # bytes added to (or, negative, freed from) the mailbox
    transferred: int  # bytes added to the customer's monthly transfer


class UsageLedger:
    def __init__(self, counters: UsageCounters, month: Callable[[], str]) -> None:
        self._counters = counters
        self._month = month
        self._group: GroupCommit[_Change, None] = GroupCommit(self._commit)

    def record(
        self, *, customer_id: int, mailbox_id: int | None, stored: int, transferred: int
    ) -> asyncio.Future[None]:
        """Done once the change is committed; raises what the commit raised. The change
        is queued at the call, so the caller may store its copy meanwhile."""
        return self._group.enqueue(_Change(mailbox_id, customer_id, stored, transferred))

    async def _commit(self, batch: Sequence[_Change]) -> list[None]:
        stored: defaultdict[int, int] = defaultdict(int)
        transferred: defaultdict[int, int] = defaultdict(int)
        for change in batch:
            if change.mailbox_id is not None and change.stored:
                stored[change.mailbox_id] += change.stored
            if change.transferred > 0:
                transferred[change.customer_id] += change.transferred
        await self._counters.add(stored, transferred, self._month())
        return [None] * len(batch)
