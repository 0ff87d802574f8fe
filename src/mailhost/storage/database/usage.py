"""SqlUsage and SqlAuditLog: monthly transfer counters and the change history."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from sqlalchemy import Insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.model.records import AuditRecord
from mailhost.storage.database.tables import AuditEntry, MonthlyUsage


@functools.lru_cache(maxsize=2)
def transfer_growth(dialect: str) -> Insert:
    """One upsert: the month's first byte creates the row, later ones add to it, and
    concurrent writers never lose an increment. Parameters: customer_id, month, transfer_bytes."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(MonthlyUsage)
    return statement.on_conflict_do_update(
        index_elements=[MonthlyUsage.customer_id, MonthlyUsage.month],
        set_={"transfer_bytes": MonthlyUsage.transfer_bytes + statement.excluded.transfer_bytes},
    )


class SqlUsage:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_transfer(self, customer_id: int, month: str, nbytes: int) -> None:
        dialect = self._session.get_bind().dialect.name
        growth = {"customer_id": customer_id, "month": month, "transfer_bytes": nbytes}
        await self._session.execute(transfer_growth(dialect), growth)

    async def transfer(self, customer_id: int, month: str) -> int:
        return (await self.transfers([customer_id], month)).get(customer_id, 0)

    async def transfers(self, customer_ids: Sequence[int], month: str) -> Mapping[int, int]:
        rows = await self._session.execute(
            select(MonthlyUsage.customer_id, MonthlyUsage.transfer_bytes).where(
                MonthlyUsage.customer_id.in_(customer_ids), MonthlyUsage.month == month
            )
        )
        return {customer_id: int(nbytes) for customer_id, nbytes in rows}


class SqlAuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self, actor: str, action: str, target: str, customer_id: int | None, detail: str = ""
    ) -> None:
        self._session.add(
            AuditEntry(
                actor=actor, action=action, target=target, customer_id=customer_id, detail=detail
            )
        )

    async def entries(self, customer_id: int | None, limit: int = 100) -> Sequence[AuditRecord]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if customer_id is not None:
            query = query.where(AuditEntry.customer_id == customer_id)
        rows = await self._session.scalars(query)
        return [
            AuditRecord(r.id, r.at, r.actor, r.action, r.target, r.customer_id, r.detail)
            for r in rows
        ]
