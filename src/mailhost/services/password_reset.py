"""Forgot password: single-use, time-limited reset links mailed to the contact on file.

`request` answers the same way whatever happens (unknown login, no contact
address, rate limit, mail not sendable), so that it cannot be used to find out
which logins exist; what happened goes to the log only. The front ends call
`submit`, which runs it in the background: an answer given after the lookup and
the mail would take longer for a login that exists. Completing a reset sets the
password, uses up the link, cancels the login's other links and ends every panel
session of that login. A link dies with its login, and one whose row has come to
name another login is refused (services/subjects.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailhost.errors import MailhostError, NotFound
from mailhost.interfaces import (
    Credential,
    LoginKind,
    Outbox,
    ResetRecord,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mailhost.model.logins import ClientInfo
from mailhost.model.names import EmailAddress
from mailhost.services import access
from mailhost.services.background import TaskSet
from mailhost.services.logins import login_key
from mailhost.services.passwords import Passwords, check_strength
from mailhost.services.sessions import digest, new_token, plausible_token
from mailhost.services.subjects import bound_login, end_other_access
from mailhost.services.throttle import RequestLimiter
from mailhost.services.usage import utc_now

log = logging.getLogger("mailhost.reset")

RESET_LIFETIME = timedelta(hours=1)
# Requests worked on at once. The limiter allows 10 per client address an hour, so
# more than this in flight is a flood: those are logged and dropped (same answer).
MAX_PENDING_REQUESTS = 200
# At shutdown, pending requests get this long to send their mail before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 10.0
_INVALID = "this reset link is not valid: it was used already, has expired, or was mistyped"


class PasswordResetService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        passwords: Passwords,
        outbox: Outbox,
        limiter: RequestLimiter,
        sender: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        lifetime: timedelta = RESET_LIFETIME,
    ) -> None:
        self._units = units
        self._passwords = passwords
        self._outbox = outbox
        self._limiter = limiter
        self._sender = sender
        self._clock = clock
        self._lifetime = lifetime
        self._pending = TaskSet("password reset request", limit=MAX_PENDING_REQUESTS)

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def submit(
        self, kind: LoginKind, login: str, link: Callable[[str], str], client: ClientInfo
    ) -> None:
        """Start `request` and return at once, whatever the login: the caller answers now."""
        if not self._pending.start(functools.partial(self.request, kind, login, link, client)):
            log.warning(
                "reset request from %s dropped: too many at once, or shutting down", client.address
            )

    async def drain(self) -> None:
        """Wait until the submitted requests are done (their mail sent or not)."""
        await self._pending.drain()

    async def close(self) -> None:
        """At shutdown: take no more requests, finish or cancel the pending ones."""
        await self._pending.close(SHUTDOWN_GRACE_SECONDS)

    async def request(
        self, kind: LoginKind, login: str, link: Callable[[str], str], client: ClientInfo
    ) -> None:
        """Mail a reset link for `login` if it exists and has a contact address; never raises."""
        key = login_key(kind, login)
        account = f"reset:{kind}:{key or login.strip().lower()[:320]}"
        # Every request counts, whatever comes of it.
        if await self._limiter.check(client.address, account) is not None:
            log.warning("%s from %s: rate limited, nothing sent", account, client.address)
            return
        credential = None
        if key is not None:
            async with self._units() as uow:
                credential = await uow.web_access.credential(kind, key)
        if credential is None or not credential.enabled or not credential.contact:
            log.info(
                "%s from %s: no such login or no contact; nothing sent", account, client.address
            )
            return
        token = new_token()
        async with self._units() as uow:
            await uow.web_access.add_reset(
                digest(token),
                kind,
                credential.subject_id,
                credential.login,
                self._clock() + self._lifetime,
            )
            await uow.commit()
        await self._mail(credential, link(token))

    async def _mail(self, credential: Credential, url: str) -> None:
        assert credential.contact is not None
        try:
            recipient = EmailAddress.parse(credential.contact)
            message = self._message(credential, recipient, url)
            await self._outbox.send(self._sender, [recipient], message)
        except MailhostError as exc:
            log.warning("reset link for %s %r not sent: %s", credential.kind, credential.login, exc)
            return
        log.info("reset link for %s %r sent to %s", credential.kind, credential.login, recipient)

    def _message(self, credential: Credential, recipient: EmailAddress, url: str) -> bytes:
        minutes = int(self._lifetime.total_seconds() // 60)
        message = EmailMessage()
        message["From"] = f"mailhost <{self._sender}>"
        message["To"] = str(recipient)
        message["Subject"] = "Reset your mailhost password"
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no auto-replies to this
        text = (
            f"Someone asked to reset the password of the {credential.kind} login "
            f"{credential.login}.\n\n"
            f"To choose a new password, open this link within {minutes} minutes:\n\n"
            f"  {url}\n\n"
            "The link works once. If you did not ask for this, ignore this message:\n"
            "your password stays as it is.\n"
        )
        # Plain ASCII goes as it is: quoted-printable would break the long link with "="
        # for anyone reading the raw message (curl pop3s://…, the demo's instructions).
        message.set_content(text, cte="7bit" if text.isascii() else None)
        return message.as_bytes()

    async def check(self, token: str) -> Credential:
        """The login a still-valid link resets; NotFound otherwise."""
        async with self._units() as uow:
            _, credential = await self._valid(uow, token)
        return credential

    async def complete(self, token: str, password: str) -> Credential:
        """Set the new password, use up the link, cancel the login's other links and end
        its sessions, in one transaction."""
        credential = await self.check(token)
        check_strength(password, identity=credential.login)
        password_hash = await self._passwords.hash(password)
        async with self._units() as uow:
            reset, credential = await self._valid(uow, token)
            if not await uow.web_access.use_reset(reset.id, self._clock()):
                raise NotFound(_INVALID)
            actor = await uow.web_access.actor_for(reset.kind, reset.subject_id)
            await uow.web_access.set_password(reset.kind, reset.subject_id, password_hash)
            ended = await end_other_access(uow, reset.kind, reset.subject_id, keep_reset=reset.id)
            customer_id = None if actor is None else access.audit_customer(actor)
            await uow.audit.record(
                f"{credential.kind}:{credential.login}",
                "password.reset",
                credential.login,
                customer_id,
                f"by reset link; {ended}",
            )
            await uow.commit()
        log.info("password of %s %r reset", credential.kind, credential.login)
        return credential

    async def _valid(self, uow: UnitOfWork, token: str) -> tuple[ResetRecord, Credential]:
        """The unused, unexpired link and the enabled login it was made for; NotFound
        otherwise (a link whose row names another login now is deleted on the way)."""
        if not plausible_token(token):
            raise NotFound(_INVALID)
        found = await uow.web_access.reset(digest(token))
        if found is None or found.used_at is not None or found.expires_at <= self._clock():
            raise NotFound(_INVALID)
        credential = await bound_login(uow, found.kind, found.subject_id, found.subject)
        if credential is None:
            await uow.web_access.remove_reset(found.id)
            await uow.commit()
            raise NotFound(_INVALID)
        if not credential.enabled:
            raise NotFound(_INVALID)
        return found, credential
