"""SqlAppPasswords: domain users' app passwords (`app_passwords`), as frozen records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.errors import AlreadyExists
from mailhost.model.records import AppPasswordRecord, AppPasswordSecret
from mailhost.storage.database.directory import insert_unique
from mailhost.storage.database.tables import AppPassword
from mailhost.storage.database.web_access import aware


def _maybe(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def _record(row: AppPassword) -> AppPasswordRecord:
    return AppPasswordRecord(
        row.id,
        row.user_id,
        row.name,
        aware(row.created_at),
        _maybe(row.last_used_at),
        row.last_used_address,
    )


class SqlAppPasswords:
    """One instance per unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        user_id: int,
        subject: str,
        name: str,
        prefix: str,
        password_hash: str,
        now: datetime,
    ) -> AppPasswordRecord:
        row = AppPassword(
            user_id=user_id,
            subject=subject,
            name=name,
            prefix=prefix,
            password_hash=password_hash,
            created_at=now,
        )
        await insert_unique(
            self._session, row, AlreadyExists(f"{subject} already has an app password {name!r}")
        )
        return _record(row)

    async def of_user(self, user_id: int) -> Sequence[AppPasswordRecord]:
        rows = await self._session.scalars(
            select(AppPassword).where(AppPassword.user_id == user_id).order_by(AppPassword.id)
        )
        return [_record(row) for row in rows]

    async def remove(self, user_id: int, app_password_id: int) -> bool:
        """Delete the user's app password; False if the user has none with that id."""
        result = await self._session.execute(
            delete(AppPassword).where(
                AppPassword.id == app_password_id, AppPassword.user_id == user_id
            )
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def secrets(self, user_id: int, prefix: str) -> Sequence[AppPasswordSecret]:
        rows = await self._session.scalars(
            select(AppPassword)
            .where(AppPassword.user_id == user_id, AppPassword.prefix == prefix)
            .order_by(AppPassword.id)
        )
        return [
            AppPasswordSecret(
                row.id,
                row.name,
                row.subject,
                row.password_hash,
                _maybe(row.last_used_at),
                row.last_used_address,
            )
            for row in rows
        ]

    async def touch(self, app_password_id: int, now: datetime, address: str) -> None:
        await self._session.execute(
            update(AppPassword)
            .where(AppPassword.id == app_password_id)
            .values(last_used_at=now, last_used_address=address[:64])
        )
