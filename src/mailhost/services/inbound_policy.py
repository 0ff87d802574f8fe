"""MX rules: is the recipient hosted, does it have a mailbox, is there room?"""

from __future__ import annotations

from collections.abc import Sequence

from mailhost.interfaces import UnitOfWorkFactory
from mailhost.model.envelope import Accept, Reason, Refuse, Verdict
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRecord


def room_for(mailbox: MailboxRecord, size: int) -> bool:
    return mailbox.quota is None or mailbox.used_bytes + size <= mailbox.quota.bytes


class InboundPolicy:
    def __init__(self, units: UnitOfWorkFactory) -> None:
        self._units = units

    async def check_recipient(self, address: EmailAddress) -> Verdict:
        async with self._units() as uow:
            found = await uow.directory.find_recipient(address)
        if found is None:
            # Never an open relay: the MX accepts mail only for hosted domains.
            return Refuse(Reason.RELAY_DENIED, str(address))
        if not found.domain_enabled:
            return Refuse(Reason.DOMAIN_DISABLED, str(address))
        if not found.user_enabled:
            return Refuse(Reason.UNKNOWN_USER, str(address))
        mailbox = found.mailbox
        if mailbox is None:
            return Refuse(Reason.NO_MAILBOX, str(address))
        if mailbox.quota is not None and mailbox.used_bytes >= mailbox.quota.bytes:
            return Refuse(Reason.MAILBOX_FULL, str(mailbox.address))
        return Accept(mailbox)

    async def check_message(self, mailboxes: Sequence[MailboxRecord], size: int) -> Verdict | None:
        """After DATA: refuse the whole message if any mailbox cannot take it (none is lost).

        The usage read at RCPT time (milliseconds ago) is used: like Dovecot's,
        the quota may be overrun by the messages that were in flight together.
        """
        for mailbox in mailboxes:
            if not room_for(mailbox, size):
                return Refuse(Reason.MAILBOX_WOULD_OVERFLOW, str(mailbox.address))
        return None
