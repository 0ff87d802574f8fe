"""Checks logins for every front end: penalties first, argon2id off the loop, a short success cache.

Every refusal looks the same from outside (BadCredentials after the same
argon2 work and the same penalty), so that a client cannot tell an unknown
user from a wrong password or a disabled account. The log, which only the
operator reads, says which it was. Passwords are never logged. Failures slow
their client down (services/throttle.py); they never refuse a right password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from mailhost.errors import InvalidInput
from mailhost.interfaces import LoginDirectory
from mailhost.model.logins import Authenticated, AuthOutcome, BadCredentials, ClientInfo
from mailhost.model.names import EmailAddress
from mailhost.model.records import AppPasswordSecret, LoginRecord
from mailhost.model.two_factor import APP_PASSWORD_PREFIX, normalised_app_password
from mailhost.services.passwords import Passwords
from mailhost.services.throttle import Attempt, Penalties
from mailhost.services.usage import utc_now

log = logging.getLogger("mailhost.auth")

# Bounds what an unparsable login takes in the login attempts and the log.
_MAX_ACCOUNT_KEY = 320
_MAX_CACHED = 10_000
# ClientInfo.service of panel logins (web/panel/login.py): the account password only
# (two-factor asks for its code next); app passwords are for mail programs.
PANEL = "web"
# "Last used" of an app password to the minute (or a new address): not a write per login.
_TOUCH_INTERVAL = timedelta(minutes=1)

CacheKey = tuple[str, str, bytes]


class AuthenticationService:
    """The Authenticator behind SMTP AUTH, POP3 USER/PASS and AUTH, and the web login."""

    def __init__(
        self,
        directory: LoginDirectory,
        passwords: Passwords,
        penalties: Penalties,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._passwords = passwords
        self._penalties = penalties
        self._cache_seconds = cache_seconds
        self._clock = clock
        # Successes are remembered by a keyed digest of the password, never the
        # password or a plain hash of it, which could be brute-forced from a memory dump.
        self._cache_secret = secrets.token_bytes(32)
        self._cache: dict[CacheKey, float] = {}

    async def authenticate(self, login: str, password: str, client: ClientInfo) -> AuthOutcome:
        address = _parse_login(login)
        account = str(address) if address else login.strip().lower()[:_MAX_ACCOUNT_KEY]
        # The answer to a failure is held back in the penalty's block (services/throttle.py).
        async with self._penalties.attempt("user", account, client) as attempt:
            return await self._verify(address, account, password, client, attempt)

    async def _verify(
        self,
        address: EmailAddress | None,
        account: str,
        password: str,
        client: ClientInfo,
        attempt: Attempt,
    ) -> AuthOutcome:
        """The outcome, already recorded as the attempt's."""
        if address is None:
            return await self._refuse(account, client, attempt, None, "not a user address")
        record = await self._directory.find_login(address)
        if record is None:
            await self._passwords.verify_unknown(password)
            return await self._refuse(account, client, attempt, None, "no such user")
        match = await self._match(record, password, client)
        if not record.enabled:  # checked after the verify, which costs the same time
            return await self._refuse(account, client, attempt, record.user_id, "user disabled")
        if isinstance(match, str):
            return await self._refuse(account, client, attempt, record.user_id, match)
        name = None if match.app_password is None else match.app_password.name
        if match.app_password is not None:
            await self._touch(match.app_password, client)
        await attempt.succeeded(record.user_id, app_password=name)
        used = "" if name is None else f" with app password {name!r}"
        log.info("%s: accepted%s%s", _attempt(account, client), used, match.cached)
        return Authenticated(record)

    async def _match(self, record: LoginRecord, password: str, client: ClientInfo) -> _Match | str:
        """Which secret `password` is of the user's; else why it is refused.

        On the mail protocols an app password is tried first (only those whose first
        group matches: one argon2 verification), and with two-factor on it is the only
        way in; the panel takes the account password alone.
        """
        if client.service == PANEL:
            return await self._account_password(record, password)
        letters = normalised_app_password(password)
        prefix = None if letters is None else letters[:APP_PASSWORD_PREFIX]
        held = await self._directory.mail_secrets(record.user_id, prefix)
        for candidate in held.app_passwords:
            if letters is None or candidate.subject != str(record.address):
                continue  # made for a user that had this row before: never trusted
            cached = await self._verified(record, candidate.password_hash, letters)
            if cached is not None:
                return _Match(candidate, cached)
        if held.two_factor:
            if not held.app_passwords:
                await self._passwords.verify_unknown(password)  # the work of a wrong one
            return "account password with two-factor on (an app password is needed)"
        return await self._account_password(record, password)

    async def _account_password(self, record: LoginRecord, password: str) -> _Match | str:
        cached = await self._verified(record, record.password_hash, password)
        return "wrong password" if cached is None else _Match(None, cached)

    async def _verified(self, record: LoginRecord, stored: str, password: str) -> str | None:
        """None if `password` does not match the hash `stored`; else " (cached)" or ""."""
        key = self._cache_key(record, stored, password)
        if self._is_cached(key):
            return " (cached)"
        if not await self._passwords.verify(stored, password):
            return None
        self._remember(key)
        return ""

    async def _touch(self, used: AppPasswordSecret, client: ClientInfo) -> None:
        now = utc_now()
        stale = used.last_used_at is None or now - used.last_used_at >= _TOUCH_INTERVAL
        if stale or used.last_used_address != client.address:
            await self._directory.app_password_used(used.id, now, client.address)

    async def _refuse(
        self,
        account: str,
        client: ClientInfo,
        attempt: Attempt,
        user_id: int | None,
        reason: str,
    ) -> BadCredentials:
        await attempt.failed(user_id, reason)
        log.warning("%s: refused (%s)", _attempt(account, client), reason)
        return BadCredentials()

    def _cache_key(self, record: LoginRecord, stored: str, password: str) -> CacheKey:
        # The stored hash is part of the key and is read afresh on every login, so a
        # password change, or an app password revoked (its row gone), ends every
        # cached success at once.
        secret = password.encode("utf-8", "surrogatepass")
        digest = hmac.new(self._cache_secret, secret, hashlib.sha256).digest()
        return (str(record.address), stored, digest)

    def _is_cached(self, key: CacheKey) -> bool:
        expires = self._cache.get(key)
        return expires is not None and expires > self._clock()

    def _remember(self, key: CacheKey) -> None:
        if self._cache_seconds <= 0:
            return
        now = self._clock()
        # Entries are added in expiry order, so the expired ones are at the front.
        while self._cache:
            oldest, expires = next(iter(self._cache.items()))
            if expires > now and len(self._cache) < _MAX_CACHED:
                break
            del self._cache[oldest]
        self._cache.pop(key, None)
        self._cache[key] = now + self._cache_seconds


@dataclass(frozen=True, slots=True)
class _Match:
    app_password: AppPasswordSecret | None  # the app password used, if one was
    cached: str  # " (cached)" when remembered, for the log


def _parse_login(login: str) -> EmailAddress | None:
    """The hosted user address a login names, or None if it cannot name one."""
    try:
        return EmailAddress.hosted(login)
    except InvalidInput:
        return None


def _attempt(account: str, client: ClientInfo) -> str:
    # repr() keeps a hostile login's CR/LF from forging log lines.
    return f"login {account!r} from {client.address} via {client.service}"
