"""Panel logins at every level: throttled like the mail logins, refusals all alike.

Domain users log in through the same Authenticator as POP3 and SMTP AUTH, so
they share its throttle and cache. Provider admins, customers and domain
managers are checked here against the same throttle, with keys prefixed by the
kind of login ("customer:acme") so that the counts of different logins never mix.
"""

from __future__ import annotations

import asyncio
import logging

from mailhost.errors import InvalidInput
from mailhost.interfaces import Authenticator, LoginKind, UnitOfWorkFactory
from mailhost.model.logins import Authenticated, BadCredentials, ClientInfo, Throttled
from mailhost.model.names import DomainName, EmailAddress
from mailhost.services.accounts import parse_login
from mailhost.services.passwords import Passwords
from mailhost.services.sessions import Login
from mailhost.services.throttle import Throttle

log = logging.getLogger("mailhost.auth")

LOGIN_KINDS: tuple[LoginKind, ...] = ("provider", "customer", "domain", "user")
LoginOutcome = Login | BadCredentials | Throttled
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
        throttle: Throttle,
        users: Authenticator,
    ) -> None:
        self._units = units
        self._passwords = passwords
        self._throttle = throttle
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
        account = f"{kind}:{key or login.strip().lower()[:_MAX_ACCOUNT_KEY]}"
        retry_after = await self._throttle.check(client.address, account)
        if retry_after is not None:
            log.warning("%s: throttled for %.0f s", _attempt(account, client), retry_after)
            return Throttled(retry_after)
        credential = None
        if key is not None:
            async with self._units() as uow:
                credential = await uow.web_access.credential(kind, key)
        if credential is None:
            await self._passwords.verify_unknown(password)
            return await self._refuse(account, client, "no such login")
        matches = await self._passwords.verify(credential.password_hash, password)
        if not credential.enabled:  # after the verify, which costs the same time
            return await self._refuse(account, client, "login disabled")
        if not matches:
            return await self._refuse(account, client, "wrong password")
        await self._throttle.success(client.address, account)
        log.info("%s: accepted", _attempt(account, client))
        return await self._login(kind, credential.subject_id)

    async def _login(self, kind: LoginKind, subject_id: int) -> LoginOutcome:
        async with self._units() as uow:
            actor = await uow.web_access.actor_for(kind, subject_id)
        return BadCredentials() if actor is None else Login(kind, subject_id, actor)

    async def _refuse(self, account: str, client: ClientInfo, reason: str) -> BadCredentials:
        delay = await self._throttle.failure(client.address, account)
        log.warning(
            "%s: refused (%s); answering in %.1f s", _attempt(account, client), reason, delay
        )
        await asyncio.sleep(delay)
        return BadCredentials()


def _attempt(account: str, client: ClientInfo) -> str:
    return f"login {account!r} from {client.address} via {client.service}"
