"""Login failure counters per client address and per account, over a sliding window.

An attempt counts as a failure from the moment `check` lets it through until
`success` says otherwise. Counting it up front means that an attacker who
opens many connections at once cannot get more guesses in flight than the
limit allows while the (slow, deliberately) password checks are running. An
attempt that is abandoned half-way (the client hung up) keeps counting.
When the limit is reached only because attempts are still in flight, `check`
asks the caller to wait a moment rather than refusing: a mail client opening
several connections at once waits for its first logins instead of being
locked out, and still no more guesses than the limit are ever in flight.

A success from an address forgives that address's earlier failures on that
account only: the owner's phone logging in every minute must not reset the
count of someone guessing the same account from elsewhere.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Protocol

# The first two failures cost nothing (typos happen); then the delay doubles.
FIRST_DELAYED_FAILURE = 3
BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 8.0
DEFAULT_MAX_KEYS = 100_000
# `check` answers this when the limit is reached by attempts still being verified.
PENDING_RETRY_SECONDS = 0.25


class Throttle(Protocol):
    """Shared by every login path (SMTP AUTH, POP3, web); async so it can live in a database."""

    async def check(self, address: str, account: str) -> float | None:
        """None: go ahead (the attempt counts as a failure from now on); else seconds to wait.

        PENDING_RETRY_SECONDS means the limit is reached by attempts still in
        flight; the caller may wait that long and ask again.
        """
        ...

    async def failure(self, address: str, account: str) -> float:
        """The attempt let through by `check` failed; returns the seconds to delay the answer."""
        ...

    async def success(self, address: str, account: str) -> None:
        """The attempt let through by `check` succeeded; forget this address's failures on it."""
        ...


def delay_after(failures: int) -> float:
    """Seconds to hold back the answer to the `failures`-th recent failure."""
    if failures < FIRST_DELAYED_FAILURE:
        return 0.0
    doublings = min(failures - FIRST_DELAYED_FAILURE, 16)  # the cap is reached long before
    return min(BASE_DELAY_SECONDS * float(2**doublings), MAX_DELAY_SECONDS)


class _Window:
    """Recent attempt times per key, each tagged with the other party (account or address).

    Keys are kept in order of their latest attempt, so expired keys gather at the
    front and eviction is cheap; at most `max_keys` keys are held.
    """

    def __init__(self, limit: int, seconds: float, max_keys: int) -> None:
        self.limit = limit
        self._seconds = seconds
        self._max_keys = max_keys
        self._attempts: dict[str, deque[tuple[float, str]]] = {}

    def count(self, key: str, now: float) -> int:
        return len(self._current(key, now))

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until the key is below its limit again, or None if it already is."""
        attempts = self._current(key, now)
        if len(attempts) < self.limit:
            return None
        # The window drops below the limit when this attempt expires.
        started, _ = attempts[len(attempts) - self.limit]
        return started + self._seconds - now

    def add(self, key: str, tag: str, now: float) -> None:
        attempts = self._attempts.pop(key, None) or deque()
        attempts.append((now, tag))
        self._evict(now)
        self._attempts[key] = attempts

    def forgive(self, key: str, tag: str) -> None:
        attempts = self._attempts.get(key)
        if attempts is None:
            return
        kept = deque(entry for entry in attempts if entry[1] != tag)
        if kept:
            self._attempts[key] = kept
        else:
            del self._attempts[key]

    def _current(self, key: str, now: float) -> deque[tuple[float, str]]:
        attempts = self._attempts.get(key)
        if attempts is None:
            return deque()
        while attempts and attempts[0][0] <= now - self._seconds:
            attempts.popleft()
        if not attempts:
            del self._attempts[key]
        return attempts

    def _evict(self, now: float) -> None:
        expired_before = now - self._seconds
        while self._attempts:
            oldest_key = next(iter(self._attempts))
            latest = self._attempts[oldest_key][-1][0]
            if latest > expired_before and len(self._attempts) < self._max_keys:
                return
            # Expired, or memory is full: the least recently active key goes first.
            del self._attempts[oldest_key]


class MemoryThrottle:
    """The Throttle of a single process; counts are lost on restart."""

    def __init__(
        self,
        *,
        max_failures_per_address: int,
        max_failures_per_account: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._by_address = _Window(max_failures_per_address, window_seconds, max_keys)
        self._by_account = _Window(max_failures_per_account, window_seconds, max_keys)
        self._clock = clock
        # Attempts let through and not yet settled: a mail client opening several
        # connections at once must wait for its first logins, not be locked out.
        self._pending_addresses: Counter[str] = Counter()
        self._pending_accounts: Counter[str] = Counter()

    def _settle(self, address: str, account: str) -> None:
        for pending, key in ((self._pending_addresses, address), (self._pending_accounts, account)):
            pending[key] -= 1
            if pending[key] <= 0:
                del pending[key]

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
            if self._pending_addresses[address] or self._pending_accounts[account]:
                # The limit is reached only by attempts still in flight: ask to wait for them.
                return PENDING_RETRY_SECONDS
            return max(waits)
        self._by_address.add(address, account, now)
        self._by_account.add(account, address, now)
        self._pending_addresses[address] += 1
        self._pending_accounts[account] += 1
        return None

    async def failure(self, address: str, account: str) -> float:
        self._settle(address, account)
        now = self._clock()
        failures = max(self._by_address.count(address, now), self._by_account.count(account, now))
        return delay_after(failures)

    async def success(self, address: str, account: str) -> None:
        self._settle(address, account)
        self._by_address.forgive(address, account)
        self._by_account.forgive(account, address)
