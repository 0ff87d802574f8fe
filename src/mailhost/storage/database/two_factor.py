"""SqlTwoFactor: TOTP enrolments and their recovery codes (`two_factor_enrolments`,
`recovery_codes`), as frozen records; single use is one conditional UPDATE each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.interfaces import LoginKind
from mailhost.model.records import TwoFactorRecord
from mailhost.storage.database.credentials import of_subject, subject_fields
from mailhost.storage.database.tables import RecoveryCode, TwoFactorEnrolment
from mailhost.storage.database.web_access import aware


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class SqlTwoFactor:
    """One instance per unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def of_login(self, kind: LoginKind, subject_id: int) -> TwoFactorRecord | None:
        row = await self._session.scalar(
            select(TwoFactorEnrolment).where(of_subject(TwoFactorEnrolment, kind, subject_id))
        )
        if row is None:
            return None
        left = await self._session.scalar(
            select(func.count()).where(
                RecoveryCode.enrolment_id == row.id, RecoveryCode.used_at.is_(None)
            )
        )
        return TwoFactorRecord(
            row.id,
            row.subject,
            row.secret,
            None if row.enabled_at is None else aware(row.enabled_at),
            row.last_step,
            int(left or 0),
        )

    async def start(
        self, kind: LoginKind, subject_id: int, subject: str, secret: str, now: datetime
    ) -> None:
        """A pending enrolment with `secret`, in place of any the login had (and its codes)."""
        await self.remove(kind, subject_id)
        self._session.add(
            TwoFactorEnrolment(
                **subject_fields(kind, subject_id, subject), secret=secret, created_at=now
            )
        )
        await self._session.flush()

    async def confirm(
        self, enrolment_id: int, step: int, now: datetime, digests: Sequence[str]
    ) -> bool:
        """Turn a pending enrolment on with the step of its first code and new recovery
        codes; False if it is on already (another request confirmed it first)."""
        result = await self._session.execute(
            update(TwoFactorEnrolment)
            .where(TwoFactorEnrolment.id == enrolment_id, TwoFactorEnrolment.enabled_at.is_(None))
            .values(enabled_at=now, last_step=step)
        )
        if _rowcount(result) != 1:
            return False
        await self.replace_recovery_codes(enrolment_id, digests)
        return True

    async def use_step(self, enrolment_id: int, step: int) -> bool:
        """Accept a code of time step `step` once: False if it or a later one was used."""
        result = await self._session.execute(
            update(TwoFactorEnrolment)
            .where(
                TwoFactorEnrolment.id == enrolment_id,
                TwoFactorEnrolment.enabled_at.is_not(None),
                or_(TwoFactorEnrolment.last_step.is_(None), TwoFactorEnrolment.last_step < step),
            )
            .values(last_step=step)
        )
        return _rowcount(result) == 1

    async def use_recovery_code(self, enrolment_id: int, digest: str, now: datetime) -> bool:
        """Spend one recovery code; False if it is not one of the enrolment's unused codes."""
        result = await self._session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.enrolment_id == enrolment_id,
                RecoveryCode.digest == digest,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return _rowcount(result) == 1

    async def replace_recovery_codes(self, enrolment_id: int, digests: Sequence[str]) -> None:
        await self._session.execute(
            delete(RecoveryCode).where(RecoveryCode.enrolment_id == enrolment_id)
        )
        self._session.add_all(
            RecoveryCode(enrolment_id=enrolment_id, digest=digest) for digest in digests
        )
        await self._session.flush()

    async def remove(self, kind: LoginKind, subject_id: int) -> None:
        """The login's enrolment and its recovery codes (explicitly: SQLite's foreign-key
        pragma is not relied on)."""
        mine = of_subject(TwoFactorEnrolment, kind, subject_id)
        await self._session.execute(
            delete(RecoveryCode).where(
                RecoveryCode.enrolment_id.in_(select(TwoFactorEnrolment.id).where(mine))
            )
        )
        await self._session.execute(delete(TwoFactorEnrolment).where(mine))
