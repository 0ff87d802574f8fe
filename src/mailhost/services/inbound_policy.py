"""MX rules: is the recipient hosted, does it have a mailbox, is there room?

The inbound PolicyEngine (services/policy.py); submission asks it too for
hosted recipients, so a hosted address is refused the same way on both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from mailhost.interfaces import UnitOfWorkFactory
from mailhost.model.envelope import Accept, Client, Envelope, Reason, Refuse, Verdict
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRecord

MAX_CACHED = 10_000


def _with_room(mailbox: MailboxRecord) -> Accept | Refuse:
    if mailbox.quota is not None and mailbox.used_bytes >= mailbox.quota.bytes:
        return Refuse(Reason.MAILBOX_FULL, str(mailbox.address))
    return Accept(mailbox)


def room_for(mailbox: MailboxRecord, size: int) -> bool:
    return mailbox.quota is None or mailbox.used_bytes + size <= mailbox.quota.bytes


def room_refusal(mailboxes: Sequence[MailboxRecord], size: int) -> Refuse | None:
    """The one quota rule at DATA, for the MX and submission alike: the whole message is
    refused if any mailbox cannot take it (none is lost).

    The usage read at RCPT time (milliseconds ago) is used: like Dovecot's, the
    quota may be overrun by the messages that were in flight together.
    """
    for mailbox in mailboxes:
        if not room_for(mailbox, size):
            return Refuse(Reason.MAILBOX_WOULD_OVERFLOW, str(mailbox.address))
    return None


class InboundPolicy:
    """`cache_seconds` > 0 remembers accepted recipients that long.

    A busy MX looks the same mailbox up for every message; remembering an
    accepted recipient for a second takes most of those queries away. The
    price: a mailbox removed, disabled or filled within that second still
    takes mail, like Dovecot's soft quota. Refusals are never cached, so a
    new user receives mail at once.
    """

    def __init__(
        self,
        units: UnitOfWorkFactory,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._units = units
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._accepted: dict[EmailAddress, tuple[float, Accept]] = {}
        self._looking: dict[EmailAddress, asyncio.Future[Accept | Refuse]] = {}

    async def check_sender(
        self, client: Client, sender: str, declared_size: int | None
    ) -> Envelope | Refuse:
        # Anyone may send to a hosted address; the size was held to SIZE by aiosmtpd.
        return Envelope(sender)

    async def check_recipient(
        self, client: Client, envelope: Envelope, recipient: EmailAddress
    ) -> Verdict:
        return await self.lookup(recipient)

    async def check_message(
        self, client: Client, envelope: Envelope, message: bytes
    ) -> Refuse | None:
        return room_refusal(envelope.mailboxes, len(message))

    async def release(self, envelope: Envelope) -> None:
        return None  # the MX takes no share of any limit

    async def lookup(self, address: EmailAddress) -> Accept | Refuse:
        """The hosted mailbox for `address`, with room left, or why mail cannot go there."""
        now = self._clock()
        cached = self._accepted.get(address)
        if cached is not None and cached[0] > now:
            return _with_room(cached[1].mailbox)
        found = await self._shared_look_up(address)
        if isinstance(found, Accept) and self._cache_seconds > 0:
            if len(self._accepted) >= MAX_CACHED:
                self._accepted.clear()  # bounded memory; it refills within a second
            self._accepted[address] = (now + self._cache_seconds, found)
        return _with_room(found.mailbox) if isinstance(found, Accept) else found

    def stored(self, mailbox: MailboxRecord, nbytes: int) -> None:
        """Keep a remembered recipient's usage current after a delivery by this process."""
        cached = self._accepted.get(mailbox.address)
        if cached is not None:
            expires, verdict = cached
            grown = replace(verdict.mailbox, used_bytes=verdict.mailbox.used_bytes + nbytes)
            self._accepted[mailbox.address] = (expires, Accept(grown))

    async def _shared_look_up(self, address: EmailAddress) -> Accept | Refuse:
        """RCPTs for one address that miss the cache together share one query: when an
        entry expires, every busy connection misses it in the same moment."""
        pending = self._looking.get(address)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(address))
            self._looking[address] = pending
            pending.add_done_callback(lambda _: self._looking.pop(address, None))
        return await asyncio.shield(pending)

    async def _look_up(self, address: EmailAddress) -> Accept | Refuse:
        """The recipient's mailbox (Accept, before any quota check) or why there is none."""
        async with self._units() as uow:
            found = await uow.directory.find_recipient(address)
        if found is None:
            # Never an open relay: the MX accepts mail only for hosted domains, and a
            # pending domain (ownership not proven) is not hosted yet.
            return Refuse(Reason.RELAY_DENIED, str(address))
        if not found.domain_enabled:
            return Refuse(Reason.TENANT_DISABLED, str(address))
        if not found.user_enabled:
            return Refuse(Reason.UNKNOWN_USER, str(address))
        if found.mailbox is None:
            return Refuse(Reason.NO_MAILBOX, str(address))
        return Accept(found.mailbox)
