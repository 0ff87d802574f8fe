"""Who is logging in from where, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after: float


AuthOutcome = Authenticated | BadCredentials | Throttled
