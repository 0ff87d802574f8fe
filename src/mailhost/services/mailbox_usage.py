"""Mailbox usage kept true: bytes freed by POP3 deletions, and recounts against the Maildir.

Deliveries count their own bytes as they store (services/delivery.py); this is
the rest of a mailbox's accounting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailhost.interfaces import MailStore, UnitOfWorkFactory
from mailhost.model.records import MailboxRecord


@dataclass(frozen=True, slots=True)
class Recount:
    mailbox: MailboxRecord
    recorded: int
    on_disk: int


class MailboxUsageService:
    def __init__(self, units: UnitOfWorkFactory, store: MailStore) -> None:
        self._units = units
        self._store = store

    async def recount(self, mailboxes: Sequence[MailboxRecord]) -> list[Recount]:
        """Make the database's used bytes agree with the Maildir files (repairs drift)."""
        results: list[Recount] = []
        for mailbox in mailboxes:
            on_disk = await self._store.usage(mailbox.ref)
            if on_disk != mailbox.used_bytes:
                async with self._units() as uow:
                    await uow.facilities.set_mailbox_used(mailbox.id, on_disk)
                    await uow.commit()
            results.append(Recount(mailbox, mailbox.used_bytes, on_disk))
        return results

    async def expunged(self, mailbox_id: int, freed: int) -> None:
        """Record bytes freed by POP3 deletions."""
        if freed <= 0:
            return
        async with self._units() as uow:
            await uow.facilities.add_mailbox_used(mailbox_id, -freed)
            await uow.commit()
