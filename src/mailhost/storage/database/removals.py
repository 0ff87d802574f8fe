"""The removal journal (`pending_removals`): files still to delete after rows were removed.

Removing a mailbox, user, domain or customer deletes rows and, in the same
transaction, writes here what of it lives on disk: a Maildir (by the mailbox's
storage key), a certificate (by host name), the spool file of queued mail that
went with it (by message id). After the commit the sweeper (storage/sweeper.py)
deletes the files and only then marks the entries done, so a process killed in
between leaves the work written down for the next start. Done Maildir entries are
the record of which storage keys were removed: the only orphan Maildirs a tidy
may delete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

from sqlalchemy import ColumnElement, DateTime, String, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhost.model.names import DomainName
from mailhost.storage.database.tables import Delivery, Domain, DomainUser, Mailbox, PendingRemoval

RemovalKind = Literal["maildir", "certificate", "spool"]
MAILDIR: RemovalKind = "maildir"
CERTIFICATE: RemovalKind = "certificate"
SPOOL: RemovalKind = "spool"
_COLUMNS = ("kind", "key", "created_at")
_CHUNK = 500  # ids per IN (...): well below every database's parameter limit
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PendingFile:
    id: int
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class MailboxFiles:
    """A current mailbox, as the Maildir layout names it."""

    domain: str  # A-label
    local: str
    storage_key: str


def _now(kind: RemovalKind) -> tuple[ColumnElement[str], ColumnElement[datetime]]:
    return literal(kind, String(16)), literal(datetime.now(UTC), DateTime(timezone=True))


async def journal_maildirs(session: AsyncSession, mailboxes: ColumnElement[bool]) -> None:
    """Write down the Maildirs of the mailboxes about to be deleted (in their transaction)."""
    kind, now = _now(MAILDIR)
    query = select(kind, Mailbox.storage_key, now).where(mailboxes)
    await session.execute(insert(PendingRemoval).from_select(_COLUMNS, query))


def mailboxes_of_domain(domain_id: int) -> ColumnElement[bool]:
    return Mailbox.user_id.in_(select(DomainUser.id).where(DomainUser.domain_id == domain_id))


async def journal_file(session: AsyncSession, kind: RemovalKind, key: str) -> None:
    session.add(PendingRemoval(kind=kind, key=key, created_at=datetime.now(UTC)))
    await session.flush()


async def drop_queued(session: AsyncSession, owned: ColumnElement[bool]) -> None:
    """Delete queued deliveries (their foreign keys cascade too; this does not depend on it)
    and write down their spool files, which the sweeper deletes once nothing refers to them."""
    kind, now = _now(SPOOL)
    query = select(kind, Delivery.message_id, now).where(owned).distinct()
    await session.execute(insert(PendingRemoval).from_select(_COLUMNS, query))
    await session.execute(delete(Delivery).where(owned))


class SqlRemovalJournal:
    """What the sweeper reads and clears; each call is its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def pending(self) -> Sequence[PendingFile]:
        query = select(PendingRemoval).where(PendingRemoval.done_at.is_(None))
        async with self._sessions() as session:
            rows = await session.scalars(query.order_by(PendingRemoval.id))
            return [PendingFile(row.id, row.kind, row.key) for row in rows]

    async def done(self, ids: Iterable[int]) -> None:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            for chunk in _chunks(list(ids)):
                await session.execute(
                    update(PendingRemoval).where(PendingRemoval.id.in_(chunk)).values(done_at=now)
                )

    async def removed_storage_keys(self) -> set[str]:
        """Storage keys of every Maildir a removal wrote down, done or not."""
        query = select(PendingRemoval.key).where(PendingRemoval.kind == MAILDIR)
        async with self._sessions() as session:
            return set(await session.scalars(query))

    async def mailboxes(self) -> Sequence[MailboxFiles]:
        query = (
            select(Domain.name, DomainUser.username, Mailbox.storage_key)
            .join(DomainUser, Mailbox.user_id == DomainUser.id)
            .join(Domain, DomainUser.domain_id == Domain.id)
        )
        async with self._sessions() as session:
            return [MailboxFiles(*row) for row in await session.execute(query)]

    async def mail_hosts(self) -> set[str]:
        """mail.<domain> of every domain hosted now."""
        async with self._sessions() as session:
            names = await session.scalars(select(Domain.name))
            return {DomainName(name).mail_host for name in names}

    async def referenced(self, message_ids: Sequence[str]) -> set[str]:
        """The spool message ids that queued deliveries still refer to."""
        found: set[str] = set()
        async with self._sessions() as session:
            for chunk in _chunks(list(message_ids)):
                query = select(Delivery.message_id).where(Delivery.message_id.in_(chunk))
                found.update(await session.scalars(query.distinct()))
        return found


def _chunks(items: list[_T]) -> Iterable[list[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
