"""Transfer notices: a customer is mailed once at 80 % and once at 100 % of a month's transfer.

Each (customer, month, level) is claimed in the database before its notice is
sent, so one notice goes out however many connections and nodes notice the
crossing at once; a notice that cannot be sent is unclaimed for a later try.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailhost.errors import MailhostError
from mailhost.interfaces import Outbox, SubmissionCounters
from mailhost.model.actors import ProviderActor
from mailhost.model.names import EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import CustomerRecord
from mailhost.services.accounts import AccountService
from mailhost.services.usage import UsageService, month_of, utc_now

log = logging.getLogger("mailhost.usage")

# Percent of the plan's monthly transfer at which the customer is told, highest first.
LEVELS = (100, 80)
# Claimed levels remembered in memory, so that a busy month costs no write per message.
_MAX_REMEMBERED = 100_000


def levels_reached(used: int, limit: ByteSize | None) -> tuple[int, ...]:
    """The notice levels `used` bytes have reached, highest first (none without a limit)."""
    if limit is None or limit.bytes == 0:
        return ()
    return tuple(level for level in LEVELS if used * 100 >= limit.bytes * level)


class TransferNotices:
    def __init__(
        self,
        counters: SubmissionCounters,
        outbox: Outbox,
        sender: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._counters = counters
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        self._claimed: set[tuple[int, str, int]] = set()

    async def check(self, customer: CustomerRecord, used: int) -> None:
        """Send the notice for the highest level `used` reached, unless it went out already.

        A lower level reached at the same time is claimed without a message of its
        own: a customer who jumps past 100 % is not told about 80 % afterwards.
        """
        month = month_of(self._clock())
        fresh = [
            level
            for level in levels_reached(used, customer.plan.limits.transfer)
            if (customer.id, month, level) not in self._claimed
        ]
        told = False
        for level in fresh:
            if len(self._claimed) >= _MAX_REMEMBERED:
                self._claimed.clear()
            self._claimed.add((customer.id, month, level))
            claimed = await self._counters.claim_notice(customer.id, month, level)
            if claimed and not told:
                told = True
                await self._send(customer, month, level, used)

    async def watch(
        self, accounts: AccountService, usage: UsageService, interval: float = 60.0
    ) -> None:
        """Check every customer each `interval` seconds, forever.

        Transfer also grows through the MX, POP3 and the outbound worker, not only
        through submissions (which check at once): this catches those crossings.
        """
        system = ProviderActor("transfer-notices")
        while True:
            await asyncio.sleep(interval)
            try:
                used = {u.customer_login: u.transfer_bytes for u in await usage.report(system)}
                for customer in await accounts.customers(system):
                    await self.check(customer, used.get(customer.login, 0))
            except Exception:  # the next round tries again; never kill the loop
                log.exception("transfer notice check failed")

    async def _send(self, customer: CustomerRecord, month: str, level: int, used: int) -> None:
        try:
            recipient = EmailAddress.parse(customer.contact_email)
            await self._outbox.send(
                self._sender, [recipient], self._message(customer, recipient, level, used)
            )
        except (MailhostError, OSError) as exc:
            log.warning("%d%% transfer notice for %s not sent: %s", level, customer.login, exc)
            self._claimed.discard((customer.id, month, level))
            await self._counters.forget_notice(customer.id, month, level)
            return
        log.info("%d%% transfer notice for %s sent to %s", level, customer.login, recipient)

    def _message(
        self, customer: CustomerRecord, recipient: EmailAddress, level: int, used: int
    ) -> bytes:
        plan = customer.plan
        limit = plan.limits.transfer
        message = EmailMessage()
        message["From"] = f"mailhost <{self._sender}>"
        message["To"] = str(recipient)
        message["Subject"] = f"Your plan {plan.name}: {level}% of this month's data transfer used"
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no auto-replies to this
        consequence = (
            "Mail to other domains is refused until the month ends or the plan's limit is raised;\n"
            "mail between your own addresses still works.\n"
            if level >= 100
            else "At 100%, mail to other domains will be refused until the month ends.\n"
        )
        message.set_content(
            f"Customer {customer.login} has used {ByteSize(used)} of the {limit} monthly\n"
            f"data transfer of plan {plan.name} ({level}% or more).\n\n"
            f"{consequence}"
        )
        return message.as_bytes()
