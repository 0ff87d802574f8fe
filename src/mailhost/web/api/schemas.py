"""The API contract: pydantic models of requests and answers, and their mapping from records.

One vocabulary in and out: a field has the same name and the same form in a request
and in an answer, so what a GET returns can be sent back in a PATCH unchanged. Sizes
that are settings (a plan's `storage` and `transfer`, a mailbox's `quota`, an SMTP
account's `max_message_size`) are size strings both ways ("2.5GB", "10MB", "1GiB";
answers write them exactly, see ByteSize.exact); measurements (`used_bytes`, a month's
`storage_bytes`) are integers of bytes, and read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mailhost.errors import InvalidInput
from mailhost.model.delivery_log import DeliveryLogRecord
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
# What a PATCH takes back from a GET but cannot change: checked against the object.
Shown = Annotated[str, StringConstraints(max_length=254)]


EXAMPLE_PASSWORD = "a long passphrase"  # noqa: S105 - the documentation's, never a login's


def size_text(size: ByteSize | None) -> str | None:
    return None if size is None else size.exact


def example(**fields: Any) -> ConfigDict:
    """No unknown fields, and one example for the API documentation page (without nulls:
    FastAPI leaves them out of the OpenAPI document)."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [fields]})


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Patch(Model):
    """A change: fields left out stay as they are. It takes back everything GET answered:
    the fields named in FIXED cannot be changed here and must come back as they are (so a
    client never believes it changed them); a field that follows from others (a domain's
    status) is ignored."""

    FIXED: ClassVar[tuple[str, ...]] = ()

    def check_fixed(self, current: BaseModel) -> None:
        for name in self.FIXED:
            if name in self.model_fields_set:
                sent, now = getattr(self, name), getattr(current, name)
                if sent != now:
                    raise InvalidInput(f"{name} cannot be changed: it is {now!r}, not {sent!r}")


class ErrorOut(Model):
    model_config = example(
        code="plan_limit_reached", message="plan Two allows 2 domains; customer acme has 2"
    )

    code: str = Field(description="stable machine-readable code, e.g. plan_limit_reached")
    message: str = Field(description="what was refused and why, naming the object and limit")
    field: str | None = Field(
        default=None, description="the request field the refusal is about, where it is one"
    )


class MeOut(Model):
    actor: str
    kind: str


class PlanIn(Model):
    model_config = example(name="Small", max_domains=2, storage="1GB", transfer="20GB")

    name: Name
    max_domains: Count | None = None
    storage: Size | None = None
    transfer: Size | None = None
    max_accounts: Count | None = None


BULK_HOSTING: dict[str, Any] = {
    "name": "Bulk Hosting",
    "max_domains": 40,
    "storage": "2.5GB",
    "transfer": "40GB",
    "max_accounts": 400,
}


class PlanOut(Model):
    model_config = example(**BULK_HOSTING)

    name: str
    max_domains: int | None = Field(description="null: no limit")
    storage: str | None = Field(description="all mailboxes together; null: no limit")
    transfer: str | None = Field(description="a calendar month, in and out; null: no limit")
    max_accounts: int | None = Field(description="POP3/SMTP accounts; null: no limit")

    @classmethod
    def of(cls, plan: PlanRecord) -> PlanOut:
        limits = plan.limits
        return cls(
            name=plan.name,
            max_domains=limits.max_domains,
            storage=size_text(limits.storage),
            transfer=size_text(limits.transfer),
            max_accounts=limits.max_accounts,
        )


class CustomerIn(Model):
    model_config = example(
        login="acme",
        plan="Bulk Hosting",
        contact_email="it@acme.example",
        password=EXAMPLE_PASSWORD,
    )

    login: Login
    plan: Name
    contact_email: Address
    password: Password


class CustomerPatch(Patch):
    model_config = example(contact_email="it@acme.example", enabled=False)
    FIXED = ("login",)

    login: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    plan: Name | None = Field(default=None, description="provider only")
    contact_email: Address | None = Field(
        default=None,
        description="where notices and reset links go (the customer itself or the provider);"
        " absent or null: unchanged",
    )
    enabled: bool | None = Field(default=None, description="provider only")


