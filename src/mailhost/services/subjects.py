"""Whom a credential (panel session, API token, reset link) belongs to, checked on every use.

A credential's row names its login by a foreign key that deletes it with the
login, and ids are never handed out twice. As a second line, each use also
compares the login's current name with the name stored when the credential was
made: a credential whose row has come to point at another login (a restored
backup, a bug, a hand-edited database) is treated as unknown and deleted.
"""

from __future__ import annotations

import logging

from mailhost.interfaces import Credential, LoginKind, UnitOfWork
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor

log = logging.getLogger("mailhost.auth")


def login_name(actor: Actor) -> str:
    """The login's canonical name, as credential rows store it in `subject`."""
    if isinstance(actor, ProviderActor):
        return actor.name
    if isinstance(actor, CustomerActor):
        return actor.login
    if isinstance(actor, DomainActor):
        return actor.domain.ascii
    return str(actor.address)


async def bound_login(
    uow: UnitOfWork, kind: LoginKind, subject_id: int, subject: str
) -> Credential | None:
    """The login a credential was made for (enabled or not); None if the row it names is
    gone or is another login now, in which case the caller deletes the credential."""
    found = await uow.web_access.credential_by_id(kind, subject_id)
    if found is None or found.kind != kind or found.login != subject:
        now = "gone" if found is None else f"now {found.kind} {found.login!r}"
        log.warning("credential of %s %r refused: its %s row is %s", kind, subject, kind, now)
        return None
    return found


async def end_other_access(
    uow: UnitOfWork,
    kind: LoginKind,
    subject_id: int,
    *,
    keep_session: str | None = None,
    keep_reset: int | None = None,
) -> str:
    """After a password change, in its transaction: the login's panel sessions end (but
    `keep_session`, a token hash) and its reset links are cancelled (but `keep_reset`).

    Returns a note for the audit entry. API tokens stay: they are revoked on their own.
    """
    sessions = await uow.web_access.remove_sessions(kind, subject_id, keep=keep_session)
    resets = await uow.web_access.remove_resets(kind, subject_id, keep=keep_reset)
    return f"sessions ended={sessions} reset links cancelled={resets}"
