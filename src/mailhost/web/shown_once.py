"""Secrets shown once, on the page a "create" redirects to.

Post/redirect/get for the actions whose answer carries a secret (a new API token, a
new app password): the secret must not travel in the redirect's URL, and a reload
must not create a second one. The post keeps the secret here under a random key
bound to the session; the page it redirects to takes it out, so it is shown once,
to that session only, within a few minutes. Held in the serving process's memory:
nothing of it reaches the database or the logs.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

LIFETIME = 300.0  # seconds from the post to the page it redirects to
LIMIT = 10_000  # secrets held at once; past it the oldest are dropped


@dataclass(frozen=True, slots=True)
class _Held:
    owner: str
    values: tuple[str, ...]
    until: float


class ShownOnce:
    def __init__(
        self,
        lifetime: float = LIFETIME,
        limit: int = LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lifetime = lifetime
        self._limit = limit
        self._clock = clock
        self._held: dict[str, _Held] = {}

    def keep(self, owner: str, *values: str) -> str:
        """Hold `values` for `owner` (the session's CSRF token); returns the key to take them."""
        now = self._clock()
        self._forget(now)
        key = secrets.token_urlsafe(16)
        self._held[key] = _Held(owner, values, now + self._lifetime)
        return key

    def take(self, owner: str, key: str) -> tuple[str, ...] | None:
        """The values kept under `key` for `owner`, once; None if unknown, expired or not theirs."""
        held = self._held.get(key)
        if held is None or not hmac.compare_digest(held.owner, owner):
            return None
        del self._held[key]
        return held.values if held.until > self._clock() else None

    def _forget(self, now: float) -> None:
        for key in [k for k, held in self._held.items() if held.until <= now]:
            del self._held[key]
        while len(self._held) >= self._limit:  # insertion order: the oldest first
            del self._held[next(iter(self._held))]
