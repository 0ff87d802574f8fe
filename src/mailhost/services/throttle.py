"""Holding back clients: login penalties (as Dovecot's auth_penalty) and a request limiter.

Failures never lock an account. Each standing failure from a client address
doubles the wait before that address's next attempt is looked at (0, 1, 2, 4,
8 s, ... up to `[auth] penalty_max_seconds`); a failing answer also waits for the
failures against its account from every address, so a guesser spread over many
addresses is slowed too. A correct password is never refused: from a clean
address it is answered at once however hard its account is attacked, and from a
failing address after at most the cap. A success forgives that address its
failures on that account (another account's, or another address's, stay).

Attempts from one address wait in line behind each other in this process, so
opening more connections does not make guessing faster; the failures themselves
live in the database (LoginAttempts), so every process and node applies the same
penalty. An attempt abandoned half-way (the client hung up) is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Protocol

from mailhost.interfaces import LoginAttempts, LoginKind
from mailhost.model.logins import AttemptFacts, ClientInfo
from mailhost.services.usage import utc_now

log = logging.getLogger("mailhost.auth")

# Failures counted at most: 2**31 seconds is beyond any cap, so more change nothing.
_COUNTED = 32
DEFAULT_MAX_KEYS = 100_000


def penalty_seconds(failures: int, cap: float) -> float:
    """The wait owed after `failures` standing failures: 0, then 1, 2, 4, 8, ... up to `cap`."""
    if failures <= 0:
        return 0.0
    return min(cap, float(2 ** min(failures - 1, _COUNTED)))


class Attempt:
    """One login attempt, holding its client address's place in line; settle it once."""

    def __init__(
        self, penalties: Penalties, kind: LoginKind, account: str, client: ClientInfo
    ) -> None:
        self._penalties = penalties
        self._kind = kind
        self._account = account
        self._client = client
        self.success: bool | None = None

    async def succeeded(
        self, subject_id: int, *, app_password: str | None = None, detail: str = "accepted"
    ) -> None:
        """The password was right: recorded, and this address's failures on it forgiven."""
        await self._settle(True, subject_id, detail, app_password)

    async def failed(self, subject_id: int | None, detail: str) -> None:
        """Refused (`subject_id` is the login it named, if any); the answer is held back."""
        await self._settle(False, subject_id, detail, None)

    async def _settle(
        self, success: bool, subject_id: int | None, detail: str, app_password: str | None
    ) -> None:
        assert self.success is None, "an attempt is settled once"
        self.success = success
        facts = AttemptFacts(
            self._penalties.now(),
            self._kind,
            self._account,
            self._client,
            subject_id,
            success,
            detail,
            app_password,
        )
        await self._penalties.attempts.record(facts)


class _Line:
    """One asyncio lock per client address, kept only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def place(self, address: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(address, (asyncio.Lock(), 0))
        self._locks[address] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[address]
            if users <= 1:
                del self._locks[address]
            else:
                self._locks[address] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Penalties:
    """The penalties of every login path (POP3, SMTP AUTH, every panel login)."""

    def __init__(
        self,
        attempts: LoginAttempts,
        *,
        max_seconds: float,
        window_seconds: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.attempts = attempts
        self._cap = max_seconds
        self._window = timedelta(seconds=window_seconds)
        self._clock = clock
        self._line = _Line()

    @property
    def window(self) -> timedelta:
        """Failures older than this no longer count."""
        return self._window

    def now(self) -> datetime:
        return self._clock()

    @contextlib.asynccontextmanager
    async def attempt(
        self, kind: LoginKind, account: str, client: ClientInfo
    ) -> AsyncIterator[Attempt]:
        """Wait in the address's line and for its penalty, then check the password inside.

        A failure's answer (the end of the block) waits, still in line, until the
        account's own penalty has passed since the attempt arrived.
        """
        arrived = time.monotonic()
        async with self._line.place(client.address):
            wait = await self.address_wait(client.address)
            if wait > 0:
                log.info("login %r from %s waits %.1f s", account, client.address, wait)
                await asyncio.sleep(wait)
            attempt = Attempt(self, kind, account, client)
            try:
                yield attempt
            finally:
                if attempt.success is None:  # hung up or crashed mid-way: a failure
                    await attempt.failed(None, "abandoned")
            if attempt.success is False:
                held = await self.account_penalty(kind, account) - (time.monotonic() - arrived)
                if held > 0:
                    await asyncio.sleep(held)

    async def address_wait(self, address: str) -> float:
        """Seconds still owed by `address` before its next attempt is looked at."""
        now = self._clock()
        run = await self.attempts.failures_from(address, now - self._window, _COUNTED)
        if run.latest is None:
            return 0.0
        due = run.latest + timedelta(seconds=penalty_seconds(run.failures, self._cap))
        # Clamped: another node's clock running ahead must not make anyone wait longer.
        return min(self._cap, max(0.0, (due - now).total_seconds()))

    async def account_penalty(self, kind: LoginKind, account: str) -> float:
        """How long a failing answer on `account` takes at least, from every address's failures."""
        since = self._clock() - self._window
        failures = await self.attempts.failures_of(kind, account, since, _COUNTED)
        return penalty_seconds(failures, self._cap)


class RequestLimiter(Protocol):
    """Counts requests (every one, successful or not) per client address and per account."""

    async def check(self, address: str, account: str) -> float | None:
        """None: go ahead (the request is counted); else seconds until one is allowed."""
        ...


class _Window:
    """Recent request times per key, within `seconds`; at most `max_keys` keys are held.

    Keys are kept in order of their latest request, so expired keys gather at the
    front and eviction is cheap.
    """

    def __init__(self, limit: int, seconds: float, max_keys: int) -> None:
        self.limit = limit
        self._seconds = seconds
        self._max_keys = max_keys
        self._times: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until the key is below its limit again, or None if it already is."""
        times = self._current(key, now)
        if len(times) < self.limit:
            return None
        return times[len(times) - self.limit] + self._seconds - now

    def add(self, key: str, now: float) -> None:
        times = self._times.pop(key, None) or deque()
        times.append(now)
        self._evict(now)
        self._times[key] = times

    def _current(self, key: str, now: float) -> deque[float]:
        times = self._times.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._seconds:
            times.popleft()
        if not times:
            del self._times[key]
        return times

    def _evict(self, now: float) -> None:
        expired_before = now - self._seconds
        while self._times:
            oldest = next(iter(self._times))
            if self._times[oldest][-1] > expired_before and len(self._times) < self._max_keys:
                return
            # Expired, or memory is full: the least recently active key goes first.
            del self._times[oldest]


class MemoryLimiter:
    """The RequestLimiter of one process (password reset mails); counts die with it."""

    def __init__(
        self,
        *,
        per_address: int,
        per_account: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._by_address = _Window(per_address, window_seconds, max_keys)
        self._by_account = _Window(per_account, window_seconds, max_keys)
        self._clock = clock

    async def check(self, address: str, account: str) -> float | None:
        now = self._clock()
        waits = [
            wait
            for wait in (
                self._by_address.retry_after(address, now),
                self._by_account.retry_after(account, now),
            )
            if wait is not None
        ]
        if waits:
            return max(waits)
        self._by_address.add(address, now)
        self._by_account.add(account, now)
        return None
