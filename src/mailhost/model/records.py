"""Frozen read records that repositories return; no I/O, no ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize

DomainStatus = Literal["pending", "verified", "disabled"]


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: int
    name: str
    limits: PlanLimits


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: int
    login: str
    contact_email: str
    plan: PlanRecord
    enabled: bool


@dataclass(frozen=True, slots=True)
class DomainRecord:
    id: int
    name: DomainName
    customer_id: int
    customer_login: str
    enabled: bool
    # None while the domain is pending: its ownership is not proven, so it receives no
    # mail and mail for it is treated as external (services/ownership.py).
    verified_at: datetime | None
    # Published as TXT `mailhost-verification=<token>` at the domain to prove ownership.
    verification_token: str

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    @property
    def status(self) -> DomainStatus:
        """What lists show; a disabled domain is disabled whether proven or not."""
        if not self.enabled:
            return "disabled"
        return "verified" if self.verified else "pending"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    domain_id: int
    customer_id: int
    address: EmailAddress
    recovery_email: str | None
    enabled: bool
    has_mailbox: bool
    has_smtp_account: bool


@dataclass(frozen=True, slots=True)
class MailboxRef:
    """Which mailbox a store operation is about; the store derives its path.

    `storage_key` names the mailbox's files: its own, never reused, so a mailbox made
    again at the same address starts empty.
    """

    id: int
    address: EmailAddress
    storage_key: str


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    id: int
    user_id: int
    customer_id: int
    address: EmailAddress
    quota: ByteSize | None
    used_bytes: int
    storage_key: str

    @property
    def ref(self) -> MailboxRef:
        return MailboxRef(self.id, self.address, self.storage_key)


@dataclass(frozen=True, slots=True)
class SmtpAccountRecord:
    id: int
    user_id: int
    address: EmailAddress
    facilities: SmtpFacilities


@dataclass(frozen=True, slots=True)
class UsageRecord:
    customer_login: str
    plan: PlanRecord
    month: str
    domains: int
    accounts: int
    storage_bytes: int
    transfer_bytes: int


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    customer_id: int | None


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """What authentication needs to know about a domain user."""

    user_id: int
    customer_id: int
    domain_id: int
    address: EmailAddress
    password_hash: str
    enabled: bool
    mailbox: MailboxRef | None


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    """What one lookup tells the MX about an address of a hosted (verified) domain."""

    # False when the domain or its customer is disabled: mail waits (4xx), nothing is said.
    domain_enabled: bool
    user_enabled: bool | None  # None: no such user
    mailbox: MailboxRecord | None


@dataclass(frozen=True, slots=True)
class RemovalSummary:
    """What removing a domain or a customer deletes for good; shown before it is done."""

    kind: Literal["domain", "customer"]
    name: str  # the domain's A-label or the customer's login
    domains: int
    mailboxes: int
    mail_bytes: int

    @property
    def deletes_mail(self) -> bool:
        return self.mail_bytes > 0

    def __str__(self) -> str:
        """E.g. "domain example.com: 3 mailboxes, 12.4MB of mail will be deleted for good"."""
        counts = [_counted(self.mailboxes, "mailbox", "mailboxes")]
        if self.kind == "customer":
            counts.insert(0, _counted(self.domains, "domain", "domains"))
        mail = "no mail"
        if self.deletes_mail:
            mail = f"{ByteSize(self.mail_bytes)} of mail will be deleted for good"
        return f"{self.kind} {self.name}: {', '.join(counts)}, {mail}"


def _counted(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"
