"""MX rules: is the recipient hosted, does it have a mailbox, is there room?

The inbound PolicyEngine (services/policy.py); submission asks it too for
hosted recipients, so a hosted address is refused the same way on both.
postmaster@ every hosted domain (RFC 5321 §4.5.1), abuse@ where its owner
turned it on (RFC 2142), and the server's own postmaster go where their owner
chose when no mailbox has that name (`route`). An address without a user may be
an alias or an SRS bounce address, and a local part nothing takes may go to the
domain's catch-all (services/forwarding.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from mailhost.errors import InvalidAddress
from mailhost.interfaces import UnitOfWorkFactory
from mailhost.model.envelope import Accept, Client, Envelope, Owner, Reason, Refuse, Relay, Verdict
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRecord
from mailhost.model.roles import Role, role_of
from mailhost.model.srs import SrsCodec
from mailhost.services.forwarding import Forwarding
from mailhost.services.usage import utc_now

MAX_CACHED = 10_000
# A role address goes where its owner chose when no mailbox of that name takes its mail:
# a mailbox called postmaster@ wins, a user without a mailbox does not.
_NO_MAILBOX = frozenset({Reason.UNKNOWN_USER, Reason.NO_MAILBOX})


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
    new user receives mail at once. Role addresses are looked up afresh each
    time (their target's mailbox is cached like any other).

    `hostname` is the server's own ([server] hostname): postmaster@ it, and the
    bare `<postmaster>` (model/roles.py), are the server's postmaster. `srs` reverses
    bounces to the SRS addresses forwarded mail went out with; without it no address
    is taken for one.
    """

    def __init__(
        self,
        units: UnitOfWorkFactory,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        hostname: str = "",
        srs: SrsCodec | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._units = units
        self.srs = srs
        self._forwarding = Forwarding(units, self.lookup, srs, wall_clock)
        self._hostname = hostname
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
        verdict = await self.route(recipient)
        if isinstance(verdict, Relay) and not envelope.relays_for(verdict.owner):
            return Refuse(Reason.ANOTHER_OWNER, str(recipient))
        return verdict

    async def check_message(
        self, client: Client, envelope: Envelope, message: bytes
    ) -> Refuse | None:
        return room_refusal(envelope.mailboxes, len(message))

    async def release(self, envelope: Envelope) -> None:
        return None  # the MX takes no share of any limit

    async def route(self, address: EmailAddress) -> Verdict:
        """Where mail for `address` goes: its mailbox (`lookup`); without a user, an
        alias's targets or an SRS bounce's sender; for a role address without a
        mailbox, the mailbox or the address elsewhere its owner chose; last, for a
        local part nothing takes, the domain's catch-all."""
        found = await self.lookup(address)
        if isinstance(found, Accept):
            return found
        if found.reason is Reason.UNKNOWN_USER:
            forwarded = await self._forwarding.route(address)
            if forwarded is not None:
                return forwarded
        role = await self._role(address, found)
        if role is not None:
            return role
        if found.reason is Reason.UNKNOWN_USER:
            return await self._forwarding.catch_all(address) or found
        return found

    async def _role(self, address: EmailAddress, found: Refuse) -> Verdict | None:
        """A role address's route, or None when it has none (or is no role address)."""
        role = role_of(address)
        if role is None:
            return None
        if found.reason is Reason.RELAY_DENIED:
            if role is Role.POSTMASTER and address.domain.ascii == self._hostname:
                return await self._server_postmaster(address)
            return found  # never an open relay: not hosted, or pending (not proven)
        if found.reason not in _NO_MAILBOX:
            # A disabled domain's postmaster waits (450) like the rest of its mail: a
            # suspended tenant's mail is held, and the sender retries for days. RFC 5321
            # §4.5.1 is still met by the server's own postmaster, which no tenant holds.
            return found
        async with self._units() as uow:
            chosen = await uow.postmasters.of_domain(address.domain)
        if chosen is None or (role is Role.ABUSE and not chosen.abuse_enabled):
            return None
        owner = Owner(chosen.customer_id, chosen.domain_id)
        return await self._to_target(address, chosen.target, owner)

    async def _server_postmaster(self, address: EmailAddress) -> Verdict:
        async with self._units() as uow:
            target = await uow.postmasters.of_server()
        if target is None:  # no provider admin yet: nobody to give the mail to
            return Refuse(Reason.UNKNOWN_USER, str(address))
        return await self._to_target(address, target, None)  # mailhost's own: never held

    async def _to_target(self, address: EmailAddress, target: str, owner: Owner | None) -> Verdict:
        """The target's own mailbox (never another role address: no loops), else the
        queue when it is not hosted here. A refusal names `address`, never the target."""
        try:
            to = EmailAddress.parse(target)
        except InvalidAddress:  # a contact address stored before it was checked
            return Refuse(Reason.UNKNOWN_USER, str(address))
        if role_of(to) is Role.POSTMASTER and to.domain.ascii == self._hostname:
            if owner is None:  # the server's postmaster is itself: a loop through the queue
                return Refuse(Reason.UNKNOWN_USER, str(address))
            return await self._server_postmaster(address)
        found = await self.lookup(to)
        if isinstance(found, Accept):
            return found
        if found.reason is Reason.RELAY_DENIED:
            return Relay(to, owner)
        return Refuse(found.reason, str(address))

    async def lookup(self, address: EmailAddress) -> Accept | Refuse:
        """The hosted mailbox for `address`, with room left, or why mail cannot go there;
        role addresses without a mailbox are `route`'s."""
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
