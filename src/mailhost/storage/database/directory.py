"""SqlDirectory: plans, customers, domains and users, as frozen records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.errors import (
    AlreadyExists,
    CustomerExists,
    DomainExists,
    PlanExists,
    UserExists,
)
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.model.records import (
    CustomerRecord,
    DomainRecord,
    LoginRecord,
    MailboxRecord,
    MailboxRef,
    PlanRecord,
    RecipientRecord,
    UserRecord,
)
from mailhost.storage.database.credentials import delete_credentials, users_of_domain
from mailhost.storage.database.removals import (
    CERTIFICATE,
    drop_queued,
    journal_file,
    journal_maildirs,
    mailboxes_of_domain,
)
from mailhost.storage.database.tables import (
    Customer,
    Delivery,
    Domain,
    DomainUser,
    Mailbox,
    MonthlyUsage,
    Plan,
    SmtpAccount,
    UsageNotice,
)


def _size(value: int | None) -> ByteSize | None:
    return None if value is None else ByteSize(value)


def _domain(row: Domain, customer_login: str) -> DomainRecord:
    return DomainRecord(
        row.id,
        DomainName(row.name),
        row.customer_id,
        customer_login,
        row.enabled,
        None if row.verified_at is None else _utc(row.verified_at),
        row.verification_token,
        None if row.postmaster_address is None else EmailAddress.parse(row.postmaster_address),
        row.abuse_enabled,
    )


def _utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every stored one is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _plan(row: Plan) -> PlanRecord:
    limits = PlanLimits(
        row.max_domains, _size(row.storage_bytes), _size(row.transfer_bytes), row.max_accounts
    )
    return PlanRecord(row.id, row.name, limits)


async def insert_unique(session: AsyncSession, row: object, conflict: AlreadyExists) -> None:
    """Insert a row whose unique constraints are the real guard against duplicates.

    A race past the service's own check still ends in the same clear refusal.
    """
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise conflict from exc


class SqlDirectory:
    """Reads and writes of the account tree; one instance per unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_plan(self, name: str, limits: PlanLimits) -> PlanRecord:
        row = Plan(
            name=name,
            max_domains=limits.max_domains,
            storage_bytes=None if limits.storage is None else limits.storage.bytes,
            transfer_bytes=None if limits.transfer is None else limits.transfer.bytes,
            max_accounts=limits.max_accounts,
        )
        await insert_unique(self._session, row, PlanExists(f"plan {name!r} already exists"))
        return _plan(row)

    async def plan_by_name(self, name: str) -> PlanRecord | None:
        row = await self._session.scalar(select(Plan).where(Plan.name == name))
        return None if row is None else _plan(row)

    async def plans(self) -> Sequence[PlanRecord]:
        rows = await self._session.scalars(select(Plan).order_by(Plan.name))
        return [_plan(row) for row in rows]

    async def add_customer(
        self, login: str, password_hash: str, contact_email: str, plan: PlanRecord
    ) -> CustomerRecord:
        row = Customer(
            login=login,
            password_hash=password_hash,
            contact_email=contact_email,
            plan_id=plan.id,
            enabled=True,
        )
        await insert_unique(
            self._session, row, CustomerExists(f"customer {login!r} already exists")
        )
        return CustomerRecord(row.id, login, contact_email, plan, True)

    async def _customer(self, condition: ColumnElement[bool]) -> CustomerRecord | None:
        query = select(Customer, Plan).join(Plan, Customer.plan_id == Plan.id).where(condition)
        found = (await self._session.execute(query)).first()
        if found is None:
            return None
        customer, plan = found
        return CustomerRecord(
            customer.id, customer.login, customer.contact_email, _plan(plan), customer.enabled
        )

    async def customer_by_login(self, login: str) -> CustomerRecord | None:
        return await self._customer(Customer.login == login)

    async def customer_by_id(self, customer_id: int) -> CustomerRecord | None:
        return await self._customer(Customer.id == customer_id)

    async def lock_customer(self, customer_id: int) -> None:
        """Serialise limit checks of one customer until the commit: a row lock on
        PostgreSQL. SQLite ignores FOR UPDATE, and its driver begins a transaction only
        at the first write, so two checks could both read the same counts; a write that
        changes nothing takes the database's one write lock instead (the other waits
        for it, up to busy_timeout, and then reads what this one committed)."""
        if self._session.get_bind().dialect.name == "sqlite":
            await self._session.execute(
                update(Customer).where(Customer.id == customer_id).values(id=Customer.id)
            )
            return
        await self._session.execute(
            select(Customer.id).where(Customer.id == customer_id).with_for_update()
        )

    async def customers(self) -> Sequence[CustomerRecord]:
        query = select(Customer, Plan).join(Plan, Customer.plan_id == Plan.id)
        rows = await self._session.execute(query.order_by(Customer.login))
        return [
            CustomerRecord(c.id, c.login, c.contact_email, _plan(p), c.enabled) for c, p in rows
        ]

    async def set_customer_enabled(self, customer_id: int, enabled: bool) -> None:
        await self._session.execute(
            update(Customer).where(Customer.id == customer_id).values(enabled=enabled)
        )

    async def set_customer_plan(self, customer_id: int, plan_id: int) -> None:
        await self._session.execute(
            update(Customer).where(Customer.id == customer_id).values(plan_id=plan_id)
        )

    async def set_customer_contact(self, customer_id: int, contact_email: str) -> None:
        await self._session.execute(
            update(Customer).where(Customer.id == customer_id).values(contact_email=contact_email)
        )

    async def add_domain(
        self,
        name: DomainName,
        customer: CustomerRecord,
        password_hash: str,
        verification_token: str,
        verified_at: datetime | None,
    ) -> DomainRecord:
        row = Domain(
            name=name.ascii,
            customer_id=customer.id,
            password_hash=password_hash,
            enabled=True,
            verification_token=verification_token,
            verified_at=verified_at,
        )
        await insert_unique(self._session, row, DomainExists(f"domain {name} already exists"))
        return _domain(row, customer.login)

    @staticmethod
    def _domain_query() -> Select[Domain, str]:
        return select(Domain, Customer.login).join(Customer, Domain.customer_id == Customer.id)

    async def domain_by_name(self, name: DomainName) -> DomainRecord | None:
        found = (
            await self._session.execute(self._domain_query().where(Domain.name == name.ascii))
        ).first()
        return None if found is None else _domain(*found)

    async def domains(self, customer_id: int | None = None) -> Sequence[DomainRecord]:
        query = self._domain_query().order_by(Domain.name)
        if customer_id is not None:
            query = query.where(Domain.customer_id == customer_id)
        rows = await self._session.execute(query)
        return [_domain(d, login) for d, login in rows]

    async def set_domain_enabled(self, domain_id: int, enabled: bool) -> None:
        await self._session.execute(
            update(Domain).where(Domain.id == domain_id).values(enabled=enabled)
        )

    async def mark_domain_verified(self, domain_id: int, token: str, at: datetime) -> bool:
        """Set verified_at unless already set; False if the domain or its token changed
        since it was read (a proof is only good for the token it was made with)."""
        result = await self._session.execute(
            update(Domain)
            .where(
                Domain.id == domain_id,
                Domain.verification_token == token,
                Domain.verified_at.is_(None),
            )
            .values(verified_at=at)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def count_domains(self, customer_id: int) -> int:
        return (await self.domain_counts([customer_id])).get(customer_id, 0)

    async def domain_counts(self, customer_ids: Sequence[int]) -> Mapping[int, int]:
        rows = await self._session.execute(
            select(Domain.customer_id, func.count())
            .where(Domain.customer_id.in_(customer_ids))
            .group_by(Domain.customer_id)
        )
        return {customer_id: int(count) for customer_id, count in rows}

    async def remove_domain(self, domain_id: int) -> None:
        # The credentials of the domain and of its users go in this transaction (their
        # foreign keys cascade too; this does not depend on it).
        await delete_credentials(self._session, "user", users_of_domain(domain_id))
        await delete_credentials(self._session, "domain", domain_id)
        # What the domain has on disk goes once this commits (storage/sweeper.py): the
        # Maildirs of mailboxes still there, its certificate, its queued mail.
        name = await self._session.scalar(select(Domain.name).where(Domain.id == domain_id))
        if name is not None:
            await journal_file(self._session, CERTIFICATE, DomainName(name).mail_host)
        await journal_maildirs(self._session, mailboxes_of_domain(domain_id))
        await drop_queued(self._session, Delivery.domain_id == domain_id)
        await self._session.execute(delete(Domain).where(Domain.id == domain_id))

    async def remove_customer(self, customer_id: int) -> None:
        """The customer's row and what hangs on it; its domains must be removed first."""
        await drop_queued(self._session, Delivery.customer_id == customer_id)
        await delete_credentials(self._session, "customer", customer_id)
        for table in (MonthlyUsage, UsageNotice):
            await self._session.execute(delete(table).where(table.customer_id == customer_id))
        await self._session.execute(delete(Customer).where(Customer.id == customer_id))

    async def add_user(
        self, domain: DomainRecord, username: str, password_hash: str, recovery: str | None
    ) -> UserRecord:
        row = DomainUser(
            domain_id=domain.id,
            username=username,
            password_hash=password_hash,
            recovery_email=recovery,
            enabled=True,
        )
        address = EmailAddress(username, domain.name)
        await insert_unique(self._session, row, UserExists(f"user {address} already exists"))
        return UserRecord(
            row.id, domain.id, domain.customer_id, address, recovery, True, False, False
        )

    @staticmethod
    def _user_query() -> Select[DomainUser, Domain, bool, bool]:
        has_mailbox = exists().where(Mailbox.user_id == DomainUser.id)
        has_smtp = exists().where(SmtpAccount.user_id == DomainUser.id)
        return (
            select(DomainUser, Domain, has_mailbox.label("m"), has_smtp.label("s"))
            .join(Domain, DomainUser.domain_id == Domain.id)
            .order_by(DomainUser.username)
        )

    @staticmethod
    def _user(user: DomainUser, domain: Domain, mailbox: bool, smtp: bool) -> UserRecord:
        address = EmailAddress(user.username, DomainName(domain.name))
        return UserRecord(
            user.id,
            domain.id,
            domain.customer_id,
            address,
            user.recovery_email,
            user.enabled,
            bool(mailbox),
            bool(smtp),
        )

    async def user_by_address(self, address: EmailAddress) -> UserRecord | None:
        query = self._user_query().where(
            Domain.name == address.domain.ascii, DomainUser.username == address.local.lower()
        )
        found = (await self._session.execute(query)).first()
        return None if found is None else self._user(*found)

    async def users(self, domain_id: int) -> Sequence[UserRecord]:
        rows = await self._session.execute(self._user_query().where(Domain.id == domain_id))
        return [self._user(*row) for row in rows]

    async def set_user_password(self, user_id: int, password_hash: str) -> None:
        await self._session.execute(
            update(DomainUser).where(DomainUser.id == user_id).values(password_hash=password_hash)
        )

    async def set_user_recovery(self, user_id: int, recovery: str | None) -> None:
        await self._session.execute(
            update(DomainUser).where(DomainUser.id == user_id).values(recovery_email=recovery)
        )

    async def remove_user(self, user_id: int) -> None:
        # Mailbox and SMTP account go with the user in the same transaction; the
        # explicit deletes do not rely on SQLite's foreign-key pragma being on. The
        # Maildir is written down to go once this commits (storage/sweeper.py).
        await journal_maildirs(self._session, Mailbox.user_id == user_id)
        await self._session.execute(delete(Mailbox).where(Mailbox.user_id == user_id))
        await self._session.execute(delete(SmtpAccount).where(SmtpAccount.user_id == user_id))
        await delete_credentials(self._session, "user", user_id)
        await self._session.execute(delete(DomainUser).where(DomainUser.id == user_id))

    async def find_recipient(self, address: EmailAddress) -> RecipientRecord | None:
        """One query per RCPT: the domain, the user and its mailbox; None if not hosted.

        A pending domain (ownership not proven) is not hosted: its mail is external,
        whoever sends it. Plain columns rather than ORM objects: this runs for every
        recipient.
        """
        user_match = (DomainUser.domain_id == Domain.id) & (
            DomainUser.username == address.local.lower()
        )
        query = (
            select(
                Domain.enabled,
                Customer.enabled,
                Domain.customer_id,
                DomainUser.id,
                DomainUser.username,
                DomainUser.enabled,
                Mailbox.id,
                Mailbox.quota_bytes,
                Mailbox.used_bytes,
                Mailbox.storage_key,
            )
            .join(Customer, Domain.customer_id == Customer.id)
            .outerjoin(DomainUser, user_match)
            .outerjoin(Mailbox, Mailbox.user_id == DomainUser.id)
            .where(Domain.name == address.domain.ascii, Domain.verified_at.is_not(None))
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        (
            domain_on,
            customer_on,
            customer_id,
            user_id,
            username,
            user_enabled,
            box_id,
            quota,
            used,
            storage_key,
        ) = row
        domain_enabled = bool(domain_on and customer_on)
        if user_id is None:
            return RecipientRecord(domain_enabled, None, None)
        mailbox = None
        if box_id is not None:
            mailbox = MailboxRecord(
                id=box_id,
                user_id=user_id,
                customer_id=customer_id,
                address=EmailAddress(username, address.domain),
                quota=_size(quota),
                used_bytes=used,
                storage_key=storage_key,
            )
        return RecipientRecord(domain_enabled, user_enabled, mailbox)

    async def find_login(self, address: EmailAddress) -> LoginRecord | None:
        query = (
            select(DomainUser, Domain, Customer, Mailbox.id, Mailbox.storage_key)
            .join(Domain, DomainUser.domain_id == Domain.id)
            .join(Customer, Domain.customer_id == Customer.id)
            .outerjoin(Mailbox, Mailbox.user_id == DomainUser.id)
            .where(
                Domain.name == address.domain.ascii,
                DomainUser.username == address.local.lower(),
            )
        )
        found = (await self._session.execute(query)).first()
        if found is None:
            return None
        user, domain, customer, mailbox_id, storage_key = found
        canonical = EmailAddress(user.username, DomainName(domain.name))
        mailbox = None if mailbox_id is None else MailboxRef(mailbox_id, canonical, storage_key)
        return LoginRecord(
            user_id=user.id,
            customer_id=customer.id,
            domain_id=domain.id,
            address=canonical,
            password_hash=user.password_hash,
            # A pending domain's users log in nowhere: they could not receive, and must
            # not send as a domain whose ownership nobody has shown.
            enabled=(
                user.enabled
                and domain.enabled
                and customer.enabled
                and domain.verified_at is not None
            ),
            mailbox=mailbox,
        )
