"""API tokens: created and revoked in the panel by customers, domain managers and provider
admins; each acts with exactly the powers of the login that made it, and only as long
as that login exists (services/subjects.py).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mailhost.errors import InvalidInput, LimitReached, NotFound, NotPermitted
from mailhost.interfaces import ApiTokenRecord, LoginKind, UnitOfWork, UnitOfWorkFactory
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
from mailhost.services import access
from mailhost.services.sessions import digest, new_token, plausible_token
from mailhost.services.subjects import bound_login, login_name
from mailhost.services.usage import utc_now

TOKEN_PREFIX = "mh_"  # noqa: S105 - a visible prefix, not a secret
MAX_ACTIVE_TOKENS = 50
TOUCH_INTERVAL = timedelta(minutes=1)


def parse_token_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 100:
        raise InvalidInput("a token name must be 1 to 100 characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise InvalidInput("a token name must not contain control characters")
    return name


class ApiTokenService:
    def __init__(self, units: UnitOfWorkFactory, clock: Callable[[], datetime] = utc_now) -> None:
        self._units = units
        self._clock = clock

    async def create(self, actor: Actor, name: str) -> tuple[ApiTokenRecord, str]:
        """A new token for `actor`'s own login; the secret is returned once and never stored."""
        name = parse_token_name(name)
        secret = new_token(TOKEN_PREFIX)
        async with self._units() as uow:
            kind, subject_id = await _subject(uow, actor)
            active = [t for t in await _owned(uow, actor, kind, subject_id) if not t.revoked_at]
            if len(active) >= MAX_ACTIVE_TOKENS:
                raise LimitReached(
                    f"a login may hold {MAX_ACTIVE_TOKENS} active API tokens; revoke one first"
                )
            record = await uow.web_access.add_api_token(
                digest(secret), name, kind, subject_id, login_name(actor), self._clock()
            )
            await uow.audit.record(
                str(actor), "api_token.add", name, access.audit_customer(actor), f"id={record.id}"
            )
            await uow.commit()
        return record, secret

    async def tokens(self, actor: Actor) -> Sequence[ApiTokenRecord]:
        async with self._units() as uow:
            kind, subject_id = await _subject(uow, actor)
            return await _owned(uow, actor, kind, subject_id)

    async def revoke(self, actor: Actor, token_id: int) -> None:
        async with self._units() as uow:
            kind, subject_id = await _subject(uow, actor)
            owned = {t.id: t for t in await _owned(uow, actor, kind, subject_id)}
            token = owned.get(token_id)
            if token is None:
                raise NotFound(f"API token {token_id} does not exist")
            await uow.web_access.revoke_api_token(token.id, self._clock())
            await uow.audit.record(
                str(actor), "api_token.revoke", token.name, access.audit_customer(actor)
            )
            await uow.commit()

    async def authenticate(self, secret: str) -> Actor | None:
        """The actor a bearer token acts as; None if unknown, revoked, its login disabled,
        or its row no longer the login it was made for (then the token is deleted)."""
        if not secret.startswith(TOKEN_PREFIX) or not plausible_token(secret):
            return None
        async with self._units() as uow:
            token = await uow.web_access.api_token(digest(secret))
            if token is None or token.revoked_at is not None:
                return None
            if await bound_login(uow, token.kind, token.subject_id, token.subject) is None:
                await uow.web_access.remove_api_token(token.id)
                await uow.commit()
                return None
            actor = await uow.web_access.actor_for(token.kind, token.subject_id)
            if actor is None:
                return None
            now = self._clock()
            # "Last used" to the minute: not a database write on every API call.
            if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
                await uow.web_access.touch_api_token(token.id, now)
                await uow.commit()
        return actor


async def _owned(
    uow: UnitOfWork, actor: Actor, kind: LoginKind, subject_id: int
) -> Sequence[ApiTokenRecord]:
    """The login's tokens: those its row's key names and that were made for its name."""
    name = login_name(actor)
    return [t for t in await uow.web_access.api_tokens(kind, subject_id) if t.subject == name]


async def _subject(uow: UnitOfWork, actor: Actor) -> tuple[LoginKind, int]:
    if isinstance(actor, CustomerActor):
        return "customer", actor.customer_id
    if isinstance(actor, DomainActor):
        return "domain", actor.domain_id
    if isinstance(actor, ProviderActor):
        admin = await uow.web_access.credential("provider", actor.name)
        if admin is not None:
            return "provider", admin.subject_id
        raise NotPermitted("only provider admin accounts can hold API tokens")
    raise NotPermitted("domain users cannot hold API tokens; the domain manager can")
