"""The API contract: pydantic models of requests and answers, and their mapping from records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.quantities import ByteSize
from mailhost.model.records import (
    AuditRecord,
    CustomerRecord,
    DomainRecord,
    DomainStatus,
    MailboxRecord,
    PlanRecord,
    SmtpAccountRecord,
    UsageRecord,
    UserRecord,
)
from mailhost.services.dns_records import DnsRecord

T = TypeVar("T")

# Control characters are refused at the edge: no name, login or address needs one.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_PRINTABLE)]
_NAME = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$"
Login = Annotated[str, StringConstraints(max_length=64, pattern=_NAME)]
Address = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=_PRINTABLE)]
DomainText = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=_PRINTABLE)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Size = Annotated[
    str,
    StringConstraints(max_length=32, pattern=_PRINTABLE),
    Field(description="a size such as 250MB, 2.5GB or 1GiB", examples=["250MB"]),
]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
PositiveCount = Annotated[int, Field(ge=1, le=1_000_000)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(Model):
    code: str = Field(description="stable machine-readable code, e.g. plan_limit_reached")
    message: str = Field(description="what was refused and why, naming the object and limit")


class MeOut(Model):
    actor: str
    kind: str


class PlanIn(Model):
    name: Name
    max_domains: Count | None = None
    storage: Size | None = None
    transfer: Size | None = None
    max_accounts: Count | None = None


class PlanOut(Model):
    name: str
    max_domains: int | None
    storage_bytes: int | None
    transfer_bytes: int | None
    max_accounts: int | None

    @classmethod
    def of(cls, plan: PlanRecord) -> PlanOut:
        limits = plan.limits
        return cls(
            name=plan.name,
            max_domains=limits.max_domains,
            storage_bytes=None if limits.storage is None else limits.storage.bytes,
            transfer_bytes=None if limits.transfer is None else limits.transfer.bytes,
            max_accounts=limits.max_accounts,
        )


class CustomerIn(Model):
    login: Login
    plan: Name
    contact_email: Address
    password: Password


class CustomerPatch(Model):
    enabled: bool | None = None
    plan: Name | None = None


class CustomerOut(Model):
    login: str
    plan: str
    contact_email: str
    enabled: bool

    @classmethod
    def of(cls, customer: CustomerRecord) -> CustomerOut:
        return cls(
            login=customer.login,
            plan=customer.plan.name,
            contact_email=customer.contact_email,
            enabled=customer.enabled,
        )


class UsageOut(Model):
    customer: str
    plan: PlanOut
    month: str
    domains: int
    accounts: int
    storage_bytes: int
    transfer_bytes: int

    @classmethod
    def of(cls, usage: UsageRecord) -> UsageOut:
        return cls(
            customer=usage.customer_login,
            plan=PlanOut.of(usage.plan),
            month=usage.month,
            domains=usage.domains,
            accounts=usage.accounts,
            storage_bytes=usage.storage_bytes,
            transfer_bytes=usage.transfer_bytes,
        )


class DomainIn(Model):
    name: DomainText
    password: Password
    customer: Login | None = Field(
        default=None, description="the owner; defaults to the customer the token belongs to"
    )


class DomainPatch(Model):
    enabled: bool | None = None
    verified: Literal[True] | None = Field(
        default=None,
        description="true: the provider vouches for the domain without its DNS proof",
    )
    postmaster: Address | None = Field(
        default=None,
        description="where postmaster@ (and abuse@) mail goes without a mailbox of that name:"
        " a mailbox of the domain's customer or an address elsewhere; null: the customer's"
        " contact address; absent: unchanged",
    )
    abuse: bool | None = Field(default=None, description="abuse@ goes where postmaster@ goes")


class DomainOut(Model):
    name: str
    unicode_name: str
    customer: str
    enabled: bool
    verified: bool = Field(description="ownership shown in DNS, or vouched for by the provider")
    status: DomainStatus = Field(description="disabled, else pending until verified")
    mail_server: str
    postmaster: str | None = Field(
        description="where postmaster@ mail goes without a mailbox of that name;"
        " null: the customer's contact address"
    )
    abuse: bool = Field(description="abuse@ goes where postmaster@ goes (else refused)")

    @classmethod
    def of(cls, domain: DomainRecord) -> DomainOut:
        postmaster = domain.postmaster_address
        return cls(
            name=domain.name.ascii,
            unicode_name=domain.name.unicode,
            customer=domain.customer_login,
            enabled=domain.enabled,
            verified=domain.verified,
            status=domain.status,
            mail_server=domain.name.mail_host,
            postmaster=None if postmaster is None else str(postmaster),
            abuse=domain.abuse_enabled,
        )


class DnsRecordOut(Model):
    name: str
    type: str
    value: str
    purpose: str

    @classmethod
    def of(cls, record: DnsRecord) -> DnsRecordOut:
        return cls(
            name=record.name, type=record.type.value, value=record.value, purpose=record.purpose
        )


class UserIn(Model):
    username: Login
    password: Password
    recovery_email: Address | None = None


class PasswordIn(Model):
    password: Password


class UserOut(Model):
    address: str
    username: str
    recovery_email: str | None
    enabled: bool
    has_mailbox: bool
    has_smtp_account: bool

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(
            address=str(user.address),
            username=user.address.local,
            recovery_email=user.recovery_email,
            enabled=user.enabled,
            has_mailbox=user.has_mailbox,
            has_smtp_account=user.has_smtp_account,
        )


class MailboxIn(Model):
    username: Login
    quota: Size | None = Field(default=None, description="None: no quota")


class MailboxOut(Model):
    address: str
    quota_bytes: int | None
    used_bytes: int

    @classmethod
    def of(cls, mailbox: MailboxRecord) -> MailboxOut:
        quota = None if mailbox.quota is None else mailbox.quota.bytes
        return cls(address=str(mailbox.address), quota_bytes=quota, used_bytes=mailbox.used_bytes)


class FacilitiesIn(Model):
    relay: bool = Field(default=True, description="R: relay mail to other domains")
    sender_scope: SenderScope = Field(
        default=SenderScope.OWN, description="D (domain): send as any address of the domain"
    )
    hourly_limit: PositiveCount | None = Field(default=None, description="H<n>: messages/hour")
    max_recipients: PositiveCount | None = Field(default=None, description="N<n>: per message")
    max_message_size: Size | None = Field(default=None, description="S<size>")

    def facilities(self) -> SmtpFacilities:
        size = self.max_message_size
        return SmtpFacilities(
            relay=self.relay,
            sender_scope=self.sender_scope,
            hourly_limit=self.hourly_limit,
            max_recipients=self.max_recipients,
            max_message_size=None if size is None else ByteSize.parse(size),
        )


class SmtpAccountIn(Model):
    username: Login
    facilities: FacilitiesIn = Field(default_factory=FacilitiesIn)


class SmtpAccountOut(Model):
    address: str
    identifiers: list[str] = Field(description="R, D, H<n>, N<n>, S<size> as the panel shows")
    relay: bool
    sender_scope: SenderScope
    hourly_limit: int | None
    max_recipients: int | None
    max_message_bytes: int | None

    @classmethod
    def of(cls, account: SmtpAccountRecord) -> SmtpAccountOut:
        f = account.facilities
        return cls(
            address=str(account.address),
            identifiers=list(f.identifiers),
            relay=f.relay,
            sender_scope=f.sender_scope,
            hourly_limit=f.hourly_limit,
            max_recipients=f.max_recipients,
            max_message_bytes=None if f.max_message_size is None else f.max_message_size.bytes,
        )


class AuditOut(Model):
    at: datetime
    actor: str
    action: str
    target: str

    @classmethod
    def of(cls, entry: AuditRecord) -> AuditOut:
        return cls(at=entry.at, actor=entry.actor, action=entry.action, target=entry.target)


class PlanPage(Model):
    items: list[PlanOut]
    total: int


class CustomerPage(Model):
    items: list[CustomerOut]
    total: int


class UsagePage(Model):
    items: list[UsageOut]
    total: int


class DomainPage(Model):
    items: list[DomainOut]
    total: int


class DnsRecordPage(Model):
    items: list[DnsRecordOut]
    total: int


class UserPage(Model):
    items: list[UserOut]
    total: int


class MailboxPage(Model):
    items: list[MailboxOut]
    total: int


class SmtpAccountPage(Model):
    items: list[SmtpAccountOut]
    total: int


class AuditPage(Model):
    items: list[AuditOut]
    total: int


def window(items: Sequence[T], limit: int, offset: int) -> tuple[list[T], int]:
    """The slice a page shows, and how many there are in all."""
    return list(items[offset : offset + limit]), len(items)
