"""Panel logins at every level: penalised like the mail logins, refusals all alike.

Domain users log in through the same Authenticator as POP3 and SMTP AUTH, so
they share its penalties and cache. Provider admins, customers and domain
managers are checked here under the same penalties: a client address pays for
its failures at every level, and each kind of login counts its own accounts'
failures ("customer" "acme" is not "domain" "acme").
"""

from __future__ import annotations

import logging

from mailhost.errors import InvalidInput
from mailhost.interfaces import Authenticator, LoginKind, UnitOfWorkFactory
from mailhost.model.logins import Authenticated, BadCredentials, ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.services.accounts import parse_login
from mailhost.services.passwords import Passwords
from mailhost.services.sessions import Login
from mailhost.services.throttle import Attempt, Penalties

log = logging.getLogger("mailhost.auth")

LOGIN_KINDS: tuple[LoginKind, ...] = ("provider", "customer", "domain", "user")
LoginOutcome = Login | BadCredentials
_MAX_ACCOUNT_KEY = 320


def login_key(kind: LoginKind, raw: str) -> str | None:
    """The stored login that a typed one names, or None if it cannot name any."""
    try:
        if kind == "domain":
            return DomainName.parse(raw).ascii
        if kind == "user":
            return str(EmailAddress.hosted(raw))
        return parse_login(raw)  # provider admins follow the customer login rule
    except InvalidInput:
        return None


class LoginService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        passwords: Passwords,
        penalties: Penalties,
        users: Authenticator,
    ) -> None:
        self._units = units
        self._passwords = passwords
        self._penalties = penalties
        self._users = users

    async def login(
        self, kind: LoginKind, login: str, password: str, client: ClientInfo
    ) -> LoginOutcome:
        if kind == "user":
            outcome = await self._users.authenticate(login, password, client)
            if not isinstance(outcome, Authenticated):
                return outcome
            return await self._login("user", outcome.login.user_id)
        key = login_key(kind, login)
        account = key or login.strip().lower()[:_MAX_ACCOUNT_KEY]
        shown = f"{kind}:{account}"
        async with self._penalties.attempt(kind, account, client) as attempt:
            credential = None
            if key is not None:
                async with self._units() as uow:
                    credential = await uow.web_access.credential(kind, key)
            if credential is None:
                await self._passwords.verify_unknown(password)
                return await self._refuse(attempt, shown, client, None, "no such login")
            matches = await self._passwords.verify(credential.password_hash, password)
            subject = credential.subject_id
            if not credential.enabled:  # after the verify, which costs the same time
                return await self._refuse(attempt, shown, client, subject, "login disabled")
            if not matches:
                return await self._refuse(attempt, shown, client, subject, "wrong password")
            await attempt.succeeded(subject)
        log.info("%s: accepted", _attempt(shown, client))
        return await self._login(kind, credential.subject_id)

    async def _login(self, kind: LoginKind, subject_id: int) -> LoginOutcome:
        async with self._units() as uow:
            actor = await uow.web_access.actor_for(kind, subject_id)
        return BadCredentials() if actor is None else Login(kind, subject_id, actor)

    async def _refuse(
        self, attempt: Attempt, account: str, client: ClientInfo, subject: int | None, reason: str
    ) -> BadCredentials:
        await attempt.failed(subject, reason)
        log.warning("%s: refused (%s)", _attempt(account, client), reason)
        return BadCredentials()


def _attempt(account: str, client: ClientInfo) -> str:
    return f"login {account!r} from {client.address} via {client.service}"
