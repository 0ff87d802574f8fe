"""SqlLoginAttempts: the `login_attempts` table, read by the penalties and the history pages.

Each call is one short transaction of its own, so every process and node sharing
the database sees every other's failures at once. A failure "stands" until a
later success of the same client on the same account forgives it; that is read
from the table as it is (a later success row), so nothing is ever rewritten but
a repeated success, which moves its own line's time forward instead of adding
one line per poll of a mail program.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from mailhost.model.logins import AttemptFacts, AttemptRecord, FailureRun, NoticeDue
from mailhost.storage.database.credentials import SUBJECT_COLUMNS
from mailhost.storage.database.tables import Domain, DomainUser, LoginAttempt

_MAX_ACCOUNT = 330
_MAX_CLIENT = 64
_MAX_TEXT = 100


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _standing() -> ColumnElement[bool]:
    """A failure that no later success of its client on its account has forgiven."""
    later = aliased(LoginAttempt)
    forgiven = exists().where(
        later.client == LoginAttempt.client,
        later.kind == LoginAttempt.kind,
        later.account == LoginAttempt.account,
        later.success.is_(True),
        later.id > LoginAttempt.id,
    )
    return and_(LoginAttempt.success.is_(False), ~forgiven)


def _subject_column(kind: str) -> str | None:
    return SUBJECT_COLUMNS.get(kind)


# The statements every login runs, built once with bound parameters: building them
# (aliases, EXISTS, subqueries) and their cache keys anew took most of a cached
# login's time in SQLAlchemy (docs/performance.md, POP3 retrieval).
def _failures_from_statement() -> Select[int, datetime | None]:
    recent = (
        select(LoginAttempt.at)
        .where(LoginAttempt.client == bindparam("client"), LoginAttempt.at >= bindparam("since"))
        .where(_standing())
        .order_by(LoginAttempt.at.desc())
        .limit(bindparam("limit", type_=Integer))
        .subquery()
    )
    return select(func.count(), func.max(recent.c.at))


def _latest_statement() -> Select[*tuple[object, ...]]:
    subjects = [getattr(LoginAttempt, name) for name in SUBJECT_COLUMNS.values()]
    return (
        select(
            LoginAttempt.id,
            LoginAttempt.success,
            LoginAttempt.service,
            LoginAttempt.app_password_name,
            *subjects,
        )
        .where(
            LoginAttempt.kind == bindparam("kind"),
            LoginAttempt.account == bindparam("account"),
            LoginAttempt.client == bindparam("client"),
        )
        .order_by(LoginAttempt.id.desc())
        .limit(1)
    )


def _touch_statement() -> Update:
    # On the table, not the class: no ORM synchronisation of loaded rows is needed.
    table = cast(Table, LoginAttempt.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("line"))
        .values(at=bindparam("at"), detail=bindparam("detail"))
    )


_FAILURES_FROM = _failures_from_statement()
_LATEST = _latest_statement()
_TOUCH = _touch_statement()


class SqlLoginAttempts:
    """The LoginAttempts of mailhost."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._notices = asyncio.Event()

    async def failures_from(self, client: str, since: datetime, limit: int) -> FailureRun:
        values = {"client": client[:_MAX_CLIENT], "since": since, "limit": limit}
        async with self._sessions() as session:
            row = (await session.execute(_FAILURES_FROM, values)).one()
        count, latest = row
        return FailureRun(int(count or 0), None if latest is None else _aware(latest))

    async def failures_of(self, kind: str, account: str, since: datetime, limit: int) -> int:
        recent = (
            select(LoginAttempt.id)
            .where(
                LoginAttempt.kind == kind,
                LoginAttempt.account == account[:_MAX_ACCOUNT],
                LoginAttempt.at >= since,
            )
            .where(_standing())
            .limit(limit)
            .subquery()
        )
        async with self._sessions() as session:
            count = await session.scalar(select(func.count()).select_from(recent))
        return int(count or 0)

    async def record(self, attempt: AttemptFacts) -> None:
        column = _subject_column(attempt.kind)
        subject: dict[str, int] = {}
        if column is not None and attempt.subject_id is not None:
            subject[column] = attempt.subject_id
        client, account = attempt.client.address[:_MAX_CLIENT], attempt.account[:_MAX_ACCOUNT]
        notice = False
        async with self._sessions() as session, session.begin():
            if attempt.success:
                if await self._repeat(session, attempt, client, account, subject):
                    return
                if attempt.kind == "user" and attempt.subject_id is not None:
                    notice = await _new_address_after_failures(session, attempt.subject_id, client)
            session.add(
                LoginAttempt(
                    at=attempt.at,
                    service=attempt.client.service[:16],
                    client=client,
                    kind=attempt.kind,
                    account=account,
                    success=attempt.success,
                    app_password_name=_bounded(attempt.app_password),
                    detail=attempt.detail[:_MAX_TEXT],
                    notice_due=notice,
                    **subject,
                )
            )
        if notice:
            self._notices.set()

    async def _repeat(
        self,
        session: AsyncSession,
        attempt: AttemptFacts,
        client: str,
        account: str,
        subject: dict[str, int],
    ) -> bool:
        """A success like the client's previous attempt on the account moves that line's
        time forward instead of adding one; True if it did."""
        values = {"kind": attempt.kind, "account": account, "client": client}
        latest = (await session.execute(_LATEST, values)).first()
        if (
            latest is None
            or not latest.success
            or latest.service != attempt.client.service[:16]
            or latest.app_password_name != _bounded(attempt.app_password)
            or any(latest._mapping[name] != value for name, value in subject.items())
        ):
            return False
        touch = {"line": latest.id, "at": attempt.at, "detail": attempt.detail[:_MAX_TEXT]}
        await session.execute(_TOUCH, touch)
        return True

    async def history(self, kind: str, subject_id: int, limit: int) -> Sequence[AttemptRecord]:
        column = _subject_column(kind)
        if column is None:
            return ()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(LoginAttempt)
                .where(LoginAttempt.kind == kind, getattr(LoginAttempt, column) == subject_id)
                .order_by(LoginAttempt.id.desc())
                .limit(limit)
            )
            return [
                AttemptRecord(
                    _aware(row.at),
                    row.service,
                    row.client,
                    row.success,
                    row.app_password_name,
                    row.detail,
                )
                for row in rows
            ]

    async def due_notices(self, limit: int) -> Sequence[NoticeDue]:
        query = (
            select(LoginAttempt, DomainUser, Domain.name)
            .join(DomainUser, DomainUser.id == LoginAttempt.user_id)
            .join(Domain, Domain.id == DomainUser.domain_id)
            .where(LoginAttempt.notice_due.is_(True))
            .order_by(LoginAttempt.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            NoticeDue(
                attempt.id,
                _aware(attempt.at),
                attempt.service,
                attempt.client,
                attempt.app_password_name,
                f"{user.username}@{domain}",
                user.recovery_email,
                user.login_notices,
            )
            for attempt, user, domain in rows
        ]

    async def claim_notice(self, attempt_id: int) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(LoginAttempt)
                .where(LoginAttempt.id == attempt_id, LoginAttempt.notice_due.is_(True))
                .values(notice_due=False)
            )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def wait_for_notices(self, seconds: float) -> None:
        # Other nodes' notices are not seen here: the timeout is their polling interval.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._notices.wait(), seconds)
        self._notices.clear()

    async def prune(self, before: datetime, anonymous_before: datetime, keep: int) -> int:
        anonymous = and_(*(getattr(LoginAttempt, c).is_(None) for c in SUBJECT_COLUMNS.values()))
        ranked = (
            select(
                LoginAttempt.id,
                func.row_number()
                .over(
                    partition_by=(LoginAttempt.kind, LoginAttempt.account),
                    order_by=LoginAttempt.id.desc(),
                )
                .label("newer"),
            )
            .where(LoginAttempt.at < anonymous_before)
            .subquery()
        )
        surplus = select(ranked.c.id).where(ranked.c.newer > keep)
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(LoginAttempt).where(
                    or_(
                        LoginAttempt.at < before,
                        and_(LoginAttempt.at < anonymous_before, anonymous),
                        LoginAttempt.id.in_(surplus),
                    )
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def notices_wanted(self, user_id: int) -> bool:
        async with self._sessions() as session:
            wanted = await session.scalar(
                select(DomainUser.login_notices).where(DomainUser.id == user_id)
            )
        return bool(wanted)

    async def want_notices(self, user_id: int, wanted: bool) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(DomainUser).where(DomainUser.id == user_id).values(login_notices=wanted)
            )


async def _new_address_after_failures(session: AsyncSession, user_id: int, client: str) -> bool:
    """The user never succeeded from `client`, and failed since its latest success."""
    mine = LoginAttempt.user_id == user_id
    seen = await session.scalar(
        select(LoginAttempt.id)
        .where(mine, LoginAttempt.success.is_(True), LoginAttempt.client == client)
        .limit(1)
    )
    if seen is not None:
        return False
    # By time, not id: a repeated success keeps its first line's id but moves its time.
    last_success = await session.scalar(
        select(func.max(LoginAttempt.at)).where(mine, LoginAttempt.success.is_(True))
    )
    failures = select(LoginAttempt.id).where(mine, LoginAttempt.success.is_(False))
    if last_success is not None:
        failures = failures.where(LoginAttempt.at > last_success)
    return await session.scalar(failures.limit(1)) is not None


def _bounded(text: str | None) -> str | None:
    return None if text is None else text[:_MAX_TEXT]
