"""SqlDeliveryQueue: the durable outbound queue over `deliveries` and `delivery_log`.

A row is one recipient of one spooled message, present while delivery is
pending; its final outcome deletes it and the `delivery_log` keeps the story,
with the row's customer and domain (read from the row in the same statement),
which say who may read it.
Workers claim due rows by setting a lease (`leased_until`) in one statement:
on PostgreSQL the candidate rows are picked with `FOR UPDATE SKIP LOCKED`, so
workers on several nodes never block on nor share a row; on SQLite the single
UPDATE is atomic under the database's write lock. A worker that dies loses
its lease when it runs out and another worker takes the rows over. The worker
records the attempts of several messages in one transaction (group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhost.interfaces import (
    Attempt,
    AttemptResult,
    Deferred,
    Failed,
    QueuedDelivery,
    RecordedAttempts,
    Relayed,
    SpoolRef,
)
from mailhost.model.delivery_log import DeliveryLogPage, DeliveryLogRecord
from mailhost.storage.database.tables import Customer, Delivery, DeliveryLogEntry, Domain

QUEUED = "queued"
# Longer than one SMTP transaction can take (connect + commands + DATA timeouts),
# so a live worker never loses a row it is still sending.
DEFAULT_LEASE = timedelta(minutes=15)


def utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every stored one is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _record(row: Delivery) -> QueuedDelivery:
    return QueuedDelivery(
        id=row.id,
        message_id=row.message_id,
        sender=row.sender,
        recipient=row.recipient,
        customer_id=row.customer_id,
        size=row.size,
        attempts=row.attempts,
        created_at=utc(row.created_at),
        next_attempt_at=utc(row.next_attempt_at),
        expires_at=utc(row.expires_at),
        leased_until=None if row.leased_until is None else utc(row.leased_until),
        last_reply=row.last_reply,
    )


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(Delivery.leased_until.is_(None), Delivery.leased_until < now)


def _not_held() -> ColumnElement[bool]:
    """Mail of a disabled customer or domain stays queued, untouched (no attempt, no
    bounce), until it is enabled again; mailhost's own mail (both NULL) always goes."""
    customer_off = exists().where(Customer.id == Delivery.customer_id, Customer.enabled.is_(False))
    domain_off = exists().where(Domain.id == Delivery.domain_id, Domain.enabled.is_(False))
    return and_(~customer_off, ~domain_off)


