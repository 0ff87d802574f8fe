"""SqlFacilities: the POP3 mailboxes and SMTP accounts given to users."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from sqlalchemy import Select, Update, bindparam, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.errors import MailboxExists, SmtpAccountExists
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import MailboxRecord, SmtpAccountRecord, UserRecord
from mailhost.storage.database.directory import insert_unique
from mailhost.storage.database.removals import journal_maildirs
from mailhost.storage.database.tables import Domain, DomainUser, Mailbox, SmtpAccount


def _mailbox_growth() -> Update:
    grown = Mailbox.used_bytes + bindparam("delta")
    return (
        update(Mailbox)
        .where(Mailbox.id == bindparam("mailbox_id"))
        .values(used_bytes=case((grown < 0, 0), else_=grown))
    )


# One UPDATE with arithmetic in SQL: concurrent deliveries never lose an increment.
# Parameters: mailbox_id, delta (bytes; negative frees, never below 0).
MAILBOX_GROWTH = _mailbox_growth()


def _mailbox(row: Mailbox, user: DomainUser, domain: Domain) -> MailboxRecord:
    return MailboxRecord(
        id=row.id,
        user_id=user.id,
        customer_id=domain.customer_id,
        address=EmailAddress(user.username, DomainName(domain.name)),
        quota=None if row.quota_bytes is None else ByteSize(row.quota_bytes),
        used_bytes=row.used_bytes,
        storage_key=row.storage_key,
    )


def _mailbox_of(row: Mailbox, user: UserRecord) -> MailboxRecord:
    quota = None if row.quota_bytes is None else ByteSize(row.quota_bytes)
    return MailboxRecord(
        row.id, user.id, user.customer_id, user.address, quota, row.used_bytes, row.storage_key
    )


def _smtp(row: SmtpAccount, user: DomainUser, domain: Domain) -> SmtpAccountRecord:
    facilities = SmtpFacilities(
        relay=row.relay,
        sender_scope=SenderScope(row.sender_scope),
        hourly_limit=row.hourly_limit,
        max_recipients=row.max_recipients,
        max_message_size=None if row.max_message_bytes is None else ByteSize(row.max_message_bytes),
    )
    return SmtpAccountRecord(
        row.id, user.id, EmailAddress(user.username, DomainName(domain.name)), facilities
    )


def _columns(facilities: SmtpFacilities) -> dict[str, object]:
    """An SMTP account's columns for its facilities (the inverse of `_smtp`)."""
    size = facilities.max_message_size
    return {
        "relay": facilities.relay,
        "sender_scope": facilities.sender_scope.value,
        "hourly_limit": facilities.hourly_limit,
        "max_recipients": facilities.max_recipients,
        "max_message_bytes": None if size is None else size.bytes,
    }


def _mailbox_query() -> Select[Mailbox, DomainUser, Domain]:
    return (
        select(Mailbox, DomainUser, Domain)
        .join(DomainUser, Mailbox.user_id == DomainUser.id)
        .join(Domain, DomainUser.domain_id == Domain.id)
        .order_by(DomainUser.username)
    )


def _smtp_query() -> Select[SmtpAccount, DomainUser, Domain]:
    return (
        select(SmtpAccount, DomainUser, Domain)
        .join(DomainUser, SmtpAccount.user_id == DomainUser.id)
        .join(Domain, DomainUser.domain_id == Domain.id)
        .order_by(DomainUser.username)
    )


