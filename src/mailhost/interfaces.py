"""The seams between layers, as Protocols; real implementations only, no fakes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol

from mailhost.model.actors import Actor
from mailhost.model.delivery_log import DeliveryLogPage
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.logins import (
    AttemptFacts,
    AttemptRecord,
    AuthOutcome,
    ClientInfo,
    FailureRun,
    NoticeDue,
)
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.model.records import (
    AliasRecord,
    AliasTarget,
    AppPasswordRecord,
    AppPasswordSecret,
    AuditRecord,
    CatchAllRecord,
    CustomerRecord,
    DomainRecord,
    LoginRecord,
    MailboxRecord,
    MailboxRef,
    MailSecrets,
    PlanRecord,
    PostmasterRecord,
    RecipientRecord,
    SmtpAccountRecord,
    TwoFactorRecord,
    UserRecord,
)

MessageUid = str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message in a mailbox: a uid stable across sessions, and its size on disk."""

    uid: MessageUid
    size: int


class MailStore(Protocol):
    async def deliver(self, mailbox: MailboxRef, message: bytes) -> StoredMessage:
        """Store a copy; durable (fsynced file and directory) when it returns."""
        ...

    async def list(self, mailbox: MailboxRef) -> Sequence[StoredMessage]:
        """Messages in arrival order."""
        ...

    def read(self, mailbox: MailboxRef, uid: MessageUid) -> AsyncGenerator[bytes, None]:
        """The message's bytes in chunks, never the whole message at once."""
        ...

    async def delete(self, mailbox: MailboxRef, uids: Collection[MessageUid]) -> int:
        """Remove messages; returns the bytes freed."""
        ...

    async def usage(self, mailbox: MailboxRef) -> int:
        """Bytes on disk now, counted from the files (for recounts)."""
        ...

    def exclusive(self, mailbox: MailboxRef) -> AbstractAsyncContextManager[None]:
        """Hold the mailbox for one POP3 session; raises MailboxInUse if held elsewhere."""
        ...


class Authenticator(Protocol):
    async def authenticate(self, login: str, password: str, client: ClientInfo) -> AuthOutcome: ...


class Directory(Protocol):
    """Lookups the mail servers make on every command."""

    async def find_login(self, address: EmailAddress) -> LoginRecord | None: ...


class LoginDirectory(Directory, Protocol):
    """What a user's login checks besides the password (storage/database/unit_of_work.py)."""

    async def mail_secrets(self, user_id: int, prefix: str | None) -> MailSecrets:
        """Whether two-factor is on, and the user's app passwords starting with `prefix`
        (none for None)."""
        ...

    async def app_password_used(self, app_password_id: int, at: datetime, client: str) -> None: ...


