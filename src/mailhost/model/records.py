"""Frozen read records that repositories return; no I/O, no ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize


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
    """Which mailbox a store operation is about; the store derives its path."""

    id: int
    address: EmailAddress


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    id: int
    user_id: int
    customer_id: int
    address: EmailAddress
    quota: ByteSize | None
    used_bytes: int

    @property
    def ref(self) -> MailboxRef:
        return MailboxRef(self.id, self.address)


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
    address: EmailAddress
    password_hash: str
    enabled: bool
    mailbox: MailboxRef | None


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    """What one lookup tells the MX about an address of a hosted domain."""

    domain_enabled: bool
    user_enabled: bool | None  # None: no such user
    mailbox: MailboxRecord | None