class SqlFacilities:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_mailbox(self, user: UserRecord, quota: ByteSize | None) -> MailboxRecord:
        row = Mailbox(
            user_id=user.id,
            quota_bytes=None if quota is None else quota.bytes,
            used_bytes=0,
            # Random, never a function of the address: it names the Maildir, which a
            # later mailbox at the same address must not find (storage/maildir_layout.py).
            storage_key=secrets.token_hex(16),
        )
        await insert_unique(
            self._session, row, MailboxExists(f"user {user.address} already has a POP3 mailbox")
        )
        return _mailbox_of(row, user)

    async def mailbox_of(self, user_id: int) -> MailboxRecord | None:
        found = (
            await self._session.execute(_mailbox_query().where(Mailbox.user_id == user_id))
        ).first()
        return None if found is None else _mailbox(*found)

    async def mailboxes(self, domain_id: int) -> Sequence[MailboxRecord]:
        rows = await self._session.execute(_mailbox_query().where(Domain.id == domain_id))
        return [_mailbox(*row) for row in rows]

    async def customer_mailboxes(self, customer_id: int) -> Sequence[MailboxRecord]:
        rows = await self._session.execute(
            _mailbox_query().where(Domain.customer_id == customer_id)
        )
        return [_mailbox(*row) for row in rows]

    async def set_mailbox_quota(self, mailbox_id: int, quota: ByteSize | None) -> None:
        await self._session.execute(
            update(Mailbox)
            .where(Mailbox.id == mailbox_id)
            .values(quota_bytes=None if quota is None else quota.bytes)
        )

    async def remove_mailbox(self, user_id: int) -> None:
        # The Maildir is written down to go once this commits (storage/sweeper.py).
        await journal_maildirs(self._session, Mailbox.user_id == user_id)
        await self._session.execute(delete(Mailbox).where(Mailbox.user_id == user_id))

    async def set_mailbox_used(self, mailbox_id: int, used_bytes: int) -> None:
        await self._session.execute(
            update(Mailbox).where(Mailbox.id == mailbox_id).values(used_bytes=used_bytes)
        )

    async def add_mailbox_used(self, mailbox_id: int, delta: int) -> None:
        await self._session.execute(MAILBOX_GROWTH, {"mailbox_id": mailbox_id, "delta": delta})

    async def add_smtp_account(
        self, user: UserRecord, facilities: SmtpFacilities
    ) -> SmtpAccountRecord:
        row = SmtpAccount(user_id=user.id, **_columns(facilities))
        await insert_unique(
            self._session,
            row,
            SmtpAccountExists(f"user {user.address} already has an SMTP account"),
        )
        return SmtpAccountRecord(row.id, user.id, user.address, facilities)

    async def smtp_account_of(self, user_id: int) -> SmtpAccountRecord | None:
        found = (
            await self._session.execute(_smtp_query().where(SmtpAccount.user_id == user_id))
        ).first()
        return None if found is None else _smtp(*found)

    async def smtp_accounts(self, domain_id: int) -> Sequence[SmtpAccountRecord]:
        rows = await self._session.execute(_smtp_query().where(Domain.id == domain_id))
        return [_smtp(*row) for row in rows]

    async def set_smtp_facilities(self, account_id: int, facilities: SmtpFacilities) -> None:
        await self._session.execute(
            update(SmtpAccount).where(SmtpAccount.id == account_id).values(**_columns(facilities))
        )

    async def remove_smtp_account(self, user_id: int) -> None:
        await self._session.execute(delete(SmtpAccount).where(SmtpAccount.user_id == user_id))

    async def count_accounts(self, customer_id: int) -> int:
        """Mailboxes plus SMTP accounts of the customer: the plan's "POP3/SMTP accounts"."""
        return (await self.account_counts([customer_id])).get(customer_id, 0)

    async def account_counts(self, customer_ids: Sequence[int]) -> Mapping[int, int]:
        totals: dict[int, int] = {}
        for table in (Mailbox, SmtpAccount):
            rows = await self._session.execute(
                select(Domain.customer_id, func.count())
                .select_from(table)
                .join(DomainUser, table.user_id == DomainUser.id)
                .join(Domain, DomainUser.domain_id == Domain.id)
                .where(Domain.customer_id.in_(customer_ids))
                .group_by(Domain.customer_id)
            )
            for customer_id, count in rows:
                totals[customer_id] = totals.get(customer_id, 0) + int(count)
        return totals

    async def mail_held(self, domain_ids: Sequence[int]) -> tuple[int, int]:
        """Mailboxes of the domains and the bytes of mail in them (what removal deletes)."""
        found = (
            await self._session.execute(
                select(func.count(Mailbox.id), func.coalesce(func.sum(Mailbox.used_bytes), 0))
                .join(DomainUser, Mailbox.user_id == DomainUser.id)
                .where(DomainUser.domain_id.in_(domain_ids))
            )
        ).one()
        return int(found[0] or 0), int(found[1] or 0)

    async def storage_used(self, customer_id: int) -> int:
        return (await self.storage_used_by([customer_id])).get(customer_id, 0)

    async def storage_used_by(self, customer_ids: Sequence[int]) -> Mapping[int, int]:
        rows = await self._session.execute(
            select(Domain.customer_id, func.coalesce(func.sum(Mailbox.used_bytes), 0))
            .select_from(Mailbox)
            .join(DomainUser, Mailbox.user_id == DomainUser.id)
            .join(Domain, DomainUser.domain_id == Domain.id)
            .where(Domain.customer_id.in_(customer_ids))
            .group_by(Domain.customer_id)
        )
        return {customer_id: int(used) for customer_id, used in rows}