class AccountDirectory(Directory, Protocol):
    """Plans, customers, domains and users (storage/database/directory.py)."""

    async def find_recipient(self, address: EmailAddress) -> RecipientRecord | None: ...
    async def add_plan(self, name: str, limits: PlanLimits) -> PlanRecord: ...
    async def plan_by_name(self, name: str) -> PlanRecord | None: ...
    async def plans(self) -> Sequence[PlanRecord]: ...
    async def add_customer(
        self, login: str, password_hash: str, contact_email: str, plan: PlanRecord
    ) -> CustomerRecord: ...
    async def customer_by_login(self, login: str) -> CustomerRecord | None: ...
    async def customer_by_id(self, customer_id: int) -> CustomerRecord | None: ...
    async def lock_customer(self, customer_id: int) -> None: ...
    async def customers(self) -> Sequence[CustomerRecord]: ...
    async def set_customer_enabled(self, customer_id: int, enabled: bool) -> None: ...
    async def set_customer_plan(self, customer_id: int, plan_id: int) -> None: ...
    async def set_customer_contact(self, customer_id: int, contact_email: str) -> None: ...
    async def add_domain(
        self,
        name: DomainName,
        customer: CustomerRecord,
        password_hash: str,
        verification_token: str,
        verified_at: datetime | None,
    ) -> DomainRecord: ...
    async def domain_by_name(self, name: DomainName) -> DomainRecord | None: ...
    async def domains(self, customer_id: int | None = None) -> Sequence[DomainRecord]: ...
    async def set_domain_enabled(self, domain_id: int, enabled: bool) -> None: ...
    async def mark_domain_verified(self, domain_id: int, token: str, at: datetime) -> bool: ...
    async def count_domains(self, customer_id: int) -> int: ...
    async def domain_counts(self, customer_ids: Sequence[int]) -> Mapping[int, int]:
        """Domains per customer, in one query (customers without any are left out)."""
        ...

    async def remove_domain(self, domain_id: int) -> None:
        """The domain with its users, mailboxes, SMTP accounts, credentials and queued
        mail; its files are written in the removal journal for the RemovalSweeper."""
        ...

    async def remove_customer(self, customer_id: int) -> None:
        """The customer and its credentials and queued mail (its domains go first)."""
        ...

    async def add_user(
        self, domain: DomainRecord, username: str, password_hash: str, recovery: str | None
    ) -> UserRecord: ...
    async def user_by_address(self, address: EmailAddress) -> UserRecord | None: ...
    async def users(self, domain_id: int) -> Sequence[UserRecord]: ...
    async def set_user_password(self, user_id: int, password_hash: str) -> None: ...
    async def set_user_recovery(self, user_id: int, recovery: str | None) -> None: ...
    async def remove_user(self, user_id: int) -> None: ...


class PostmasterRepository(Protocol):
    """Where postmaster@ and abuse@ mail goes (storage/database/postmasters.py)."""

    async def of_domain(self, name: DomainName) -> PostmasterRecord | None: ...
    async def of_server(self) -> str | None: ...
    async def set(
        self,
        domain_id: int,
        *,
        address: EmailAddress | Literal["keep"] | None = "keep",
        abuse_enabled: bool | None = None,
    ) -> None: ...


class AliasRepository(Protocol):
    """Aliases and catch-alls (storage/database/aliases.py)."""

    async def of_address(self, address: EmailAddress) -> AliasRecord | None: ...
    async def of_domain(self, domain_id: int) -> Sequence[AliasRecord]: ...
    async def targets_of(
        self, addresses: Collection[EmailAddress], customer_id: int
    ) -> Mapping[EmailAddress, tuple[AliasTarget, ...]]: ...
    async def add(
        self, domain_id: int, local_part: str, targets: Sequence[AliasTarget]
    ) -> None: ...
    async def remove(self, alias_id: int, targets: Collection[EmailAddress] | None) -> None: ...
    async def catch_all(self, name: DomainName) -> CatchAllRecord | None: ...
    async def set_catch_all(self, domain_id: int, user_id: int | None) -> None: ...


class FacilityRepository(Protocol):
    """POP3 mailboxes and SMTP accounts (storage/database/facilities.py)."""

    async def add_mailbox(self, user: UserRecord, quota: ByteSize | None) -> MailboxRecord: ...
    async def mailbox_of(self, user_id: int) -> MailboxRecord | None: ...
    async def mailboxes(self, domain_id: int) -> Sequence[MailboxRecord]: ...
    async def customer_mailboxes(self, customer_id: int) -> Sequence[MailboxRecord]: ...
    async def set_mailbox_quota(self, mailbox_id: int, quota: ByteSize | None) -> None: ...
    async def remove_mailbox(self, user_id: int) -> None: ...
    async def set_mailbox_used(self, mailbox_id: int, used_bytes: int) -> None: ...
    async def add_mailbox_used(self, mailbox_id: int, delta: int) -> None: ...
    async def add_smtp_account(
        self, user: UserRecord, facilities: SmtpFacilities
    ) -> SmtpAccountRecord: ...
    async def smtp_account_of(self, user_id: int) -> SmtpAccountRecord | None: ...
    async def smtp_accounts(self, domain_id: int) -> Sequence[SmtpAccountRecord]: ...
    async def set_smtp_facilities(self, account_id: int, facilities: SmtpFacilities) -> None: ...
    async def remove_smtp_account(self, user_id: int) -> None: ...
    async def count_accounts(self, customer_id: int) -> int: ...
    async def storage_used(self, customer_id: int) -> int: ...
    async def account_counts(self, customer_ids: Sequence[int]) -> Mapping[int, int]:
        """`count_accounts` of many customers in one query per table."""
        ...

    async def storage_used_by(self, customer_ids: Sequence[int]) -> Mapping[int, int]:
        """`storage_used` of many customers in one query."""
        ...

    async def mail_held(self, domain_ids: Sequence[int]) -> tuple[int, int]:
        """(mailboxes, bytes of mail) in the domains: what removing them deletes."""
        ...


