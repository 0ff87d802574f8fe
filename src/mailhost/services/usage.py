"""Storage and transfer accounting per customer and month."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from mailhost.interfaces import UnitOfWork, UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.model.records import CustomerRecord, UsageRecord
from mailhost.services import access


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def utc_now() -> datetime:
    return datetime.now(UTC)


class UsageService:
    def __init__(self, units: UnitOfWorkFactory, clock: Callable[[], datetime] = utc_now) -> None:
        self._units = units
        self._clock = clock

    async def report(
        self, actor: Actor, customer_login: str | None = None
    ) -> Sequence[UsageRecord]:
        month = month_of(self._clock())
        async with self._units() as uow:
            if customer_login is not None:
                found = await uow.directory.customer_by_login(customer_login.strip().lower())
                customers: Sequence[CustomerRecord] = [
                    access.visible_customer(actor, found, customer_login)
                ]
            else:
                customers = [
                    c
                    for c in await uow.directory.customers()
                    if access.may_see_customer(actor, c.id)
                ]
            return await _usage(uow, customers, month)

    def current_month(self) -> str:
        return month_of(self._clock())

    async def add_transfer(self, customer_id: int, nbytes: int) -> None:
        """Count bytes received into mailboxes, retrieved over POP3 or relayed out."""
        if nbytes <= 0:
            return
        async with self._units() as uow:
            await uow.usage.add_transfer(customer_id, month_of(self._clock()), nbytes)
            await uow.commit()


async def _usage(
    uow: UnitOfWork, customers: Sequence[CustomerRecord], month: str
) -> list[UsageRecord]:
    """Four queries whatever the number of customers (the provider's pages list them all)."""
    ids = [customer.id for customer in customers]
    domains = await uow.directory.domain_counts(ids)
    accounts = await uow.facilities.account_counts(ids)
    storage = await uow.facilities.storage_used_by(ids)
    transfer = await uow.usage.transfers(ids, month)
    return [
        UsageRecord(
            customer_login=customer.login,
            plan=customer.plan,
            month=month,
            domains=domains.get(customer.id, 0),
            accounts=accounts.get(customer.id, 0),
            storage_bytes=storage.get(customer.id, 0),
            transfer_bytes=transfer.get(customer.id, 0),
        )
        for customer in customers
    ]
