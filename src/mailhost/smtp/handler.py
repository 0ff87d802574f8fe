"""The MX's mail transaction: aiosmtpd hooks for EHLO, MAIL, RCPT and DATA, calling the services.

aiosmtpd parses the command line and calls `handle_<VERB>(server, session,
envelope, ...)`; the returned string is the reply. When a hook answers, aiosmtpd
leaves the envelope alone, so MAIL and RCPT record what they accept themselves.
One `MxHandler` serves one connection and holds the accepted mailboxes of the
current transaction, which a new MAIL command starts afresh.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aiosmtpd.smtp import TLSSetupException

from mailhost.errors import InvalidAddress
from mailhost.model.envelope import Refuse
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRecord
from mailhost.services.delivery import DeliveryService
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.smtp import replies
from mailhost.smtp.headers import WithProtocol, first_bare_line_ending, received_header

log = logging.getLogger("mailhost.smtp")

# RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients; we take exactly 100.
MAX_RECIPIENTS = 100
# RFC 5321 §4.5.3.1.3: a path is at most 256 octets, the angle brackets included.
MAX_PATH = 254
NULL_SENDER = "<>"  # how aiosmtpd hands over `MAIL FROM:<>` (RFC 5321 §4.5.5)

# Remote senders' local parts are not ours to judge strictly (RFC 5321 §4.1.2 allows
# quoted strings); the domain must look like a host name or an address literal.
_SENDER_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_SENDER_DOMAIN = re.compile(rf"{_SENDER_LABEL}(?:\.{_SENDER_LABEL})*\.?|\[[\x21-\x5a\x5e-\x7e]+\]")
_LOCAL_UNQUOTED = re.compile(r"[\x21-\x7e]+")
_LOCAL_QUOTED = re.compile(r'"(?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')


@dataclass(frozen=True, slots=True)
class MxDependencies:
    """What the MX listener needs; built by runtime.py from Settings."""

    policy: InboundPolicy
    delivery: DeliveryService
    hostname: str
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command.
    idle_timeout: float = 300.0


class SessionView(Protocol):
    """The parts of aiosmtpd's Session the hooks use."""

    peer: object
    host_name: str | None
    extended_smtp: bool
    ssl: object | None


class EnvelopeView(Protocol):
    """The parts of aiosmtpd's Envelope the hooks use."""

    mail_from: str | None
    mail_options: list[str]
    rcpt_tos: list[str]
    rcpt_options: list[str]
    original_content: bytes | None


@dataclass(slots=True)
class _Transaction:
    """One MAIL ... DATA: its queue id and the recipients accepted so far."""

    queue_id: str = field(default_factory=lambda: new_queue_id())
    recipients: list[EmailAddress] = field(default_factory=list)
    mailboxes: list[MailboxRecord] = field(default_factory=list)


def new_queue_id() -> str:
    """A log and reply reference, not a secret: no syscall per message for it."""
    return f"{random.getrandbits(48):012X}"


def sender_syntax_ok(path: str) -> bool:
    """A loose check of the reverse-path aiosmtpd parsed from `MAIL FROM:` (RFC 5321 §4.1.2)."""
    if path == NULL_SENDER:
        return True
    local, at, domain = path.rpartition("@")
    if not at or not local or len(path) > MAX_PATH:
        return False
    local_ok = _LOCAL_QUOTED.fullmatch(local) or (
        _LOCAL_UNQUOTED.fullmatch(local) and '"' not in local
    )
    return bool(local_ok and _SENDER_DOMAIN.fullmatch(domain))


def peer_ip(session: SessionView) -> str | None:
    """The client's IP address from aiosmtpd's `peer` (a socket address tuple)."""
    peer = session.peer
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return None


def protocol_of(session: SessionView) -> WithProtocol:
    if not session.extended_smtp:
        return WithProtocol.SMTP
    return WithProtocol.ESMTPS if session.ssl is not None else WithProtocol.ESMTP


