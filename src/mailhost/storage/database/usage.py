"""SqlUsage and SqlAuditLog: monthly transfer counters and the change history."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.model.records import AuditRecord
from mailhost.storage.database.directory import insert_unique_or_none
from mailhost.storage.database.tables import AuditEntry, MonthlyUsage


class SqlUsage:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_transfer(self, customer_id: int, month: str, nbytes: int) -> None:
        row = MonthlyUsage(customer_id=customer_id, month=month, transfer_bytes=0)
        # First byte of the month creates the row; a concurrent creator is fine.
        await insert_unique_or_none(self._session, row)
        await self._session.execute(
            update(MonthlyUsage)
            .where(MonthlyUsage.customer_id == customer_id, MonthlyUsage.month == month)
            .values(transfer_bytes=MonthlyUsage.transfer_bytes + nbytes)
        )

    async def transfer(self, customer_id: int, month: str) -> int:
        value = await self._session.scalar(
            select(MonthlyUsage.transfer_bytes).where(
                MonthlyUsage.customer_id == customer_id, MonthlyUsage.month == month
            )
        )
        return int(value or 0)


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
        return [AuditRecord(r.id, r.at, r.actor, r.action, r.target, r.customer_id) for r in rows]