class UsageRepository(Protocol):
    async def add_transfer(self, customer_id: int, month: str, nbytes: int) -> None: ...
    async def transfer(self, customer_id: int, month: str) -> int: ...
    async def transfers(self, customer_ids: Sequence[int], month: str) -> Mapping[int, int]: ...


class SubmissionCounters(Protocol):
    """Hourly send counts and transfer notices, shared by every node (one short transaction each).

    `hour` is YYYY-MM-DDTHH (UTC) and `month` YYYY-MM; the table's unique keys make
    concurrent connections and nodes agree.
    """

    async def messages_sent(self, user_id: int, hour: str) -> int: ...

    async def reserve_message(self, user_id: int, hour: str, limit: int) -> bool:
        """Count one more message unless `limit` were passed; False if it would be."""
        ...

    async def release_message(self, user_id: int, hour: str) -> None:
        """Take back a reservation whose message was not accepted after all."""
        ...

    async def claim_notice(self, customer_id: int, month: str, level: int) -> bool:
        """True for exactly one caller per (customer, month, level): that one sends it."""
        ...

    async def forget_notice(self, customer_id: int, month: str, level: int) -> None:
        """The claimed notice could not be sent; a later caller may claim it again."""
        ...


class LoginAttempts(Protocol):
    """Every login attempt of every service, shared by processes and nodes through the
    database (storage/database/login_attempts.py); one short transaction per call.

    "Standing" failures are those no later success of the same client on the same
    account has forgiven.
    """

    async def failures_from(self, client: str, since: datetime, limit: int) -> FailureRun:
        """The client's standing failures since `since` (counted up to `limit`)."""
        ...

    async def failures_of(self, kind: str, account: str, since: datetime, limit: int) -> int:
        """The account's standing failures since `since`, from any client (up to `limit`)."""
        ...

    async def record(self, attempt: AttemptFacts) -> None:
        """Add the attempt (a repeated success may update its previous line); a user's
        success from a client it never succeeded from, after failures, is marked for a notice."""
        ...

    async def history(self, kind: str, subject_id: int, limit: int) -> Sequence[AttemptRecord]:
        """The login's attempts, newest first."""
        ...

    async def due_notices(self, limit: int) -> Sequence[NoticeDue]: ...

    async def claim_notice(self, attempt_id: int) -> bool:
        """True for exactly one caller per notice: that one sends it."""
        ...

    async def wait_for_notices(self, seconds: float) -> None:
        """Return when this process marked a notice due, or after `seconds`."""
        ...

    async def prune(self, before: datetime, anonymous_before: datetime, keep: int) -> int:
        """Forget attempts older than `before`, those naming no login older than
        `anonymous_before`, and all but the newest `keep` per account older than
        `anonymous_before`; returns how many went."""
        ...

    async def notices_wanted(self, user_id: int) -> bool: ...
    async def want_notices(self, user_id: int, wanted: bool) -> None: ...


