"""Who may hold a session on one SMTP listener, and how its sessions are told to go.

Postfix's anvil in the small, counted in this process per listener: at most
`max_connections` sessions in all and `max_connections_per_client` from one
client address; the excess is turned away at connect (`421 4.7.0`, RFC 5321
§3.8). The live sessions are kept here too, because Python 3.11's
`Server.close()` stops accepting but leaves accepted sessions running: a
graceful stop asks each of them to end (`stop`), waits a bounded time for the
ones in the middle of a command (a message in DATA is received, stored and
answered), and then cuts the rest off.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from dataclasses import dataclass
from logging import WARNING
from typing import Protocol

from mailhost.errors import ConfigError
from mailhost.logs import event

log = logging.getLogger("mailhost.smtp")


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """A listener's limits on sessions; defaults as Postfix's, built by runtime.py from Settings."""

    max_connections: int = 1000
    max_connections_per_client: int = 50  # Postfix smtpd_client_connection_count_limit
    # Postfix smtpd_soft_error_limit, smtpd_hard_error_limit, smtpd_error_sleep_time: from
    # the soft limit on, every reply waits; at the hard limit the session ends.
    soft_error_limit: int = 10
    hard_error_limit: int = 20
    error_sleep_seconds: float = 1.0

    def __post_init__(self) -> None:
        counts = (
            self.max_connections,
            self.max_connections_per_client,
            self.soft_error_limit,
            self.hard_error_limit,
        )
        if min(counts) < 1 or self.error_sleep_seconds < 0:
            raise ConfigError(f"SMTP session limits must be positive: {self}")


class Turnaway(enum.Enum):
    """Why a new session is not admitted."""

    LISTENER_FULL = "max_connections"
    CLIENT_FULL = "max_connections_per_client"
    STOPPING = "stopping"


class Session(Protocol):
    """What the admission needs of a live session (smtp/listeners.py's EsmtpProtocol)."""

    def stop_session(self) -> None:
        """Say 421 4.3.2 and close: now if idle, else once the command under way is answered."""

    def abort_session(self) -> None:
        """Close at once, answering nothing more (the stop's grace has run out)."""


class Admission:
    """The live sessions of one listener, counted in all and per client address."""

    def __init__(self, limits: SessionLimits) -> None:
        self.limits = limits
        self._sessions: dict[Session, str] = {}
        self._per_client: collections.Counter[str] = collections.Counter()
        self._stopping = False
        self._emptied = asyncio.Event()
        self._emptied.set()

    @property
    def live(self) -> int:
        """How many sessions are admitted and not gone yet."""
        return len(self._sessions)

    def admit(self, session: Session, client: str) -> Turnaway | None:
        """Count `session` in, or say why not (the caller answers 421 and closes)."""
        if self._stopping:
            return Turnaway.STOPPING
        if len(self._sessions) >= self.limits.max_connections:
            event(log, "turned_away", client=client, limit="max_connections", level=WARNING)
            return Turnaway.LISTENER_FULL
        if self._per_client[client] >= self.limits.max_connections_per_client:
            limit = "max_connections_per_client"
            event(log, "turned_away", client=client, limit=limit, level=WARNING)
            return Turnaway.CLIENT_FULL
        self._sessions[session] = client
        self._per_client[client] += 1
        self._emptied.clear()
        return None

    def release(self, session: Session) -> None:
        """The session's connection is gone; a session never admitted is ignored."""
        client = self._sessions.pop(session, None)
        if client is None:
            return
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]
        if not self._sessions:
            self._emptied.set()

    async def stop(self, grace_seconds: float) -> None:
        """Turn new sessions away, end the idle ones, give busy ones `grace_seconds`."""
        self._stopping = True
        for session in list(self._sessions):
            session.stop_session()
        try:
            async with asyncio.timeout(grace_seconds):
                await self._emptied.wait()
        except TimeoutError:
            log.warning(
                "stop: %d SMTP sessions still busy after %ss, cut off", self.live, grace_seconds
            )
            for session in list(self._sessions):
                session.abort_session()