class CustomerOut(Model):
    model_config = example(
        login="acme", plan="Bulk Hosting", contact_email="it@acme.example", enabled=True
    )

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
    model_config = example(
        customer="acme",
        plan=BULK_HOSTING,
        month="2025-06",
        domains=3,
        accounts=12,
        storage_bytes=734_003_200,
        transfer_bytes=5_242_880_000,
    )

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
    model_config = example(name="example.com", password=EXAMPLE_PASSWORD)

    name: DomainText
    password: Password
    customer: Login | None = Field(
        default=None, description="the owner; defaults to the customer the token belongs to"
    )


class DomainPatch(Patch):
    model_config = example(postmaster="alice@example.com", abuse=True)
    FIXED = ("name", "unicode_name", "customer", "mail_server")

    name: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    unicode_name: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    customer: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    enabled: bool | None = None
    verified: bool | None = Field(
        default=None,
        description="true on a pending domain: the provider vouches for it without its DNS"
        " proof; a verified domain stays verified",
    )
    status: DomainStatus | None = Field(
        default=None, description="read-only and ignored: it follows from enabled and verified"
    )
    mail_server: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    postmaster: Address | None = Field(
        default=None,
        description="where postmaster@ (and abuse@) mail goes without a mailbox of that name:"
        " a mailbox of the domain's customer or an address elsewhere; null: the customer's"
        " contact address; absent: unchanged",
    )
    abuse: bool | None = Field(default=None, description="abuse@ goes where postmaster@ goes")


class DomainOut(Model):
    model_config = example(
        name="xn--bcher-kva.example",
        unicode_name="bücher.example",
        customer="acme",
        enabled=True,
        verified=True,
        status="verified",
        mail_server="mail.xn--bcher-kva.example",
        postmaster="alice@xn--bcher-kva.example",
        abuse=False,
    )

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
    model_config = example(
        username="alice", password=EXAMPLE_PASSWORD, recovery_email="alice@elsewhere.example"
    )

    username: Login
    password: Password
    recovery_email: Address | None = None


class PasswordIn(Model):
    password: Password


class UserPatch(Patch):
    model_config = example(recovery_email="alice@elsewhere.example")
    FIXED = ("address", "username", "enabled")

    address: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    username: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    recovery_email: Address | None = Field(
        default=None,
        description="where the user's reset links and new-address login notices go: another"
        " address than the user's own (the user itself, its domain's manager, customer or"
        " the provider may change it); null: none; absent: unchanged",
    )
    enabled: bool | None = Field(default=None, description="read-only: if sent, as it is")
    has_mailbox: bool | None = Field(
        default=None, description="read-only and ignored: see /mailboxes"
    )
    has_smtp_account: bool | None = Field(
        default=None, description="read-only and ignored: see /smtp-accounts"
    )


class UserOut(Model):
    model_config = example(
        address="alice@example.com",
        username="alice",
        recovery_email="alice@elsewhere.example",
        enabled=True,
        has_mailbox=True,
        has_smtp_account=False,
    )

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
    model_config = example(username="alice", quota="250MB")

    username: Login
    quota: Size | None = Field(default=None, description="null: no quota")


class MailboxOut(Model):
    model_config = example(
        address="alice@example.com", username="alice", quota="250MB", used_bytes=1_048_576
    )

    address: str
    username: str
    quota: str | None = Field(description="a size such as 250MB; null: no quota")
    used_bytes: int = Field(description="read-only: what the mailbox holds now")

    @classmethod
    def of(cls, mailbox: MailboxRecord) -> MailboxOut:
        return cls(
            address=str(mailbox.address),
            username=mailbox.address.local,
            quota=size_text(mailbox.quota),
            used_bytes=mailbox.used_bytes,
        )


class MailboxPatch(Patch):
    model_config = example(quota="500MB")
    FIXED = ("address", "username")

    address: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    username: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    quota: Size | None = Field(
        default=None,
        description="at least 1MB; null: no quota (not on a plan with a storage limit, which"
        " all quotas together must fit in); absent: unchanged",
    )
    used_bytes: int | None = Field(
        default=None, description="read-only and ignored: it changes as mail comes and goes"
    )