class AuditLog(Protocol):
    async def record(
        self, actor: str, action: str, target: str, customer_id: int | None, detail: str = ""
    ) -> None: ...
    async def entries(self, customer_id: int | None, limit: int = 100) -> Sequence[AuditRecord]: ...


class UnitOfWork(Protocol):
    """One transaction; leaving `async with` without `commit()` rolls everything back."""

    @property
    def directory(self) -> AccountDirectory: ...
    @property
    def facilities(self) -> FacilityRepository: ...
    @property
    def usage(self) -> UsageRepository: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def web_access(self) -> WebAccessRepository: ...
    @property
    def postmasters(self) -> PostmasterRepository: ...
    @property
    def two_factor(self) -> TwoFactorRepository: ...
    @property
    def app_passwords(self) -> AppPasswordRepository: ...
    @property
    def aliases(self) -> AliasRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


class UsageCounters(Protocol):
    """Usage changed in bulk: what the group-committed ledger writes, in one transaction."""

    async def add(
        self, stored: Mapping[int, int], transferred: Mapping[int, int], month: str
    ) -> None:
        """Add bytes to mailboxes' usage (by mailbox id; negative frees) and to customers'
        transfer for `month` (by customer id), all or nothing."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class RemovalSweeper(Protocol):
    """Deletes the files that removals wrote in the journal (storage/sweeper.py)."""

    async def sweep(self) -> None:
        """Delete the files (Maildirs, certificates, spool files), then their journal
        entries; never raises: what fails is done by a later sweep."""
        ...


class CertificateIssuer(Protocol):
    """Makes sure a TLS certificate exists for a host name (mail.<domain>)."""

    async def ensure_certificate(self, hostname: str) -> None: ...


class TxtLookup(Protocol):
    """DNS TXT records of a name, for domain ownership proofs (web/dns_check.py)."""

    async def txt(self, name: str) -> Sequence[str]:
        """Each record's strings joined; empty when the name or its TXT records do not
        exist. Raises TemporaryFailure when no answer comes within the lookup's timeout."""
        ...


