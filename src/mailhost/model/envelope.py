"""What the SMTP edge tells the rules, and what the rules answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailhost.model.records import MailboxRecord


class Listener(StrEnum):
    MX = "mx"
    SUBMISSION = "submission"


@dataclass(frozen=True, slots=True)
class SessionFacts:
    listener: Listener
    peer: str
    tls: bool


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
    mailbox: MailboxRecord


@dataclass(frozen=True, slots=True)
class Refuse:
    """`detail` names the address concerned; `limit` the limit, sender or plan, if any."""

    reason: Reason
    detail: str
    limit: str = ""


Verdict = Accept | Refuse
