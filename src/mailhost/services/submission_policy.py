"""Submission rules: what an authenticated user may send is decided by their SMTP account.

The seed's core rule: any Domain Name User can authenticate (the same password
as POP3), but only a user holding an SMTP account, with its relay facility on,
has mail relayed to other domains. Mail to hosted addresses is delivered for
every authenticated user, because the MX would accept that mail from anyone;
refusing it on submission would protect nothing. Within an account, its
facilities bound the sender addresses (own, or any of the domain with `D`),
messages per hour (`H<n>`, counted in the database for every node), recipients
per message (`N<n>`) and message size (`S<size>`); the customer's plan bounds
the monthly transfer relayed out.

The submission PolicyEngine (services/policy.py). Checks return a `Refuse` or
a positive answer; refusing one recipient is a normal outcome of a transaction
(RFC 5321 §3.3), never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mailhost.errors import InvalidAddress, NotPermitted
from mailhost.interfaces import SubmissionCounters, UnitOfWorkFactory
from mailhost.model.envelope import (
    Accept,
    Client,
    Envelope,
    Expand,
    Owner,
    Reason,
    Refuse,
    Relay,
    Verdict,
)
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.message import author_addresses
from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord, PlanRecord, SmtpAccountRecord
from mailhost.services.inbound_policy import InboundPolicy, room_refusal
from mailhost.services.transfer_notices import TransferNotices
from mailhost.services.usage import month_of, utc_now


def hour_of(moment: datetime) -> str:
    """The `send_counters` key of the hour `moment` falls in (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


@dataclass(frozen=True, slots=True)
class Submitter:
    """An authenticated user as the rules see them for one transaction (read at MAIL)."""

    login: LoginRecord
    account: SmtpAccountRecord | None  # None: no SMTP account, so no relaying
    plan: PlanRecord | None  # the customer's plan
    transfer_used: int  # bytes of this month's transfer so far

    @property
    def address(self) -> str:
        return str(self.login.address)

    @property
    def facilities(self) -> SmtpFacilities | None:
        return None if self.account is None else self.account.facilities


# A user sending message after message has the account, plan and transfer read
# again after this long; the hourly count is still reserved atomically per message.
SUBMITTER_SECONDS = 10.0
MAX_CACHED = 10_000


def sender_allowed(login: LoginRecord, account: SmtpAccountRecord | None, sender: str) -> bool:
    """May this user send as `sender` (MAIL FROM or a From: address)?

    Their own address always (hosted usernames are case-insensitive); any address
    of their own domain when their SMTP account has the `D` facility; nothing else,
    the null sender and unparsable addresses included.
    """
    try:
        address = EmailAddress.parse(sender)
    except InvalidAddress:
        return False
    own = login.address
    if address.domain != own.domain:
        return False
    if address.local.lower() == own.local:
        return True
    return account is not None and account.facilities.sender_scope is SenderScope.DOMAIN


class SubmissionPolicy:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        counters: SubmissionCounters,
        inbound: InboundPolicy,
        notices: TransferNotices,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._units = units
        self._counters = counters
        self._inbound = inbound
        self._notices = notices
        self._clock = clock
        # Per connection, as a mail program sends message after message on one.
        self._submitters: dict[int, tuple[float, Submitter]] = {}

    async def submitter(self, login: LoginRecord) -> Submitter:
        """Read the user's SMTP account and the customer's plan and transfer; tell the
        customer if the transfer has crossed a notice level."""
        month = month_of(self._clock())
        async with self._units() as uow:
            account = await uow.facilities.smtp_account_of(login.user_id)
            customer = await uow.directory.customer_by_id(login.customer_id)
            used = await uow.usage.transfer(login.customer_id, month)
        if customer is not None:
            await self._notices.check(customer, used)
        return Submitter(login, account, None if customer is None else customer.plan, used)

    async def _current(self, client: Client) -> Submitter:
        """The client's submitter, read again when older than SUBMITTER_SECONDS."""
        login = client.login
        if login is None:  # smtp/session.py answers 530 before any mail command
            raise NotPermitted("submission needs a login")
        now = time.monotonic()
        cached = self._submitters.get(client.connection)
        if cached is None or now - cached[0] > SUBMITTER_SECONDS or cached[1].login != login:
            if len(self._submitters) >= MAX_CACHED:
                self._forget_older_than(now - SUBMITTER_SECONDS)
            cached = (now, await self.submitter(login))
            self._submitters[client.connection] = cached
        return cached[1]

    def _forget_older_than(self, moment: float) -> None:
        """Bounded memory: entries of closed connections go, and any that would be read
        again anyway; the connections sending now keep theirs (all go only if all are new)."""
        stale = [key for key, (read_at, _) in self._submitters.items() if read_at < moment]
        for key in stale:
            del self._submitters[key]
        if len(self._submitters) >= MAX_CACHED:
            self._submitters.clear()

    async def check_sender(
        self, client: Client, sender: str, declared_size: int | None
    ) -> Envelope | Refuse:
        """MAIL FROM: sender scope, the size announced with SIZE=, and the hourly limit."""
        who = await self._current(client)
        if not sender_allowed(who.login, who.account, sender):
            return Refuse(Reason.SENDER_NOT_ALLOWED, who.address, sender or "<>")
        if declared_size is not None:
            refusal = self._size_refusal(who, declared_size)
            if refusal is not None:
                return refusal
        limit = None if who.facilities is None else who.facilities.hourly_limit
        if limit is not None:
            sent = await self._counters.messages_sent(who.login.user_id, hour_of(self._clock()))
            if sent >= limit:
                return Refuse(Reason.HOURLY_LIMIT, who.address, str(limit))
        login = who.login
        return Envelope(
            sender,
            user_id=login.user_id,
            customer_id=login.customer_id,
            domain_id=login.domain_id,
        )

    async def check_recipient(
        self, client: Client, envelope: Envelope, recipient: EmailAddress
    ) -> Verdict:
        """RCPT TO: hosted recipients as on the MX; others only with relaying authority."""
        who = await self._current(client)
        most = None if who.facilities is None else who.facilities.max_recipients
        if most is not None and len(envelope.recipients) >= most:
            return Refuse(Reason.RECIPIENT_LIMIT, who.address, str(most))
        verdict = await self._inbound.route(recipient)
        if isinstance(verdict, Relay):
            # A hosted domain's postmaster or abuse address that its owner sends on
            # elsewhere: the domain's own routing, as on the MX, not this user's relaying.
            return self._joining(envelope, verdict, recipient)
        if isinstance(verdict, Accept | Expand) or verdict.reason is not Reason.RELAY_DENIED:
            # A hosted address: delivered (an alias's copies too, the domain's own
            # routing as on the MX), or refused as the MX would.
            return verdict
        if who.account is None:
            return Refuse(Reason.NO_SMTP_ACCOUNT, who.address)
        if not who.account.facilities.relay:
            return Refuse(Reason.RELAY_NOT_PERMITTED, who.address)
        plan = who.plan
        if plan is None or _over_transfer(plan, who.transfer_used):
            name = "unknown" if plan is None else f"{plan.name} ({plan.limits.transfer})"
            return Refuse(Reason.TRANSFER_LIMIT, who.address, name)
        login = who.login
        return self._joining(
            envelope, Relay(recipient, Owner(login.customer_id, login.domain_id)), recipient
        )

    @staticmethod
    def _joining(envelope: Envelope, relay: Relay, recipient: EmailAddress) -> Relay | Refuse:
        """Relayed recipients are queued under one owner per message; another's waits (452)."""
        if not envelope.relays_for(relay.owner):
            return Refuse(Reason.ANOTHER_OWNER, str(recipient))
        return relay

    async def check_message(
        self, client: Client, envelope: Envelope, message: bytes
    ) -> Refuse | None:
        """After DATA: the account's size limit, the sender headers, the hosted
        mailboxes' room (as on the MX), then one message off the hourly limit.

        RFC 6409 §8.1 lets a submission server add a missing From:; we pass the
        message on without one, and MAIL FROM was checked already.
        """
        who = await self._current(client)
        refusal = self._size_refusal(who, len(message))
        if refusal is not None:
            return refusal
        for author in author_addresses(message) or ():
            if not sender_allowed(who.login, who.account, author):
                return Refuse(Reason.SENDER_NOT_ALLOWED, who.address, author)
        refusal = room_refusal(envelope.mailboxes, len(message))
        if refusal is not None:
            return refusal
        return await self._reserve(who, envelope)

    async def _reserve(self, who: Submitter, envelope: Envelope) -> Refuse | None:
        """Count the message against the hourly limit, atomically across connections and nodes."""
        limit = None if who.facilities is None else who.facilities.hourly_limit
        if limit is None:
            return None
        hour = hour_of(self._clock())
        if not await self._counters.reserve_message(who.login.user_id, hour, limit):
            return Refuse(Reason.HOURLY_LIMIT, who.address, str(limit))
        envelope.reserved_hour = hour
        return None

    async def release(self, envelope: Envelope) -> None:
        """The reserved message was not accepted after all (a temporary failure)."""
        hour, envelope.reserved_hour = envelope.reserved_hour, None
        if hour is not None and envelope.user_id is not None:
            await self._counters.release_message(envelope.user_id, hour)

    @staticmethod
    def _size_refusal(who: Submitter, size: int) -> Refuse | None:
        most = None if who.facilities is None else who.facilities.max_message_size
        if most is not None and size > most.bytes:
            return Refuse(Reason.ACCOUNT_SIZE_LIMIT, who.address, str(most))
        return None


def _over_transfer(plan: PlanRecord, used: int) -> bool:
    limit = plan.limits.transfer
    return limit is not None and used >= limit.bytes