class BoundaryHooks:
    """What MX and submission handlers share at the connection boundary."""

    service = "smtp"  # names the listener in logs

    def temporary_failure(self, stage: str, error: BaseException) -> str:
        """Log an unexpected error with a reference and answer 451 4.3.0 with it."""
        ref = secrets.token_hex(4)
        log.error("%s %s failed (ref %s)", self.service, stage, ref, exc_info=error)
        return replies.TEMPORARY_FAILURE.render(ref=ref)

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd calls this for an exception no hook caught."""
        if isinstance(error, TLSSetupException):
            # A failed handshake is the client's business; aiosmtpd closes the connection.
            log.info("%s STARTTLS handshake failed: %r", self.service, error.__cause__ or error)
            return replies.TEMPORARY_FAILURE.render(ref="tls")  # not sent
        return self.temporary_failure("session", error)

    async def handle_QUIT(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        return replies.BYE.render()

    async def handle_VRFY(
        self, server: object, session: SessionView, envelope: EnvelopeView, address: str
    ) -> str:
        # RFC 5321 §3.5.3 and §7.3: 252 without saying whether the user exists.
        return replies.CANNOT_VRFY.render()


class MxHandler(BoundaryHooks):
    """aiosmtpd handler for one MX connection."""

    service = "MX"

    def __init__(self, deps: MxDependencies) -> None:
        self._deps = deps
        self._transaction = _Transaction()

    async def handle_HELO(
        self, server: object, session: SessionView, envelope: EnvelopeView, hostname: str
    ) -> str:
        session.host_name = hostname
        self._transaction = _Transaction()
        return f"250 {self._deps.hostname}"  # RFC 2034 §4: no enhanced code for HELO

    async def handle_EHLO(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        hostname: str,
        responses: Sequence[str],
    ) -> list[str]:
        # With this five-argument hook, aiosmtpd leaves recording the name to us.
        session.host_name = hostname
        self._transaction = _Transaction()
        keywords = [
            "PIPELINING",  # RFC 2920; aiosmtpd reads commands from one buffer
            f"SIZE {self._deps.max_message_size}",  # RFC 1870
            "8BITMIME",  # RFC 6152; content is kept as bytes
            "ENHANCEDSTATUSCODES",  # RFC 2034
        ]
        # RFC 3207 §4.2: not after TLS is up. AUTH belongs to submission (RFC 6409 §4.3),
        # not to the MX, so aiosmtpd's AUTH line is not passed on.
        if self._deps.ssl_context is not None and session.ssl is None:
            keywords.append("STARTTLS")
        return replies.ehlo_lines(self._deps.hostname, keywords)

    async def handle_NOOP(
        self, server: object, session: SessionView, envelope: EnvelopeView, arg: str | None
    ) -> str:
        return replies.OK.render()

    async def handle_RSET(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        self._transaction = _Transaction()
        return replies.OK.render()

    async def handle_MAIL(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        address: str,
        options: list[str],
    ) -> str:
        if not sender_syntax_ok(address):
            return replies.BAD_SENDER_SYNTAX.render()
        self._transaction = _Transaction()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return replies.SENDER_OK.render()

    async def handle_RCPT(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        address: str,
        options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return replies.TOO_MANY_RECIPIENTS.render()
        try:
            recipient = EmailAddress.parse(address)
        except InvalidAddress:
            return replies.BAD_RECIPIENT_SYNTAX.render()
        try:
            verdict = await self._deps.policy.check_recipient(recipient)
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("RCPT", error)
        if isinstance(verdict, Refuse):
            log.info("MX %s refused %s: %s", _client(session), recipient, verdict.reason.value)
            return replies.render(verdict)
        self._transaction.recipients.append(recipient)
        self._transaction.mailboxes.append(verdict.mailbox)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK.render()

    async def handle_DATA(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        # aiosmtpd starts a new envelope after DATA whatever we answer; so do we.
        transaction, self._transaction = self._transaction, _Transaction()
        try:
            return await self._accept(session, transaction, envelope.original_content or b"")
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("DATA", error)

    async def _accept(self, session: SessionView, transaction: _Transaction, content: bytes) -> str:
        if not transaction.mailboxes:
            return replies.NO_VALID_RECIPIENTS.render()
        bare = first_bare_line_ending(content)
        if bare is not None:
            log.warning("MX %s sent a bare CR or LF at offset %d", _client(session), bare)
            return replies.BARE_LINE_ENDING.render()
        # aiosmtpd's data_size_limit already answered an oversized DATA; this is the
        # same limit, kept so the rule does not depend on aiosmtpd's counting.
        if len(content) > self._deps.max_message_size:
            return replies.MESSAGE_TOO_BIG.render()
        message = self._trace(session, transaction) + content
        verdict = await self._deps.policy.check_message(transaction.mailboxes, len(message))
        if isinstance(verdict, Refuse):
            log.info("MX %s message refused: %s", _client(session), verdict.reason.value)
            return replies.render(verdict)
        await self._deps.delivery.deliver_local(transaction.mailboxes, message)
        log.info(
            "MX %s queued %s: %d bytes for %d recipients",
            _client(session),
            transaction.queue_id,
            len(message),
            len(transaction.recipients),
        )
        return replies.QUEUED.render(queue_id=transaction.queue_id)

    def _trace(self, session: SessionView, transaction: _Transaction) -> bytes:
        single = transaction.recipients[0] if len(transaction.recipients) == 1 else None
        return received_header(
            helo=session.host_name,
            peer_ip=peer_ip(session),
            hostname=self._deps.hostname,
            protocol=protocol_of(session),
            queue_id=transaction.queue_id,
            recipient=single,
            now=datetime.now(UTC),
        )


def _client(session: SessionView) -> str:
    return peer_ip(session) or "unknown client"