class Outbox(Protocol):
    """Mail that mailhost itself sends (resets, notices, bounces): local or queued out.

    Durable when it returns: local copies fsynced, remote ones spooled and queued.
    """

    async def send(
        self, sender: str, recipients: Sequence[EmailAddress], message: bytes
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class SpoolRef:
    """An outbound message body in the spool, fsynced; `message_id` names it."""

    message_id: str
    size: int


class Spool(Protocol):
    """Outbound message bodies on disk (storage/spool.py)."""

    async def write(self, message: bytes, message_id: str | None = None) -> SpoolRef:
        """Store the body (under `message_id`, or a new id); file and directory entry are
        fsynced when this returns."""
        ...

    async def read(self, message_id: str) -> bytes: ...
    async def remove(self, message_id: str, *, durable: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """One outbound recipient of one spooled message, as a worker claimed or a listing shows it."""

    id: int
    message_id: str
    sender: str  # "" is the null sender (RFC 5321 §4.5.5): never bounced
    recipient: str
    customer_id: int | None
    size: int
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    expires_at: datetime
    leased_until: datetime | None
    last_reply: str


@dataclass(frozen=True, slots=True)
class Relayed:
    """The remote server took responsibility for the message (2xx after DATA)."""

    reply: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """A temporary failure (4xx, no connection): try again at `retry_at`."""

    reply: str
    retry_at: datetime


@dataclass(frozen=True, slots=True)
class Failed:
    """A permanent failure (5xx, null MX, expired): the sender gets a bounce."""

    reply: str


AttemptResult = Relayed | Deferred | Failed


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one try at one recipient, as the worker records it."""

    delivery: QueuedDelivery
    result: AttemptResult


@dataclass(frozen=True, slots=True)
class RecordedAttempts:
    """What recording a group of attempts did."""

    owned: Sequence[bool]  # per attempt, in order; False where the lease went to another worker
    finished: frozenset[str]  # message ids of theirs that have no row left: the body may go


class DeliveryQueue(Protocol):
    """The durable outbound queue (storage/database/queue.py); one short transaction per call."""

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        body: SpoolRef,
        customer_id: int | None,
        domain_id: int | None,
        now: datetime,
        expires_at: datetime,
    ) -> Sequence[int]:
        """One row per recipient, committed when this returns; call after the body is spooled.

        `customer_id` and `domain_id` own the mail (None for mailhost's own): it is held
        while either is disabled and removed with them.
        """
        ...

    async def claim_due(self, now: datetime, limit: int) -> Sequence[QueuedDelivery]:
        """Lease due rows to this worker; rows leased elsewhere are skipped, never shared."""
        ...

    async def record(self, attempts: Sequence[Attempt], now: datetime) -> RecordedAttempts:
        """Apply the outcomes and log them, in one transaction; an attempt whose lease was
        lost to another worker is left alone."""
        ...

    async def pending(self, message_id: str) -> int:
        """Rows still queued for a message; at 0 its spool file may go."""
        ...

    async def queued(self, limit: int) -> Sequence[QueuedDelivery]: ...
    async def retry(self, delivery_id: int | None, now: datetime) -> int: ...
    async def delete(self, delivery_id: int, now: datetime) -> QueuedDelivery | None: ...
    async def log(
        self,
        limit: int,
        offset: int = 0,
        *,
        search: str = "",
        status: str | None = None,
        customer_id: int | None = None,
        domain_id: int | None = None,
    ) -> DeliveryLogPage:
        """Entries newest first, and how many match; each filter given narrows the log.

        `search` is a case-insensitive part of the sender, recipient or message id. The
        caller scopes: with no customer_id or domain_id every entry matches, including
        mailhost's own mail (both NULL), which only the provider may read.
        """
        ...

    async def wait_for_work(self, seconds: float) -> None:
        """Return when this process enqueued something, or after `seconds`."""
        ...


@dataclass(frozen=True, slots=True)
class DkimRecord:
    """A DKIM public key as the DNS TXT record to publish (RFC 6376 §3.6.1)."""

    selector: str
    algorithm: str  # ed25519 | rsa
    name: str  # <selector>._domainkey.<domain>
    text: str  # v=DKIM1; k=...; p=...


class DkimKeys(Protocol):
    """Signing keys per hosted domain (outbound/dkim.py); created once, kept after."""

    async def ensure_keys(self, domain: DomainName) -> Sequence[DkimRecord]: ...


LoginKind = Literal["provider", "customer", "domain", "user"]


@dataclass(frozen=True, slots=True)
class Credential:
    """A panel login's stored secret, and where its password reset links are mailed."""

    kind: LoginKind
    subject_id: int
    login: str
    password_hash: str
    enabled: bool
    contact: str | None


# A credential's subject: `subject_id` is read from the foreign key its kind calls for,
# `subject` is the login's name when the credential was made (checked on every use).


@dataclass(frozen=True, slots=True)
class SessionRecord:
    kind: LoginKind
    subject_id: int
    subject: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    id: int
    name: str
    kind: LoginKind
    subject_id: int
    subject: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResetRecord:
    id: int
    kind: LoginKind
    subject_id: int
    subject: str
    expires_at: datetime
    used_at: datetime | None


class WebAccessRepository(Protocol):
    """Panel logins, sessions, API tokens and reset links (storage/database/web_access.py).

    Tokens are stored only as hashes; `actor_for` answers None for disabled logins.
    """

    async def credential(self, kind: LoginKind, login: str) -> Credential | None: ...
    async def credential_by_id(self, kind: LoginKind, subject_id: int) -> Credential | None: ...
    async def set_password(self, kind: LoginKind, subject_id: int, password_hash: str) -> None: ...
    async def actor_for(self, kind: LoginKind, subject_id: int) -> Actor | None: ...
    async def add_admin(self, login: str, password_hash: str, email: str) -> Credential: ...
    async def admins(self) -> Sequence[Credential]: ...
    async def add_session(
        self,
        token_hash: str,
        kind: LoginKind,
        subject_id: int,
        subject: str,
        csrf: str,
        expires: datetime,
    ) -> None: ...
    async def session(self, token_hash: str) -> SessionRecord | None: ...
    async def remove_session(self, token_hash: str) -> None: ...
    async def remove_sessions(
        self, kind: LoginKind, subject_id: int, keep: str | None = None
    ) -> int: ...
    async def remove_expired_sessions(self, now: datetime) -> None: ...
    async def add_api_token(
        self,
        token_hash: str,
        name: str,
        kind: LoginKind,
        subject_id: int,
        subject: str,
        now: datetime,
    ) -> ApiTokenRecord: ...
    async def api_tokens(self, kind: LoginKind, subject_id: int) -> Sequence[ApiTokenRecord]: ...
    async def api_token(self, token_hash: str) -> ApiTokenRecord | None: ...
    async def remove_api_token(self, token_id: int) -> None: ...
    async def revoke_api_token(self, token_id: int, now: datetime) -> None: ...
    async def touch_api_token(self, token_id: int, now: datetime) -> None: ...
    async def add_reset(
        self, token_hash: str, kind: LoginKind, subject_id: int, subject: str, expires: datetime
    ) -> None: ...
    async def reset(self, token_hash: str) -> ResetRecord | None: ...
    async def remove_reset(self, reset_id: int) -> None: ...
    async def remove_resets(
        self, kind: LoginKind, subject_id: int, keep: int | None = None
    ) -> int: ...
    async def use_reset(self, reset_id: int, now: datetime) -> bool: ...
    async def dkim_records(self, domain_id: int) -> Sequence[tuple[str, str]]: ...
    async def queue_counts(self) -> Mapping[str, int]: ...


class TwoFactorRepository(Protocol):
    """Logins' TOTP enrolments and recovery codes (storage/database/two_factor.py).

    A login has at most one enrolment; pending (enabled_at None) until a code confirms it.
    """

    async def of_login(self, kind: LoginKind, subject_id: int) -> TwoFactorRecord | None: ...
    async def start(
        self, kind: LoginKind, subject_id: int, subject: str, secret: str, now: datetime
    ) -> None:
        """A pending enrolment in place of any the login had (its codes go with it)."""
        ...

    async def confirm(
        self, enrolment_id: int, step: int, now: datetime, digests: Sequence[str]
    ) -> bool:
        """Turn it on, with the step of its first code and new recovery codes; False if it
        was on already."""
        ...

    async def use_step(self, enrolment_id: int, step: int) -> bool:
        """Accept a code of time step `step`; False if it or a later step was accepted."""
        ...

    async def use_recovery_code(self, enrolment_id: int, digest: str, now: datetime) -> bool:
        """Spend an unused recovery code; False if there is none with that digest."""
        ...

    async def replace_recovery_codes(self, enrolment_id: int, digests: Sequence[str]) -> None: ...
    async def remove(self, kind: LoginKind, subject_id: int) -> None: ...


class AppPasswordRepository(Protocol):
    """Domain users' app passwords (storage/database/app_passwords.py); only argon2 hashes."""

    async def add(
        self,
        user_id: int,
        subject: str,
        name: str,
        prefix: str,
        password_hash: str,
        now: datetime,
    ) -> AppPasswordRecord:
        """Raises AlreadyExists if the user has one of that name."""
        ...

    async def of_user(self, user_id: int) -> Sequence[AppPasswordRecord]: ...
    async def remove(self, user_id: int, app_password_id: int) -> bool: ...
    async def secrets(self, user_id: int, prefix: str) -> Sequence[AppPasswordSecret]: ...
    async def touch(self, app_password_id: int, now: datetime, address: str) -> None: ...
