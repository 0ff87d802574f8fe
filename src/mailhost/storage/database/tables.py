"""The directory schema as SQLAlchemy 2 typed tables; invariants are constraints first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _never_reuse_ids(table: Table) -> None:
    """Ids are never handed out twice: a credential or a cached path that outlived its
    row must not come to name a newer one (AUTOINCREMENT on SQLite, identity on
    PostgreSQL, whose sequence never goes back either)."""
    table.dialect_options["sqlite"]["autoincrement"] = True


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    max_domains: Mapped[int | None] = mapped_column(Integer)
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    transfer_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_accounts: Mapped[int | None] = mapped_column(Integer)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    contact_email: Mapped[str] = mapped_column(String(254))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Proof of ownership: the TXT record value the customer publishes; until it is seen
    # (or the provider vouches for the domain) verified_at is NULL and nothing is stored.
    verification_token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # RFC 5321 §4.5.1 postmaster@ (and RFC 2142 abuse@ when enabled) without a user of
    # that name: to this address, or with NULL to the customer's contact address.
    postmaster_address: Mapped[str | None] = mapped_column(String(254))
    abuse_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DomainUser(Base):
    __tablename__ = "domain_users"
    __table_args__ = (UniqueConstraint("domain_id", "username"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    # Stored lower-cased by the service, so the unique constraint is case-insensitive.
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    recovery_email: Mapped[str | None] = mapped_column(String(254))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Mail the recovery address when a login from a new address follows failures.
    login_notices: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Mailbox(Base):
    __tablename__ = "mailboxes"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("domain_users.id", ondelete="CASCADE"), unique=True
    )
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Names the Maildir on disk: random and never reused, so a new mailbox at an old
    # address can never open the files of the one removed before it.
    storage_key: Mapped[str] = mapped_column(String(32), unique=True)


class SmtpAccount(Base):
    __tablename__ = "smtp_accounts"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    # UNIQUE: an SMTP authority can be assigned only once per user (the seed's rule).
    user_id: Mapped[int] = mapped_column(
        ForeignKey("domain_users.id", ondelete="CASCADE"), unique=True
    )
    relay: Mapped[bool] = mapped_column(Boolean)
    sender_scope: Mapped[str] = mapped_column(String(16))
    hourly_limit: Mapped[int | None] = mapped_column(Integer)
    max_recipients: Mapped[int | None] = mapped_column(Integer)
    max_message_bytes: Mapped[int | None] = mapped_column(BigInteger)


class Alias(Base):
    """An address of a hosted domain without a user; its mail goes to its targets."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("domain_id", "local_part"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    # Stored lower-cased by the service, as domain_users.username is.
    local_part: Mapped[str] = mapped_column(String(64))


