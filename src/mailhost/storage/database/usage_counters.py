"""SqlUsageCounters: a batch of usage changes in one short transaction, at the least cost.

The group-committed ledger (services/ledger.py) commits once per batch, and every
SMTP reply in the batch waits for that commit, so its cost is paid in latency.
On SQLite the batch runs as one call in a thread on a plain sqlite3 connection:
through aiosqlite every statement would be a round trip between the event loop
and aiosqlite's thread. On PostgreSQL it is Core statements on asyncpg.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from mailhost.storage.database.engine import sync_sqlite_engine
from mailhost.storage.database.facilities import MAILBOX_GROWTH
from mailhost.storage.database.usage import transfer_growth


class SqlUsageCounters:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite: Engine | None = sync_sqlite_engine(engine)

    async def add(
        self, stored: Mapping[int, int], transferred: Mapping[int, int], month: str
    ) -> None:
        """Grow mailboxes' used bytes and customers' monthly transfer, all or nothing."""
        if self._sqlite is not None:
            await asyncio.to_thread(self._add_in_thread, self._sqlite, stored, transferred, month)
            return
        async with self._engine.begin() as connection:
            await connection.run_sync(_apply, stored, transferred, month)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()

    @staticmethod
    def _add_in_thread(
        engine: Engine, stored: Mapping[int, int], transferred: Mapping[int, int], month: str
    ) -> None:
        with engine.begin() as connection:
            _apply(connection, stored, transferred, month)


def _apply(
    connection: Connection, stored: Mapping[int, int], transferred: Mapping[int, int], month: str
) -> None:
    # One executemany per table, sorted so that two nodes' batches take row locks in
    # the same order.
    if stored:
        growth = [{"mailbox_id": box, "delta": stored[box]} for box in sorted(stored)]
        connection.execute(MAILBOX_GROWTH, growth)
    if transferred:
        transfer = [
            {"customer_id": customer, "month": month, "transfer_bytes": transferred[customer]}
            for customer in sorted(transferred)
        ]
        connection.execute(transfer_growth(connection.dialect.name), transfer)
