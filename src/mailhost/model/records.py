"""Frozen read records that repositories return; no I/O, no ORM rows."""

from __future__ import annotations

from collections.abc import Sequence
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
    # Where postmaster@ (and abuse@, when enabled) goes without a mailbox of that name;
    # None: the customer's contact address (services/postmaster.py).
    postmaster_address: EmailAddress | None
    abuse_enabled: bool

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
    detail: str = ""  # what the change was ("R H120", "quota=250MB"); may be empty


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
class TwoFactorRecord:
    """A login's TOTP enrolment: pending (shown as a QR code) until a code confirms it."""

    id: int
    subject: str  # the login's name when it enrolled, checked on every use
    secret: str  # base32 (RFC 4648), shared with the login's authenticator app
    enabled_at: datetime | None  # None: not confirmed yet, nothing asks for a code
    last_step: int | None  # the RFC 6238 time step of the last code accepted
    recovery_left: int

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


@dataclass(frozen=True, slots=True)
class AppPasswordRecord:
    """A domain user's named password for one mail program; its secret is never kept."""

    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_address: str | None


@dataclass(frozen=True, slots=True)
class AppPasswordSecret:
    """What a mail login compares a typed app password with."""

    id: int
    name: str
    subject: str  # the user's address when it was made, checked on every use
    password_hash: str  # argon2id of the letters without spaces
    last_used_at: datetime | None
    last_used_address: str | None


@dataclass(frozen=True, slots=True)
class MailSecrets:
    """Besides the account password, what decides a user's POP3 and submission logins."""

    two_factor: bool  # on: the account password no longer opens mail, app passwords do
    app_passwords: Sequence[AppPasswordSecret]


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    """What one lookup tells the MX about an address of a hosted (verified) domain."""

    # False when the domain or its customer is disabled: mail waits (4xx), nothing is said.
    domain_enabled: bool
    user_enabled: bool | None  # None: no such user
    mailbox: MailboxRecord | None


@dataclass(frozen=True, slots=True)
class PostmasterRecord:
    """Where a hosted (verified) domain's postmaster@ mail goes, and whether abuse@ does too."""

    domain_id: int
    customer_id: int
    target: str  # the address the domain's owner chose, else the customer's contact address
    abuse_enabled: bool


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """One address an alias sends to; `external` if it was not hosted here when added
    (those count toward `[delivery] max_external_forwards_per_domain`)."""

    address: EmailAddress
    external: bool


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """An address of a hosted domain without a user, and where its mail goes."""

    id: int
    domain_id: int
    customer_id: int
    address: EmailAddress
    targets: tuple[AliasTarget, ...]


@dataclass(frozen=True, slots=True)
class CatchAllRecord:
    """Where mail for unknown local parts of a domain goes (None: refused, the default)."""

    domain_id: int
    customer_id: int
    mailbox: EmailAddress | None


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
