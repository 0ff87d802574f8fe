"""Mailboxes with little room: a quota is at least 1MB, so a test that needs a mailbox
nearly (or wholly) full gives it a 1MB quota and records all but `room` bytes as used."""

from __future__ import annotations

from mailhost.model.actors import ProviderActor
from mailhost.model.names import EmailAddress
from mailhost.model.quotas import MIN_QUOTA
from mailhost.model.records import MailboxRecord
from mailhost.runtime import Runtime

OP = ProviderActor("test")


async def add_small_mailbox(rt: Runtime, address: EmailAddress, room: int) -> MailboxRecord:
    """Give the user a mailbox of the smallest quota with `room` bytes of it left."""
    box = await rt.services.users.add_mailbox(OP, address, MIN_QUOTA)
    async with rt.units() as uow:
        await uow.facilities.set_mailbox_used(box.id, MIN_QUOTA.bytes - room)
        await uow.commit()
    return await rt.services.users.mailbox(OP, address)
