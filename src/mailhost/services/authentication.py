"""Checks logins for every front end: throttle first, argon2id off the loop, a short success cache.

Every refusal looks the same from outside (BadCredentials after the same
argon2 work and the same throttle delay), so that a client cannot tell an
unknown user from a wrong password or a disabled account. The log, which only
the operator reads, says which it was. Passwords are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

from mailhost.errors import InvalidInput
from mailhost.interfaces import Directory
from mailhost.model.logins import (
    Authenticated,
    AuthOutcome,
    BadCredentials,
    ClientInfo,
    Throttled,
)
from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord
from mailhost.services.passwords import Passwords
from mailhost.services.throttle import PENDING_RETRY_SECONDS, Throttle

log = logging.getLogger("mailhost.auth")

# Bounds the memory an unparsable login can take in the throttle and the log.
_MAX_ACCOUNT_KEY = 320
_MAX_CACHED = 10_000
# How long a login waits for the same client's other logins still being verified.
PENDING_WAIT_SECONDS = 10.0

CacheKey = tuple[str, str, bytes]


class AuthenticationService:
    """The Authenticator behind SMTP AUTH, POP3 USER/PASS and AUTH, and the web login."""

    def __init__(
        self,
        directory: Directory,
        passwords: Passwords,
        throttle: Throttle,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._passwords = passwords
        self._throttle = throttle
        self._cache_seconds = cache_seconds
        self._clock = clock
        # Successes are remembered by a keyed digest of the password, never the
        # password or a plain hash of it, which could be brute-forced from a memory dump.
        self._cache_secret = secrets.token_bytes(32)
        self._cache: dict[CacheKey, float] = {}

    async def authenticate(self, login: str, password: str, client: ClientInfo) -> AuthOutcome:
        address = _parse_login(login)
        account = str(address) if address else login.strip().lower()[:_MAX_ACCOUNT_KEY]
        retry_after = await self._admitted(client.address, account)
        if retry_after is not None:
            log.warning("%s: throttled for %.0f s", _attempt(account, client), retry_after)
            return Throttled(retry_after)
        settled = False
        try:
            outcome, delay = await self._verify(address, account, password, client)
            settled = True
        finally:
            if not settled:  # cancelled or crashed mid-way: it counts as a failure
                await self._throttle.failure(client.address, account)
        await asyncio.sleep(delay)  # a refusal answers late, more so after each failure
        return outcome

    async def _admitted(self, address: str, account: str) -> float | None:
        """None once the throttle lets the attempt through; else seconds to retry after.

        A client whose other connections are still being verified waits for them
        (at most PENDING_WAIT_SECONDS) instead of being turned away.
        """
        waited = 0.0
        while True:
            retry_after = await self._throttle.check(address, account)
            if retry_after is None or retry_after > PENDING_RETRY_SECONDS:
                return retry_after
            if waited >= PENDING_WAIT_SECONDS:
                return retry_after
            await asyncio.sleep(retry_after)
            waited += retry_after

    async def _verify(
        self, address: EmailAddress | None, account: str, password: str, client: ClientInfo
    ) -> tuple[AuthOutcome, float]:
        """The outcome, already reported to the throttle, and how long to delay it."""
        if address is None:
            return await self._refuse(account, client, "not a user address")
        record = await self._directory.find_login(address)
        if record is None:
            await self._passwords.verify_unknown(password)
            return await self._refuse(account, client, "no such user")
        key = self._cache_key(record, password)
        cached = self._is_cached(key)
        matches = cached or await self._passwords.verify(record.password_hash, password)
        if not record.enabled:  # checked after the verify, which costs the same time
            return await self._refuse(account, client, "user disabled")
        if not matches:
            return await self._refuse(account, client, "wrong password")
        if not cached:
            self._remember(key)
        await self._throttle.success(client.address, account)
        log.info("%s: accepted%s", _attempt(account, client), " (cached)" if cached else "")
        return Authenticated(record), 0.0

    async def _refuse(
        self, account: str, client: ClientInfo, reason: str
    ) -> tuple[BadCredentials, float]:
        delay = await self._throttle.failure(client.address, account)
        log.warning(
            "%s: refused (%s); answering in %.1f s", _attempt(account, client), reason, delay
        )
        return BadCredentials(), delay

    def _cache_key(self, record: LoginRecord, password: str) -> CacheKey:
        # The stored hash is part of the key, so a password change invalidates
        # every cached success at once.
        secret = password.encode("utf-8", "surrogatepass")
        digest = hmac.new(self._cache_secret, secret, hashlib.sha256).digest()
        return (str(record.address), record.password_hash, digest)

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


def _parse_login(login: str) -> EmailAddress | None:
    """The hosted user address a login names, or None if it cannot name one."""
    try:
        return EmailAddress.hosted(login)
    except InvalidInput:
        return None


def _attempt(account: str, client: ClientInfo) -> str:
    # repr() keeps a hostile login's CR/LF from forging log lines.
    return f"login {account!r} from {client.address} via {client.service}"
