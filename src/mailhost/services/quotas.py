"""Mailbox quotas held against the plan: each is at least 1MB, and on a plan with a
storage limit every mailbox has one and together they fit in the plan's storage.

Adding a mailbox and changing its quota (services/users.py) and moving a customer to
another plan (services/accounts.py) check here, with the customer's row locked first,
so two changes at once cannot both take the last of the storage.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailhost.errors import LimitReached
from mailhost.interfaces import UnitOfWork
from mailhost.model.names import EmailAddress
from mailhost.model.quantities import MAX_BYTES, ByteSize
from mailhost.model.quotas import Allocation, check_quota
from mailhost.model.records import CustomerRecord, MailboxRecord, PlanRecord


async def allocation(
    uow: UnitOfWork, customer: CustomerRecord, *, excluding: int | None = None
) -> Allocation:
    """The customer's plan storage and its mailboxes' quotas, but the mailbox `excluding`."""
    boxes = await uow.facilities.customer_mailboxes(customer.id)
    return allocation_of(customer, [box for box in boxes if box.id != excluding])


def allocation_of(customer: CustomerRecord, boxes: Iterable[MailboxRecord]) -> Allocation:
    """The customer's plan storage and the quotas of `boxes`, its mailboxes read already."""
    quotas = [box.quota for box in boxes]
    return Allocation.of(customer.plan.name, customer.plan.limits.storage, quotas)


async def hold(
    uow: UnitOfWork,
    customer_id: int,
    address: EmailAddress,
    quota: ByteSize | None,
    *,
    mailbox_id: int | None = None,
) -> None:
    """May the mailbox at `address` (new, or the row `mailbox_id` whose present quota
    then no longer counts) have `quota`? Locks the customer until the commit."""
    check_quota(quota)
    await uow.directory.lock_customer(customer_id)
    customer = await uow.directory.customer_by_id(customer_id)
    assert customer is not None  # a mailbox's customer exists (foreign key)
    others = await allocation(uow, customer, excluding=mailbox_id)
    if others.fits(quota):
        return
    left = "nothing is" if others.left == ByteSize(0) else f"at most {others.left} is"
    head = f"plan {others.plan} has {others.storage} of storage"
    if quota is None:
        raise LimitReached(f"{head}, so every mailbox needs a quota; {left} left for {address}")
    raise LimitReached(
        f"{head}; {_size(others.allocated)} is given to other mailboxes, "
        f"so {left} left for {address}"
    )


async def check_plan(uow: UnitOfWork, customer: CustomerRecord, plan: PlanRecord) -> None:
    """Would the customer's mailbox quotas fit `plan`? (The customer is locked.)"""
    storage = plan.limits.storage
    if storage is None:
        return
    boxes = await uow.facilities.customer_mailboxes(customer.id)
    unquoted = [str(box.address) for box in boxes if box.quota is None]
    head = f"plan {plan.name} has {storage} of storage"
    if unquoted:
        named = ", ".join(unquoted[:3]) + (", …" if len(unquoted) > 3 else "")
        raise LimitReached(
            f"{head}, so every mailbox needs a quota; customer {customer.login} has "
            f"{len(unquoted)} without one ({named})"
        )
    allocated = Allocation.of(plan.name, storage, [box.quota for box in boxes]).allocated
    if allocated > storage.bytes:
        raise LimitReached(
            f"{head}; the mailbox quotas of customer {customer.login} add up to "
            f"{_size(allocated)}, {_size(allocated - storage.bytes)} more"
        )


def _size(nbytes: int) -> ByteSize:
    # Quotas given on a plan without a limit may add up past what one size holds.
    return ByteSize(min(nbytes, MAX_BYTES))
