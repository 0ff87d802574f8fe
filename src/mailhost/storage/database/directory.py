"""SqlDirectory: plans, customers, domains and users, as frozen records."""

from __future__ import annotations

from collections.abc import Sequence

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
from mailhost.storage.database.tables import (
    Customer,
    Domain,
    DomainUser,
    Mailbox,
    Plan,
    SmtpAccount,
)


def _size(value: int | None) -> ByteSize | None:
    return None if value is None else ByteSize(value)


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

    async def customers_on_plan(self, plan_id: int) -> int:
        count = await self._session.scalar(
            select(func.count()).select_from(Customer).where(Customer.plan_id == plan_id)
        )
        return int(count or 0)

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
        """Serialise limit checks of one customer (row lock on PostgreSQL)."""
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

    async def add_domain(
        self, name: DomainName, customer: CustomerRecord, password_hash: str
    ) -> DomainRecord:
        row = Domain(
            name=name.ascii, customer_id=customer.id, password_hash=password_hash, enabled=True
        )
        await insert_unique(self._session, row, DomainExists(f"domain {name} already exists"))
        return DomainRecord(row.id, name, customer.id, customer.login, True)

    @staticmethod
    def _domain_query() -> Select[Domain, str]:
        return select(Domain, Customer.login).join(Customer, Domain.customer_id == Customer.id)

    async def domain_by_name(self, name: DomainName) -> DomainRecord | None:
        found = (
            await self._session.execute(self._domain_query().where(Domain.name == name.ascii))
        ).first()
        if found is None:
            return None
        domain, login = found
        return DomainRecord(domain.id, name, domain.customer_id, login, domain.enabled)

    async def domains(self, customer_id: int | None = None) -> Sequence[DomainRecord]:
        query = self._domain_query().order_by(Domain.name)
        if customer_id is not None:
            query = query.where(Domain.customer_id == customer_id)
        rows = await self._session.execute(query)
        return [
            DomainRecord(d.id, DomainName(d.name), d.customer_id, login, d.enabled)
            for d, login in rows
        ]

    async def count_domains(self, customer_id: int) -> int:
        count = await self._session.scalar(
            select(func.count()).select_from(Domain).where(Domain.customer_id == customer_id)
        )
        return int(count or 0)

    async def remove_domain(self, domain_id: int) -> None:
        await self._session.execute(delete(Domain).where(Domain.id == domain_id))

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

    async def remove_user(self, user_id: int) -> None:
        # Mailbox and SMTP account go with the user in the same transaction; the
        # explicit deletes do not rely on SQLite's foreign-key pragma being on.
        await self._session.execute(delete(Mailbox).where(Mailbox.user_id == user_id))
        await self._session.execute(delete(SmtpAccount).where(SmtpAccount.user_id == user_id))
        await self._session.execute(delete(DomainUser).where(DomainUser.id == user_id))

    async def find_recipient(self, address: EmailAddress) -> RecipientRecord | None:
        """One query per RCPT: the domain, the user and its mailbox; None if not hosted.

        Plain columns rather than ORM objects: this runs for every recipient.
        """
        user_match = (DomainUser.domain_id == Domain.id) & (
            DomainUser.username == address.local.lower()
        )
        query = (
            select(
                Domain.enabled,
                Domain.customer_id,
                DomainUser.id,
                DomainUser.username,
                DomainUser.enabled,
                Mailbox.id,
                Mailbox.quota_bytes,
                Mailbox.used_bytes,
            )
            .outerjoin(DomainUser, user_match)
            .outerjoin(Mailbox, Mailbox.user_id == DomainUser.id)
            .where(Domain.name == address.domain.ascii)
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        domain_enabled, customer_id, user_id, username, user_enabled, box_id, quota, used = row
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
            )
        return RecipientRecord(domain_enabled, user_enabled, mailbox)

    async def find_login(self, address: EmailAddress) -> LoginRecord | None:
        query = (
            select(DomainUser, Domain, Customer, Mailbox.id)
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
        user, domain, customer, mailbox_id = found
        canonical = EmailAddress(user.username, DomainName(domain.name))
        return LoginRecord(
            user_id=user.id,
            customer_id=customer.id,
            address=canonical,
            password_hash=user.password_hash,
            enabled=user.enabled and domain.enabled and customer.enabled,
            mailbox=None if mailbox_id is None else MailboxRef(mailbox_id, canonical),
        )
