"""Panel sessions: a random token in an HttpOnly cookie, only its hash in the database.

Each session carries its own CSRF token, which every form echoes back. A
session ends at logout, after SESSION_LIFETIME, when its login is removed, or
when the password is changed or reset (services/subjects.py); while its login is
disabled it does not resolve.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailhost.interfaces import LoginKind, UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.services.subjects import bound_login, login_name
from mailhost.services.usage import utc_now

SESSION_LIFETIME = timedelta(hours=8)
# token_urlsafe(32) gives 43 characters; anything much longer is not ours.
_MAX_TOKEN = 128


def digest(token: str) -> str:
    """What the database keeps of a token: a leaked table does not give working tokens."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def plausible_token(token: str) -> bool:
    return 0 < len(token) <= _MAX_TOKEN and token.isascii()


@dataclass(frozen=True, slots=True)
class Login:
    """Who a successful login is: the kind of login, its row, and the actor it acts as."""

    kind: LoginKind
    subject_id: int
    actor: Actor

    @property
    def subject(self) -> str:
        return login_name(self.actor)


@dataclass(frozen=True, slots=True)
class PanelSession:
    login: Login
    csrf_token: str
    expires_at: datetime

    @property
    def actor(self) -> Actor:
        return self.login.actor


class SessionService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        clock: Callable[[], datetime] = utc_now,
        lifetime: timedelta = SESSION_LIFETIME,
    ) -> None:
        self._units = units
        self._clock = clock
        self._lifetime = lifetime

    async def open(self, login: Login) -> tuple[str, PanelSession]:
        """A new session for `login`; returns the cookie value and the session."""
        token, csrf = new_token(), new_token()
        now = self._clock()
        expires = now + self._lifetime
        async with self._units() as uow:
            await uow.web_access.remove_expired_sessions(now)
            await uow.web_access.add_session(
                digest(token), login.kind, login.subject_id, login.subject, csrf, expires
            )
            await uow.commit()
        return token, PanelSession(login, csrf, expires)

    async def resolve(self, token: str) -> PanelSession | None:
        """The live session a cookie names, or None (unknown, expired, login disabled, or
        its row no longer the login it was opened for: then the session is deleted)."""
        if not plausible_token(token):
            return None
        async with self._units() as uow:
            found = await uow.web_access.session(digest(token))
            if found is None or found.expires_at <= self._clock():
                return None
            if await bound_login(uow, found.kind, found.subject_id, found.subject) is None:
                await uow.web_access.remove_session(digest(token))
                await uow.commit()
                return None
            actor = await uow.web_access.actor_for(found.kind, found.subject_id)
        if actor is None:
            return None
        return PanelSession(
            Login(found.kind, found.subject_id, actor), found.csrf_token, found.expires_at
        )

    async def close(self, token: str) -> None:
        if not plausible_token(token):
            return
        async with self._units() as uow:
            await uow.web_access.remove_session(digest(token))
            await uow.commit()
