"""Login history: each login's recent attempts, the new-address notice, and forgetting.

A user's success from an address it never logged in from, after failed attempts
on its account, may be someone who guessed the password: the user's recovery
address is told (unless the user turned that off). The attempt is marked in the
database when it is recorded (storage/database/login_attempts.py) and claimed
before its notice is sent, so one notice goes out however many nodes watch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailhost.errors import MailhostError
from mailhost.interfaces import LoginAttempts, Outbox
from mailhost.model.actors import UserActor
from mailhost.model.logins import AttemptRecord, NoticeDue
from mailhost.model.names import EmailAddress
from mailhost.services.sessions import Login
from mailhost.services.usage import utc_now

log = logging.getLogger("mailhost.auth")

HISTORY_LINES = 50  # shown on a login's page
KEEP = timedelta(days=30)  # attempts naming a login are kept this long ...
KEEP_PER_ACCOUNT = 200  # ... and at most this many per account beyond the penalty window
NOTICE_POLL_SECONDS = 10.0  # how soon another node's notices are seen
PRUNE_EVERY_SECONDS = 600.0
_NOTICES_PER_ROUND = 100
SERVICE_NAMES = {"pop3": "POP3", "submission": "SMTP (sending mail)", "web": "the control panel"}


class LoginHistoryService:
    def __init__(
        self,
        attempts: LoginAttempts,
        outbox: Outbox,
        sender: str,
        *,
        penalty_window: timedelta,
        keep_per_account: int = KEEP_PER_ACCOUNT,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._attempts = attempts
        self._outbox = outbox
        self._sender = sender
        self._penalty_window = penalty_window
        self._keep_per_account = keep_per_account
        self._clock = clock

    async def recent(self, login: Login, limit: int = HISTORY_LINES) -> Sequence[AttemptRecord]:
        """The logged-in login's own attempts, newest first: a session names only its own."""
        return await self._attempts.history(login.kind, login.subject_id, limit)

    async def notices_wanted(self, actor: UserActor) -> bool:
        return await self._attempts.notices_wanted(actor.user_id)

    async def want_notices(self, actor: UserActor, wanted: bool) -> None:
        """A user's own choice, made on their own page: no one else's to make."""
        await self._attempts.want_notices(actor.user_id, wanted)
        log.info("user %s: new-address login notices %s", actor.address, "on" if wanted else "off")

    async def send_notices(self) -> int:
        """Send the notices due (each claimed first); returns how many went out."""
        sent = 0
        for notice in await self._attempts.due_notices(_NOTICES_PER_ROUND):
            if not await self._attempts.claim_notice(notice.attempt_id):
                continue  # another node has it
            if not notice.wanted or not notice.recovery:
                log.info("login of %s from %s: no notice wanted", notice.user, notice.client)
                continue
            sent += await self._send(notice, notice.recovery)
        return sent

    async def prune(self) -> int:
        now = self._clock()
        anonymous_before = now - self._penalty_window
        return await self._attempts.prune(now - KEEP, anonymous_before, self._keep_per_account)

    async def watch(self, interval: float = NOTICE_POLL_SECONDS) -> None:
        """Send notices as they fall due and forget old attempts, forever."""
        pruned_at = -math.inf
        while True:
            try:
                await self.send_notices()
                if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                    pruned_at = time.monotonic()
                    gone = await self.prune()
                    if gone:
                        log.info("forgot %d old login attempts", gone)
            except Exception:  # the next round tries again; never kill the loop
                log.exception("login notices or pruning failed")
            await self._attempts.wait_for_notices(interval)

    async def _send(self, notice: NoticeDue, recovery: str) -> int:
        try:
            recipient = EmailAddress.parse(recovery)
            await self._outbox.send(self._sender, [recipient], self._message(notice, recipient))
        except (MailhostError, OSError) as exc:
            log.warning("new-address login notice for %s not sent: %s", notice.user, exc)
            return 0
        log.info("new-address login notice for %s sent to %s", notice.user, recipient)
        return 1

    def _message(self, notice: NoticeDue, recipient: EmailAddress) -> bytes:
        service = SERVICE_NAMES.get(notice.service, notice.service)
        via = f" with the app password {notice.app_password!r}" if notice.app_password else ""
        message = EmailMessage()
        message["From"] = f"mailhost <{self._sender}>"
        message["To"] = str(recipient)
        message["Subject"] = f"New login to {notice.user} from {notice.client}"
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no auto-replies to this
        message.set_content(
            f"Someone logged in to {notice.user} through {service}{via}\n"
            f"from the address {notice.client}, at {notice.at:%Y-%m-%d %H:%M} UTC.\n\n"
            "This address had not been used for this login before, and wrong passwords\n"
            "were tried on it since its previous login.\n\n"
            "If this was you, nothing needs doing. If not, change your password now in\n"
            "the control panel (or ask your domain manager to), and look at your recent\n"
            "logins there. These messages can be turned off on the same page.\n"
        )
        return message.as_bytes()