class SqlDeliveryQueue:
    """The DeliveryQueue of mailhost; each call is its own short transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], lease: timedelta = DEFAULT_LEASE
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._work = asyncio.Event()

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        body: SpoolRef,
        customer_id: int | None,
        domain_id: int | None,
        now: datetime,
        expires_at: datetime,
    ) -> Sequence[int]:
        now, expires_at = utc(now), utc(expires_at)
        rows = [
            Delivery(
                message_id=body.message_id,
                sender=sender,
                recipient=recipient,
                customer_id=customer_id,
                domain_id=domain_id,
                size=body.size,
                status=QUEUED,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
                expires_at=expires_at,
                leased_until=None,
                last_reply="",
            )
            for recipient in recipients
        ]
        async with self._sessions.begin() as session:
            session.add_all(rows)
            await session.flush()
            ids = [row.id for row in rows]
        self._work.set()
        return ids

    async def claim_due(self, now: datetime, limit: int) -> Sequence[QueuedDelivery]:
        now = utc(now)
        candidates = (
            select(Delivery.id)
            .where(
                Delivery.status == QUEUED,
                Delivery.next_attempt_at <= now,
                _free(now),
                _not_held(),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing here
        )
        claim = (
            update(Delivery)
            # The lease test is repeated: under SQLite the subquery alone is not a lock.
            .where(Delivery.id.in_(candidates.scalar_subquery()), _free(now))
            .values(leased_until=now + self._lease)
            .returning(Delivery)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            rows = (await session.execute(claim)).scalars().all()
            claimed = [_record(row) for row in rows]
        return sorted(claimed, key=lambda d: (d.next_attempt_at, d.id))

    async def record(self, attempts: Sequence[Attempt], now: datetime) -> RecordedAttempts:
        # One transaction for a whole group of attempts: the commit (a sync of the
        # database's log) is what costs, not the few statements in it.
        owners: Owners = {}
        async with self._sessions.begin() as session:
            for attempt in attempts:
                if isinstance(attempt.result, Deferred):
                    owners.update(await _defer(session, attempt.delivery, attempt.result))
            for lease, ids in _final_by_lease(attempts).items():
                owners.update(await _remove(session, lease, ids))
            entries = [
                _log_values(attempt, now, owners[attempt.delivery.id])
                for attempt in attempts
                if attempt.delivery.id in owners
            ]
            if entries:
                await session.execute(insert(DeliveryLogEntry), entries)
            finished = await _finished(session, {a.delivery.message_id for a in attempts})
        return RecordedAttempts([a.delivery.id in owners for a in attempts], finished)

    async def pending(self, message_id: str) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.message_id == message_id)
            )
        return int(count or 0)

    async def queued(self, limit: int) -> Sequence[QueuedDelivery]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Delivery).order_by(Delivery.created_at, Delivery.id).limit(limit)
            )
            return [_record(row) for row in rows]

    async def retry(self, delivery_id: int | None, now: datetime) -> int:
        """Make rows due now (all, or one); rows a worker holds keep their lease."""
        where = [Delivery.status == QUEUED]
        if delivery_id is not None:
            where.append(Delivery.id == delivery_id)
        async with self._sessions.begin() as session:
            changed = await session.execute(
                update(Delivery)
                .where(*where)
                .values(next_attempt_at=utc(now))
                .execution_options(synchronize_session=False)
            )
        self._work.set()
        return _rowcount(changed)

    async def delete(self, delivery_id: int, now: datetime) -> QueuedDelivery | None:
        async with self._sessions.begin() as session:
            row = await session.get(Delivery, delivery_id, with_for_update=True)
            if row is None:
                return None
            removed = _record(row)
            entry = _log_entry(removed, "deleted", "deleted by the operator", now)
            entry.customer_id, entry.domain_id = row.customer_id, row.domain_id
            await session.delete(row)
            session.add(entry)
        return removed

    async def log(
        self,
        limit: int,
        offset: int = 0,
        *,
        search: str = "",
        status: str | None = None,
        customer_id: int | None = None,
        domain_id: int | None = None,
    ) -> DeliveryLogPage:
        where: list[ColumnElement[bool]] = []
        if search:
            # A part of an address or id, whatever its case; % and _ are matched as typed.
            needle = search.lower()
            where.append(
                or_(
                    *(
                        func.lower(column).contains(needle, autoescape=True)
                        for column in (
                            DeliveryLogEntry.sender,
                            DeliveryLogEntry.recipient,
                            DeliveryLogEntry.message_id,
                        )
                    )
                )
            )
        if status is not None:
            where.append(DeliveryLogEntry.status == status)
        if customer_id is not None:
            where.append(DeliveryLogEntry.customer_id == customer_id)
        if domain_id is not None:
            where.append(DeliveryLogEntry.domain_id == domain_id)
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.count()).select_from(DeliveryLogEntry).where(*where)
            )
            rows = await session.scalars(
                select(DeliveryLogEntry)
                .where(*where)
                .order_by(DeliveryLogEntry.at.desc(), DeliveryLogEntry.id.desc())
                .limit(limit)
                .offset(offset)
            )
            entries = [
                DeliveryLogRecord(
                    at=utc(row.at),
                    delivery_id=row.delivery_id,
                    message_id=row.message_id,
                    sender=row.sender,
                    recipient=row.recipient,
                    status=row.status,
                    remote_reply=row.remote_reply,
                )
                for row in rows
            ]
        return DeliveryLogPage(entries=entries, total=int(total or 0))

    async def wait_for_work(self, seconds: float) -> None:
        # Other nodes' enqueues are not seen here: the timeout is their polling interval.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), seconds)
        self._work.clear()


# Rows recorded: delivery id → (customer id, domain id), copied into their log entries.
Owners = dict[int, tuple[int | None, int | None]]


def _owned(delivery: QueuedDelivery) -> ColumnElement[bool]:
    """Still leased as this worker claimed it: a row taken over by another is not ours."""
    return and_(Delivery.id == delivery.id, Delivery.leased_until == delivery.leased_until)


async def _defer(session: AsyncSession, delivery: QueuedDelivery, attempt: Deferred) -> Owners:
    changed = await session.execute(
        update(Delivery)
        .where(_owned(delivery))
        .values(
            attempts=Delivery.attempts + 1,
            next_attempt_at=utc(attempt.retry_at),
            leased_until=None,
            last_reply=attempt.reply,
        )
        .returning(Delivery.id, Delivery.customer_id, Delivery.domain_id)
        .execution_options(synchronize_session=False)
    )
    return {row_id: (customer, domain) for row_id, customer, domain in changed}


def _final_by_lease(attempts: Sequence[Attempt]) -> dict[datetime | None, list[int]]:
    """Rows whose outcome is final, by lease: a claim leases all its rows alike."""
    by_lease: dict[datetime | None, list[int]] = {}
    for attempt in attempts:
        if not isinstance(attempt.result, Deferred):
            by_lease.setdefault(attempt.delivery.leased_until, []).append(attempt.delivery.id)
    return by_lease


async def _remove(session: AsyncSession, lease: datetime | None, ids: Sequence[int]) -> Owners:
    removed = await session.execute(
        delete(Delivery)
        .where(Delivery.id.in_(ids), Delivery.leased_until == lease)
        .returning(Delivery.id, Delivery.customer_id, Delivery.domain_id)
        .execution_options(synchronize_session=False)
    )
    return {row_id: (customer, domain) for row_id, customer, domain in removed}


async def _finished(session: AsyncSession, message_ids: set[str]) -> frozenset[str]:
    left = await session.scalars(
        select(Delivery.message_id).where(Delivery.message_id.in_(message_ids)).distinct()
    )
    return frozenset(message_ids.difference(left))


def _log_values(
    attempt: Attempt, now: datetime, owner: tuple[int | None, int | None]
) -> dict[str, object]:
    """A `delivery_log` row for a bulk INSERT; the owner is the one the row had."""
    delivery = attempt.delivery
    return {
        "at": utc(now),
        "customer_id": owner[0],
        "domain_id": owner[1],
        "delivery_id": delivery.id,
        "message_id": delivery.message_id,
        "sender": delivery.sender,
        "recipient": delivery.recipient,
        "status": _status(attempt.result),
        "remote_reply": attempt.result.reply,
    }


def _status(attempt: AttemptResult) -> str:
    if isinstance(attempt, Relayed):
        return "delivered"
    if isinstance(attempt, Failed):
        return "failed"
    return "deferred"


def _log_entry(
    delivery: QueuedDelivery, status: str, reply: str, now: datetime
) -> DeliveryLogEntry:
    return DeliveryLogEntry(
        at=utc(now),
        delivery_id=delivery.id,
        message_id=delivery.message_id,
        sender=delivery.sender,
        recipient=delivery.recipient,
        status=status,
        remote_reply=reply,
    )


def _rowcount(result: object) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0
