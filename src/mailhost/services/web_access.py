"""The services behind the panel and the API's logins, built together from runtime's parts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from mailhost.interfaces import Authenticator, LoginKind, Outbox, UnitOfWorkFactory
from mailhost.services.admins import ProviderAdminService
from mailhost.services.api_tokens import ApiTokenService
from mailhost.services.app_passwords import AppPasswordService
from mailhost.services.audit import AuditService
from mailhost.services.dns_records import DnsService, ServicePorts
from mailhost.services.login_history import LoginHistoryService
from mailhost.services.logins import LoginService
from mailhost.services.password_reset import PasswordResetService
from mailhost.services.passwords import Passwords
from mailhost.services.sessions import SessionService
from mailhost.services.throttle import MemoryLimiter, Penalties
from mailhost.services.two_factor import TwoFactorService

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
    history: LoginHistoryService
    two_factor: TwoFactorService
    app_passwords: AppPasswordService


def build_web_access(
    units: UnitOfWorkFactory,
    passwords: Passwords,
    penalties: Penalties,
    outbox: Outbox,
    users: Authenticator,
    hostname: str,
    ports: ServicePorts,
    *,
    require_two_factor: Collection[LoginKind],
) -> WebAccess:
    """`penalties` are the mail servers' too; reset requests get a limiter of their own.
    `require_two_factor`: the kinds of login that must enrol (`[auth] require_two_factor`)."""
    limiter = MemoryLimiter(
        per_address=RESETS_PER_ADDRESS,
        per_account=RESETS_PER_ACCOUNT,
        window_seconds=RESET_WINDOW_SECONDS,
    )
    # The server host name need not be a domain name (localhost): kept as plain text.
    sender = f"postmaster@{hostname}"
    logins = LoginService(units, passwords, penalties, users)
    return WebAccess(
        logins=logins,
        sessions=SessionService(units),
        api_tokens=ApiTokenService(units),
        resets=PasswordResetService(units, passwords, outbox, limiter, sender),
        admins=ProviderAdminService(units, passwords),
        audit=AuditService(units),
        dns=DnsService(units, hostname, ports),
        history=LoginHistoryService(
            penalties.attempts, outbox, sender, penalty_window=penalties.window
        ),
        two_factor=TwoFactorService(
            units, penalties, logins, required=require_two_factor, issuer=hostname
        ),
        app_passwords=AppPasswordService(units, passwords),
    )
