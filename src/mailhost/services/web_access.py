"""The services behind the panel and the API's logins, built together from runtime's parts."""

from __future__ import annotations

from dataclasses import dataclass

from mailhost.interfaces import Authenticator, Outbox, UnitOfWorkFactory
from mailhost.services.admins import ProviderAdminService
from mailhost.services.api_tokens import ApiTokenService
from mailhost.services.audit import AuditService
from mailhost.services.dns_records import DnsService, ServicePorts
from mailhost.services.logins import LoginService
from mailhost.services.password_reset import PasswordResetService
from mailhost.services.passwords import Passwords
from mailhost.services.sessions import SessionService
from mailhost.services.throttle import MemoryThrottle, Throttle

# Reset mails: a few per login and per client address in an hour are plenty.
RESETS_PER_ACCOUNT = 3
RESETS_PER_ADDRESS = 10
RESET_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class WebAccess:
    logins: LoginService
    sessions: SessionService
    api_tokens: ApiTokenService
    resets: PasswordResetService
    admins: ProviderAdminService
    audit: AuditService
    dns: DnsService


def build_web_access(
    units: UnitOfWorkFactory,
    passwords: Passwords,
    throttle: Throttle,
    outbox: Outbox,
    users: Authenticator,
    hostname: str,
    ports: ServicePorts,
) -> WebAccess:
    """`throttle` is the one the mail servers use; reset requests get a limiter of their own."""
    limiter = MemoryThrottle(
        max_failures_per_address=RESETS_PER_ADDRESS,
        max_failures_per_account=RESETS_PER_ACCOUNT,
        window_seconds=RESET_WINDOW_SECONDS,
    )
    # The server host name need not be a domain name (localhost): kept as plain text.
    sender = f"postmaster@{hostname}"
    return WebAccess(
        logins=LoginService(units, passwords, throttle, users),
        sessions=SessionService(units),
        api_tokens=ApiTokenService(units),
        resets=PasswordResetService(units, passwords, outbox, limiter, sender),
        admins=ProviderAdminService(units, passwords),
        audit=AuditService(units),
        dns=DnsService(units, hostname, ports),
    )
