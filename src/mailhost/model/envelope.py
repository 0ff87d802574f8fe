"""One SMTP transaction as a value: what the edge tells the rules, and what the rules answer.

The MX and submission run the same transaction (smtp/session.py); only their
policy differs. The policy answers each step with a verdict, the envelope
collects the verdicts, and delivery acts on the envelope at DATA without
asking again.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from enum import StrEnum

from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord, MailboxRecord


class Reason(StrEnum):
    """Why a recipient or message is refused; smtp/replies.py renders each one."""

    UNKNOWN_USER = "unknown_user"
    NO_MAILBOX = "no_mailbox"
    RELAY_DENIED = "relay_denied"
    TENANT_DISABLED = "tenant_disabled"  # the recipient's domain or customer is disabled
    MAILBOX_FULL = "mailbox_full"
    MAILBOX_WOULD_OVERFLOW = "mailbox_would_overflow"
    MESSAGE_TOO_BIG = "message_too_big"
    # Submission (services/submission_policy.py): what the sender's SMTP account allows.
    NO_SMTP_ACCOUNT = "no_smtp_account"
    RELAY_NOT_PERMITTED = "relay_not_permitted"
    SENDER_NOT_ALLOWED = "sender_not_allowed"
    HOURLY_LIMIT = "hourly_limit"
    RECIPIENT_LIMIT = "recipient_limit"
    ACCOUNT_SIZE_LIMIT = "account_size_limit"
    TRANSFER_LIMIT = "transfer_limit"


@dataclass(frozen=True, slots=True)
class Accept:
    """Deliver into this hosted mailbox."""

    mailbox: MailboxRecord


@dataclass(frozen=True, slots=True)
class Relay:
    """Queue for delivery to this address outside our hosted domains."""

    address: EmailAddress


@dataclass(frozen=True, slots=True)
class Refuse:
    """`detail` names the address concerned; `limit` the limit, sender or plan, if any."""

    reason: Reason
    detail: str
    limit: str = ""


Verdict = Accept | Relay | Refuse


@dataclass(frozen=True, slots=True)
class Client:
    """What the policies know of the SMTP session: who connected, and who logged in."""

    ip: str | None
    helo: str | None
    tls: bool
    login: LoginRecord | None = None
    # Tells connections apart, for what a policy remembers of one (never reused in a process).
    connection: int = 0


def new_message_id() -> str:
    """The one id of a message: in its trace header, the 250 reply, the spool, the logs.

    Seconds then 64 random bits: unique enough for a spool file name (written with
    O_EXCL), and no secret, so no system call per message for it.
    """
    return f"{int(time.time()):x}-{random.getrandbits(64):016x}"


@dataclass(slots=True)
class Envelope:
    """One MAIL ... DATA: its sender, id, and the recipients the policy accepted so far.

    The ids are the sending user's (submission): relayed mail is held while its
    customer or domain is disabled, and `reserved_hour` is the slot of that
    user's hourly limit the message took, given back if it is not accepted.
    """

    sender: str  # "" for the null sender
    id: str = field(default_factory=new_message_id)
    recipients: list[EmailAddress] = field(default_factory=list)
    mailboxes: list[MailboxRecord] = field(default_factory=list)
    relayed: list[EmailAddress] = field(default_factory=list)
    user_id: int | None = None
    customer_id: int | None = None
    domain_id: int | None = None
    reserved_hour: str | None = None

    def add(self, recipient: EmailAddress, verdict: Accept | Relay) -> None:
        if recipient in self.recipients:  # named twice, delivered once
            return
        self.recipients.append(recipient)
        if isinstance(verdict, Accept):
            self.mailboxes.append(verdict.mailbox)
        else:
            self.relayed.append(verdict.address)
