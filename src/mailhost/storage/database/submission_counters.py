"""SqlSubmissionCounters: hourly send counts (`send_counters`) and transfer notices sent.

Both tables have a unique key, and every change is one statement against it,
so connections on one node and nodes sharing a PostgreSQL database agree
without locks held across calls: the hourly count is a conditional upsert
(`INSERT … ON CONFLICT DO UPDATE … WHERE messages < limit RETURNING`), and a
notice is claimed by the one `INSERT … ON CONFLICT DO NOTHING` that inserts.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhost.storage.database.tables import SendCounter, UsageNotice


class SqlSubmissionCounters:
    """The SubmissionCounters of mailhost; each call is its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def messages_sent(self, user_id: int, hour: str) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(SendCounter.messages).where(
                    SendCounter.user_id == user_id, SendCounter.hour == hour
                )
            )
        return int(count or 0)

    async def reserve_message(self, user_id: int, hour: str, limit: int) -> bool:
        if limit < 1:
            return False
        async with self._sessions() as session, session.begin():
            insert = postgresql_insert if _on_postgresql(session) else sqlite_insert
            statement = (
                insert(SendCounter)
                .values(user_id=user_id, hour=hour, messages=1)
                .on_conflict_do_update(
                    index_elements=[SendCounter.user_id, SendCounter.hour],
                    set_={"messages": SendCounter.messages + 1},
                    # The row is left alone (and nothing returned) once the limit is reached.
                    where=SendCounter.messages < limit,
                )
                .returning(SendCounter.messages)
            )
            counted = (await session.execute(statement)).scalar_one_or_none()
        return counted is not None

    async def release_message(self, user_id: int, hour: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SendCounter)
                .where(
                    SendCounter.user_id == user_id,
                    SendCounter.hour == hour,
                    SendCounter.messages > 0,
                )
                .values(messages=SendCounter.messages - 1)
            )

    async def claim_notice(self, customer_id: int, month: str, level: int) -> bool:
        async with self._sessions() as session, session.begin():
            insert = postgresql_insert if _on_postgresql(session) else sqlite_insert
            statement = (
                insert(UsageNotice)
                .values(customer_id=customer_id, month=month, level=level)
                .on_conflict_do_nothing(
                    index_elements=[UsageNotice.customer_id, UsageNotice.month, UsageNotice.level]
                )
                .returning(UsageNotice.id)
            )
            inserted = (await session.execute(statement)).scalar_one_or_none()
        return inserted is not None

    async def forget_notice(self, customer_id: int, month: str, level: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(UsageNotice).where(
                    UsageNotice.customer_id == customer_id,
                    UsageNotice.month == month,
                    UsageNotice.level == level,
                )
            )


def _on_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"