class AliasTargetRow(Base):
    """One address an alias sends to: hosted (a mailbox or another alias) or elsewhere."""

    __tablename__ = "alias_targets"
    __table_args__ = (UniqueConstraint("alias_id", "address"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    alias_id: Mapped[int] = mapped_column(ForeignKey("aliases.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(254))
    # Not hosted here when added: counted against [delivery] max_external_forwards_per_domain.
    external: Mapped[bool] = mapped_column(Boolean)


class CatchAll(Base):
    """A domain's catch-all: mail for its unknown local parts goes to this user's mailbox.

    No row: refused as unknown (the default). Goes with the user (CASCADE).
    """

    __tablename__ = "catch_alls"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    domain_id: Mapped[int] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("domain_users.id", ondelete="CASCADE"), index=True
    )


class MonthlyUsage(Base):
    __tablename__ = "monthly_usage"
    __table_args__ = (UniqueConstraint("customer_id", "month"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    transfer_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_customer_at", "customer_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))


class Delivery(Base):
    """One outbound recipient of one spooled message: the durable queue row."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)  # spool file name
    sender: Mapped[str] = mapped_column(String(256))  # "" is the null sender
    recipient: Mapped[str] = mapped_column(String(256))
    # The queued mail of a removed customer or domain goes with it; NULL for mail of
    # mailhost itself (bounces, notices).
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    domain_id: Mapped[int | None] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), index=True
    )
    size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # queued | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A worker's claim: other workers skip the row until the lease runs out.
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_reply: Mapped[str] = mapped_column(Text, default="")


class DeliveryLogEntry(Base):
    """Every attempt and its outcome, for `mailhost queue log`, the panel and the API."""

    __tablename__ = "delivery_log"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Whose mail it was, copied from the deliveries row: who may read the entry. The story
    # outlives its owner, but only for the provider (SET NULL): ids are never reused, so
    # a customer made later never reads it. NULL for mailhost's own mail.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    domain_id: Mapped[int | None] = mapped_column(
        ForeignKey("domains.id", ondelete="SET NULL"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(Integer, index=True)
    message_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(256))
    recipient: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))  # delivered | deferred | failed | deleted
    remote_reply: Mapped[str] = mapped_column(Text, default="")


class SendCounter(Base):
    """Messages sent per SMTP account per hour, shared by every node."""

    __tablename__ = "send_counters"
    __table_args__ = (UniqueConstraint("user_id", "hour"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("domain_users.id", ondelete="CASCADE"))
    hour: Mapped[str] = mapped_column(String(13))  # YYYY-MM-DDTHH in UTC
    messages: Mapped[int] = mapped_column(Integer, default=0)


class DkimKey(Base):
    __tablename__ = "dkim_keys"
    __table_args__ = (UniqueConstraint("domain_id", "selector"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(16))  # ed25519 | rsa
    private_key: Mapped[str] = mapped_column(Text)  # PEM
    public_key: Mapped[str] = mapped_column(Text)  # base64 for the DNS TXT record


class UsageNotice(Base):
    """A transfer notice (80 % or 100 %) already sent this month: sent once only."""

    __tablename__ = "usage_notices"
    __table_args__ = (UniqueConstraint("customer_id", "month", "level"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    level: Mapped[int] = mapped_column(Integer)  # percent


class _LoginKeys:
    """A foreign key per kind of login, each deleting the row with its login."""

    admin_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_admins.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    domain_id: Mapped[int | None] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("domain_users.id", ondelete="CASCADE"), index=True
    )


class _Subject(_LoginKeys):
    """The login a credential belongs to: exactly one foreign key, matching `kind`, that
    deletes the credential with its subject; `subject` keeps the login's name as it was
    when the credential was made, checked again on every use."""

    kind: Mapped[str] = mapped_column(String(16))  # provider | customer | domain | user
    subject: Mapped[str] = mapped_column(String(320))


def _one_subject() -> CheckConstraint:
    return CheckConstraint(
        "(kind = 'provider' AND admin_id IS NOT NULL AND customer_id IS NULL"
        " AND domain_id IS NULL AND user_id IS NULL)"
        " OR (kind = 'customer' AND customer_id IS NOT NULL AND admin_id IS NULL"
        " AND domain_id IS NULL AND user_id IS NULL)"
        " OR (kind = 'domain' AND domain_id IS NOT NULL AND admin_id IS NULL"
        " AND customer_id IS NULL AND user_id IS NULL)"
        " OR (kind = 'user' AND user_id IS NOT NULL AND admin_id IS NULL"
        " AND customer_id IS NULL AND domain_id IS NULL)",
        name="one_subject",
    )


class WebSession(_Subject, Base):
    """A panel login; the cookie holds the token, the table holds its hash."""

    __tablename__ = "web_sessions"
    __table_args__ = (_one_subject(),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(_Subject, Base):
    __tablename__ = "api_tokens"
    __table_args__ = (_one_subject(),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(_Subject, Base):
    """A single-use, time-limited reset link; only the token's hash is stored."""

    __tablename__ = "password_resets"
    __table_args__ = (_one_subject(),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(_LoginKeys, Base):
    """One login attempt on any service: the penalties' memory and the login history.

    `account` is the login as typed (normalised, bounded) and counts failures even
    for logins that do not exist; the foreign key of `kind` names the login it was
    (NULL when none), so the history dies with its login and is shown to it alone.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        CheckConstraint(
            "(admin_id IS NULL OR kind = 'provider') AND (customer_id IS NULL OR kind = 'customer')"
            " AND (domain_id IS NULL OR kind = 'domain') AND (user_id IS NULL OR kind = 'user')",
            name="subject_of_kind",
        ),
        Index("ix_login_attempts_client_at", "client", "at"),
        Index("ix_login_attempts_account_at", "account", "at"),
        Index("ix_login_attempts_at", "at"),
        Index(
            "ix_login_attempts_notice_due",
            "id",
            sqlite_where=text("notice_due"),
            postgresql_where=text("notice_due"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    service: Mapped[str] = mapped_column(String(16))  # pop3 | submission | web
    client: Mapped[str] = mapped_column(String(64))  # the peer's IP address
    kind: Mapped[str] = mapped_column(String(16))  # provider | customer | domain | user
    account: Mapped[str] = mapped_column(String(330))
    success: Mapped[bool] = mapped_column(Boolean)
    app_password_name: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(String(100), default="")
    # A success from a new address after failures: the user's notice is still to be sent.
    notice_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TwoFactorEnrolment(_Subject, Base):
    """A login's TOTP secret (RFC 6238); pending until a code confirms it (enabled_at).

    One per login: each subject column is unique (NULLs never collide). The secret is
    kept as it is, since the server computes the same codes as the login's app.
    """

    __tablename__ = "two_factor_enrolments"
    __table_args__ = (
        _one_subject(),
        UniqueConstraint("admin_id"),
        UniqueConstraint("customer_id"),
        UniqueConstraint("domain_id"),
        UniqueConstraint("user_id"),
    )
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # RFC 6238 §5.2: the time step of the last code accepted; a code is accepted once,
    # and no code of an earlier step after it (one conditional UPDATE, on every node).
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A single-use code that stands in for a TOTP code; only its keyed digest is kept."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("enrolment_id", "digest"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("two_factor_enrolments.id", ondelete="CASCADE")
    )
    digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AppPassword(Base):
    """A domain user's password for one mail program (POP3, submission); revoked by deleting.

    `prefix` is the first group of the password in clear, to find the row without an
    argon2 verification per app password; the rest is only in the argon2id hash.
    """

    __tablename__ = "app_passwords"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("domain_users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(320))  # the user's address when it was made
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(8))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_address: Mapped[str | None] = mapped_column(String(64))


class ProviderAdmin(Base):
    """An operator login for the provider admin panel (`mailhost admin add`)."""

    __tablename__ = "provider_admins"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254))


class PendingRemoval(Base):
    """Files of a removed mailbox, domain or customer to delete from disk.

    Written in the transaction that removes the rows; `done_at` is set once the files
    are gone, so a process killed in between finishes the job at its next start. Done
    entries are kept: they are the only Maildirs mailhost ever deletes unasked (one a
    late delivery made again), never one merely missing from the database.
    """

    __tablename__ = "pending_removals"
    __table_args__ = (Index("ix_pending_removals_undone", "done_at"),)
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # maildir | certificate | spool
    key: Mapped[str] = mapped_column(String(300))  # storage key | host name | message id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


for _table in Base.metadata.tables.values():
    _never_reuse_ids(_table)