class FacilitiesIn(Model):
    """What an SMTP account allows; FacilitiesOut answers with the same fields."""

    model_config = example(
        relay=True,
        sender_scope="own",
        hourly_limit=120,
        max_recipients=50,
        max_message_size="10MB",
    )

    relay: bool = Field(default=True, description="R: relay mail to other domains")
    sender_scope: SenderScope = Field(
        default=SenderScope.OWN, description="D (domain): send as any address of the domain"
    )
    hourly_limit: PositiveCount | None = Field(default=None, description="H<n>: messages/hour")
    max_recipients: PositiveCount | None = Field(default=None, description="N<n>: per message")
    max_message_size: Size | None = Field(default=None, description="S<size>")

    def facilities(self) -> SmtpFacilities:
        return self.applied_to(SmtpFacilities())

    def applied_to(self, current: SmtpFacilities) -> SmtpFacilities:
        """`current` with the fields this request sent (a PATCH: the others stay)."""
        sent = self.model_fields_set
        size = self.max_message_size
        return SmtpFacilities(
            relay=self.relay if "relay" in sent else current.relay,
            sender_scope=self.sender_scope if "sender_scope" in sent else current.sender_scope,
            hourly_limit=self.hourly_limit if "hourly_limit" in sent else current.hourly_limit,
            max_recipients=(
                self.max_recipients if "max_recipients" in sent else current.max_recipients
            ),
            max_message_size=(
                (None if size is None else ByteSize.parse(size))
                if "max_message_size" in sent
                else current.max_message_size
            ),
        )


class FacilitiesOut(Model):
    """The fields of FacilitiesIn, as stored: they can be sent back as they are."""

    relay: bool = Field(description="R: relay mail to other domains")
    sender_scope: SenderScope = Field(description="D (domain): send as any address of the domain")
    hourly_limit: int | None = Field(description="H<n>: messages/hour; null: no limit")
    max_recipients: int | None = Field(description="N<n>: per message; null: no limit")
    max_message_size: str | None = Field(description="S<size>, e.g. 10MB; null: no limit")

    @classmethod
    def of(cls, f: SmtpFacilities) -> FacilitiesOut:
        return cls(
            relay=f.relay,
            sender_scope=f.sender_scope,
            hourly_limit=f.hourly_limit,
            max_recipients=f.max_recipients,
            max_message_size=size_text(f.max_message_size),
        )


class SmtpAccountIn(Model):
    model_config = example(username="alice", facilities={"hourly_limit": 120})

    username: Login
    facilities: FacilitiesIn = Field(default_factory=FacilitiesIn)


class SmtpAccountPatch(Patch):
    model_config = example(facilities={"relay": False, "hourly_limit": 60})
    FIXED = ("address", "username")

    address: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    username: Shown | None = Field(default=None, description="read-only: if sent, as it is")
    identifiers: list[Shown] | None = Field(
        default=None,
        max_length=5,
        description="read-only and ignored: they follow from the facilities",
    )
    facilities: FacilitiesIn | None = Field(
        default=None,
        description="the facilities sent are changed, those left out stay as they are;"
        " null: none changed",
    )


class SmtpAccountOut(Model):
    model_config = example(
        address="alice@example.com",
        username="alice",
        identifiers=["R", "D", "H120", "N50", "S10MB"],
        facilities={
            "relay": True,
            "sender_scope": "domain",
            "hourly_limit": 120,
            "max_recipients": 50,
            "max_message_size": "10MB",
        },
    )

    address: str
    username: str
    identifiers: list[str] = Field(description="R, D, H<n>, N<n>, S<size> as the panel shows")
    facilities: FacilitiesOut

    @classmethod
    def of(cls, account: SmtpAccountRecord) -> SmtpAccountOut:
        f = account.facilities
        return cls(
            address=str(account.address),
            username=account.address.local,
            identifiers=list(f.identifiers),
            facilities=FacilitiesOut.of(f),
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


class DeliveryOut(Model):
    """One delivery attempt of the delivery log and its outcome (read-only)."""

    model_config = example(
        at="2030-01-01T12:00:00Z",
        sender="alice@example.com",
        recipient="bob@elsewhere.example",
        status="delivered",
        remote_reply="250 2.0.0 Ok: queued as 4Xk2",
        message_id="1a2b3c4d5e6f",
    )

    at: datetime
    sender: str = Field(description='"" is the null sender (bounces)')
    recipient: str
    status: str = Field(description="delivered | deferred | failed | deleted")
    remote_reply: str = Field(description="the remote server's last reply, or why not sent")
    message_id: str = Field(description="the queue's message id, shared by its recipients")

    @classmethod
    def of(cls, entry: DeliveryLogRecord) -> DeliveryOut:
        return cls(
            at=entry.at,
            sender=entry.sender,
            recipient=entry.recipient,
            status=entry.status,
            remote_reply=entry.remote_reply,
            message_id=entry.message_id,
        )


class DeliveryPage(Model):
    items: list[DeliveryOut]
    total: int
