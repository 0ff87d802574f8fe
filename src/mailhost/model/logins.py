"""Who is logging in from where, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailhost.model.records import LoginRecord


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The peer of a login attempt; `service` is pop3, submission, web, ..."""

    address: str
    service: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    login: LoginRecord


@dataclass(frozen=True, slots=True)
class BadCredentials:
    pass


# No "throttled" outcome: failures slow a client down (services/throttle.py), they
# never make a correct password fail.
AuthOutcome = Authenticated | BadCredentials


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """One settled login attempt, as the penalties record it.

    `kind` is provider | customer | domain | user; `account` the login as typed,
    normalised and bounded; `subject_id` the row of the login it named (None when none).
    """

    at: datetime
    kind: str
    account: str
    client: ClientInfo
    subject_id: int | None
    success: bool
    detail: str
    app_password: str | None = None


@dataclass(frozen=True, slots=True)
class FailureRun:
    """A client's standing failures: how many (counted up to a limit) and the latest."""

    failures: int
    latest: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One line of a login's history."""

    at: datetime
    service: str
    client: str
    success: bool
    app_password: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class NoticeDue:
    """A user's success from a new address after failures, to mail to their recovery address."""

    attempt_id: int
    at: datetime
    service: str
    client: str
    app_password: str | None
    user: str  # the user's address
    recovery: str | None
    wanted: bool  # the user's choice (domain_users.login_notices)
