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

from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import LoginRecord, MailboxRecord


class Reason(StrEnum):
    """Why a recipient or message is refused; smtp/replies.py renders each one."""

    UNKNOWN_USER = "unknown_user"
    NO_MAILBOX = "no_mailbox"
    RELAY_DENIED = "relay_denied"
    TENANT_DISABLED = "tenant_disabled"  # the recipient's domain or customer is disabled
    # A relayed role address of another tenant than the envelope's relayed mail so far:
    # the queue keeps one owner per message, so it comes in another transaction.
    ANOTHER_OWNER = "another_owner"
    MAILBOX_FULL = "mailbox_full"
    MAILBOX_WOULD_OVERFLOW = "mailbox_would_overflow"
    MESSAGE_TOO_BIG = "message_too_big"
    # Aliases and SRS (services/forwarding.py).
    ALIAS_LOOP = "alias_loop"  # the alias's targets lead back to it, or chain too deep
    SRS_FORGED = "srs_forged"
    SRS_EXPIRED = "srs_expired"
    SRS_MALFORMED = "srs_malformed"
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
class Owner:
    """Whose queued mail a relayed recipient is: held while they are disabled, dropped
    when they are removed (storage/database/queue.py)."""

    customer_id: int
    domain_id: int


@dataclass(frozen=True, slots=True)
class Relay:
    """Queue for delivery to this address outside our hosted domains.

    `owner` is set for a hosted domain's postmaster or abuse mail sent on to an address
    elsewhere (services/inbound_policy.py); None leaves the envelope's own (on
    submission, the sending user's).
    """

    address: EmailAddress
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class Refuse:
    """`detail` names the address concerned; `limit` the limit, sender or plan, if any."""

    reason: Reason
    detail: str
    limit: str = ""


@dataclass(frozen=True, slots=True)
class Expand:
    """An alias (or a mailbox's forward): a copy in each hosted mailbox, and a copy
    relayed to each address elsewhere with the sender rewritten by SRS to `forwarder`
    (the alias's domain), queued for `owner`, whose transfer it counts toward."""

    mailboxes: tuple[MailboxRecord, ...]
    forwards: tuple[EmailAddress, ...]
    forwarder: DomainName
    owner: Owner


@dataclass(slots=True)
class Forward:
    """Addresses elsewhere that an alias of `forwarder` sends a message's copy to."""

    forwarder: DomainName
    owner: Owner
    addresses: list[EmailAddress]


Verdict = Accept | Relay | Expand | Refuse


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

    The ids are the sending user's (submission), or on the MX those of the domain
    whose postmaster mail is relayed: relayed mail is held while its customer or
    domain is disabled. `reserved_hour` is the slot of the sending user's hourly
    limit the message took, given back if it is not accepted.
    """

    sender: str  # "" for the null sender
    id: str = field(default_factory=new_message_id)
    recipients: list[EmailAddress] = field(default_factory=list)
    mailboxes: list[MailboxRecord] = field(default_factory=list)
    relayed: list[EmailAddress] = field(default_factory=list)
    # Alias copies relayed elsewhere: spooled apart, each with its SRS sender.
    forwards: list[Forward] = field(default_factory=list)
    user_id: int | None = None
    customer_id: int | None = None
    domain_id: int | None = None
    reserved_hour: str | None = None
    # MAIL FROM carried SMTPUTF8 (RFC 6531 §3.4): UTF-8 addresses may follow, and the
    # trace header says UTF8SMTP. Relaying decides afresh from the message itself
    # (model/message.py needs_smtputf8), so the queue does not have to remember this.
    smtputf8: bool = False

    @property
    def owner(self) -> Owner | None:
        if self.customer_id is None or self.domain_id is None:
            return None
        return Owner(self.customer_id, self.domain_id)

    def relays_for(self, owner: Owner | None) -> bool:
        """May a recipient relayed for `owner` join? Relayed recipients are queued under
        the envelope's one customer and domain (services/delivery.py)."""
        return not self.relayed or self.owner == owner

    def add(self, recipient: EmailAddress, verdict: Accept | Relay | Expand) -> None:
        if recipient in self.recipients:  # named twice, delivered once
            return
        self.recipients.append(recipient)
        if isinstance(verdict, Accept):
            self.mailboxes.append(verdict.mailbox)
            return
        if isinstance(verdict, Expand):
            self._expand(verdict)
            return
        self.relayed.append(verdict.address)
        if verdict.owner is not None:
            self.customer_id = verdict.owner.customer_id
            self.domain_id = verdict.owner.domain_id

    def _expand(self, verdict: Expand) -> None:
        # Mailboxes named twice get one copy (services/delivery.py); so do forwards.
        self.mailboxes.extend(verdict.mailboxes)
        if not verdict.forwards:
            return
        for forward in self.forwards:
            if forward.forwarder == verdict.forwarder and forward.owner == verdict.owner:
                break
        else:
            forward = Forward(verdict.forwarder, verdict.owner, [])
            self.forwards.append(forward)
        forward.addresses.extend(a for a in verdict.forwards if a not in forward.addresses)
