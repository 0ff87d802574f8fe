"""A submission session: AUTH PLAIN/LOGIN, then MAIL, RCPT, DATA under the SMTP account's rules.

aiosmtpd finds `auth_<MECHANISM>` methods on the handler and calls them with
the server protocol and the AUTH arguments; ours are async, so the password is
checked by the shared Authenticator (argon2 off the loop, throttled) instead of
aiosmtpd's synchronous `authenticator` callback. The protocol (listeners.py)
refuses every mail command before AUTH and, on the 587-style port, everything
but EHLO/STARTTLS/NOOP/QUIT before TLS. One `SubmissionHandler` serves one
connection.
"""

from __future__ import annotations

import binascii
import logging
import re
import ssl
import time
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aiosmtpd.smtp import AuthResult

from mailhost.errors import InvalidAddress, TemporaryFailure
from mailhost.interfaces import Authenticator
from mailhost.model.envelope import Refuse
from mailhost.model.logins import Authenticated, ClientInfo, Throttled
from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord
from mailhost.services.delivery import DeliveryService
from mailhost.services.submission_policy import Reservation, SubmissionPolicy, Submitter
from mailhost.smtp import replies
from mailhost.smtp.handler import (
    MAX_RECIPIENTS,
    BoundaryHooks,
    EnvelopeView,
    SessionView,
    new_queue_id,
    peer_ip,
    sender_syntax_ok,
)
from mailhost.smtp.headers import (
    WithProtocol,
    author_addresses,
    first_bare_line_ending,
    received_header,
)

log = logging.getLogger("mailhost.submission")

# RFC 1870 §3: the SIZE parameter of MAIL FROM is a decimal count of octets.
_SIZE_PARAMETER = re.compile(r"SIZE=([0-9]{1,20})", re.IGNORECASE)
# RFC 4954 §4: "=" is an empty initial response.
_EMPTY_RESPONSE = "="
# Logins are addresses (at most 254 octets) and passwords are bounded, so longer input
# is refused before it reaches argon2.
MAX_CREDENTIAL = 1024
# A session sending message after message reads the account, plan and transfer again
# after this long; the hourly count is still reserved atomically for every message.
SUBMITTER_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SubmissionDependencies:
    """What the submission listeners need; built by runtime.py from Settings."""

    policy: SubmissionPolicy
    authenticator: Authenticator
    delivery: DeliveryService
    hostname: str
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command.
    idle_timeout: float = 300.0


class AuthSession(SessionView, Protocol):
    """The parts of aiosmtpd's Session that record a login."""

    authenticated: bool | None
    auth_data: object


class AuthServer(Protocol):
    """The parts of aiosmtpd's SMTP protocol the AUTH mechanisms use."""

    session: AuthSession

    async def push(self, status: str) -> None: ...
    async def challenge_auth(
        self, challenge: str | bytes, encode_to_b64: bool = True, log_client_response: bool = False
    ) -> object: ...


@dataclass(slots=True)
class _Transaction:
    """One MAIL ... DATA by an authenticated user."""

    submitter: Submitter
    sender: str  # "" for the null sender
    queue_id: str = field(default_factory=new_queue_id)
    recipients: list[EmailAddress] = field(default_factory=list)


class SubmissionHandler(BoundaryHooks):
    """aiosmtpd handler for one submission connection (587- or 465-style)."""

    service = "submission"

    def __init__(self, deps: SubmissionDependencies) -> None:
        self._deps = deps
        self._login: LoginRecord | None = None
        self._transaction: _Transaction | None = None
        self._submitter: tuple[float, Submitter] | None = None

    async def handle_EHLO(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        hostname: str,
        responses: Sequence[str],
    ) -> list[str]:
        session.host_name = hostname
        self._transaction = None
        keywords = [
            "PIPELINING",  # RFC 2920
            f"SIZE {self._deps.max_message_size}",  # RFC 1870
            "8BITMIME",  # RFC 6152
            "ENHANCEDSTATUSCODES",  # RFC 2034
        ]
        if session.ssl is None:
            if self._deps.ssl_context is not None:
                keywords.append("STARTTLS")  # RFC 3207
        elif self._login is None:
            # RFC 4954 §4 and RFC 8314 §3: passwords only inside TLS; plain mechanisms
            # only, never NTLM/SPA or CRAM (which would need the password in clear here).
            keywords.append("AUTH PLAIN LOGIN")
        return replies.ehlo_lines(self._deps.hostname, keywords)

    async def handle_HELO(
        self, server: object, session: SessionView, envelope: EnvelopeView, hostname: str
    ) -> str:
        session.host_name = hostname
        self._transaction = None
        return f"250 {self._deps.hostname}"

    async def handle_NOOP(
        self, server: object, session: SessionView, envelope: EnvelopeView, arg: str | None
    ) -> str:
        return replies.OK.render()

    async def handle_RSET(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        self._transaction = None
        return replies.OK.render()

    async def auth_PLAIN(self, server: AuthServer, args: list[str]) -> AuthResult:
        """RFC 4616: [authzid] NUL authcid NUL passwd, as the initial response or after 334."""
        response = await _response(server, args[1] if len(args) > 1 else None)
        if response is None:
            return AuthResult(success=False, handled=True)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await server.push(replies.AUTH_SYNTAX.render())
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:
            # Acting as another user (RFC 4616 §2 authzid) is never allowed here.
            return _refused()
        return await self._authenticate(server, login, password)

    async def auth_LOGIN(self, server: AuthServer, args: list[str]) -> AuthResult:
        """The LOGIN mechanism: user name, then password, each base64 after a 334 prompt."""
        login = await _response(server, args[1] if len(args) > 1 else None, b"Username:")
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await _response(server, None, b"Password:")
        if password is None:
            return AuthResult(success=False, handled=True)
        return await self._authenticate(server, login, password)

    async def _authenticate(self, server: AuthServer, login: bytes, password: bytes) -> AuthResult:
        if len(login) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
            return _refused()
        try:
            login_text, password_text = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:  # RFC 4616 §2: UTF-8
            await server.push(replies.AUTH_SYNTAX.render())
            return AuthResult(success=False, handled=True)
        client = ClientInfo(peer_ip(server.session) or "unknown", "submission")
        outcome = await self._deps.authenticator.authenticate(login_text, password_text, client)
        if isinstance(outcome, Authenticated):
            self._login = outcome.login
            # Recorded and answered here: aiosmtpd's own success path sets the deprecated
            # Session.login_data, which logs a warning for every login.
            server.session.authenticated = True
            server.session.auth_data = outcome.login
            await server.push(replies.AUTH_SUCCEEDED.render())
            return AuthResult(success=False, handled=True)
        if isinstance(outcome, Throttled):
            seconds = str(max(1, round(outcome.retry_after)))
            message = replies.AUTH_TEMPORARY.render(seconds=seconds)
            return AuthResult(success=False, handled=False, message=message)
        return _refused()

    async def handle_MAIL(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        address: str,
        options: list[str],
    ) -> str:
        self._transaction = None
        login = self._login
        if login is None:  # the protocol answers 530 first; never relay unauthenticated
            return replies.AUTH_REQUIRED.render()
        if not sender_syntax_ok(address):
            return replies.BAD_SENDER_SYNTAX.render()
        try:
            who = await self._current_submitter(login)
            verdict = await self._deps.policy.check_sender(who, address, _declared_size(options))
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("MAIL", error)
        if verdict is not None:
            log.info("submission %s: sender %r refused: %s", who.address, address, verdict.reason)
            return replies.render(verdict)
        self._transaction = _Transaction(who, "" if address == "<>" else address)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return replies.SENDER_OK.render()

    async def _current_submitter(self, login: LoginRecord) -> Submitter:
        now = time.monotonic()
        if self._submitter is None or now - self._submitter[0] > SUBMITTER_SECONDS:
            self._submitter = (now, await self._deps.policy.submitter(login))
        return self._submitter[1]

    async def handle_RCPT(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        address: str,
        options: list[str],
    ) -> str:
        transaction = self._transaction
        if transaction is None:  # not reached: aiosmtpd answers RCPT before MAIL itself
            return replies.translate("503 Error: need MAIL command", "RCPT")
        if len(transaction.recipients) >= MAX_RECIPIENTS:
            return replies.TOO_MANY_RECIPIENTS.render()
        try:
            recipient = EmailAddress.parse(address)
        except InvalidAddress:
            return replies.BAD_RECIPIENT_SYNTAX.render()
        who = transaction.submitter
        try:
            verdict = await self._deps.policy.check_recipient(
                who, recipient, len(transaction.recipients)
            )
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("RCPT", error)
        if isinstance(verdict, Refuse):
            log.info("submission %s: %s refused: %s", who.address, recipient, verdict.reason)
            return replies.render(verdict)
        if recipient not in transaction.recipients:  # named twice, sent once
            transaction.recipients.append(recipient)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK.render()

    async def handle_DATA(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        transaction, self._transaction = self._transaction, None
        if transaction is None or not transaction.recipients:
            return replies.NO_VALID_RECIPIENTS.render()
        try:
            return await self._accept(session, transaction, envelope.original_content or b"")
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("DATA", error)

    async def _accept(self, session: SessionView, transaction: _Transaction, content: bytes) -> str:
        who = transaction.submitter
        if first_bare_line_ending(content) is not None:
            # Nothing with bare CR/LF is relayed on (SMTP smuggling, RFC 5321 §2.3.8).
            return replies.BARE_LINE_ENDING.render()
        if len(content) > self._deps.max_message_size:
            return replies.MESSAGE_TOO_BIG.render()
        policy = self._deps.policy
        verdict = policy.check_message(who, len(content), author_addresses(content))
        if verdict is not None:
            log.info("submission %s: message refused: %s", who.address, verdict.reason)
            return replies.render(verdict)
        reservation = await policy.reserve(who)
        if isinstance(reservation, Refuse):
            return replies.render(reservation)
        message = self._trace(session, transaction) + content
        try:
            queue_id = await self._submit(transaction, message, reservation)
        except TemporaryFailure as failure:
            log.warning("submission %s: deferred: %s", who.address, failure.message)
            return replies.SUBMISSION_DEFERRED.render(detail=failure.message)
        log.info(
            "submission %s queued %s: %d bytes for %d recipients",
            who.address,
            queue_id,
            len(message),
            len(transaction.recipients),
        )
        return replies.QUEUED.render(queue_id=queue_id)

    async def _submit(
        self, transaction: _Transaction, message: bytes, reservation: Reservation
    ) -> str:
        """Durable when it returns (DeliveryService.submit); the reservation is taken back
        if the message was not accepted."""
        try:
            return await self._deps.delivery.submit(
                transaction.sender,
                transaction.recipients,
                message,
                transaction.submitter.login.customer_id,
                transaction.submitter.login.domain_id,
            )
        except BaseException:
            await self._deps.policy.release(reservation)
            raise

    def _trace(self, session: SessionView, transaction: _Transaction) -> bytes:
        single = transaction.recipients[0] if len(transaction.recipients) == 1 else None
        return received_header(
            helo=session.host_name,
            peer_ip=peer_ip(session),
            hostname=self._deps.hostname,
            # RFC 3848: ESMTPSA is ESMTP with both TLS and AUTH, which every submission has.
            protocol=WithProtocol.ESMTPSA if session.ssl is not None else WithProtocol.ESMTPA,
            queue_id=transaction.queue_id,
            recipient=single,
            now=datetime.now(UTC),
        )


async def _response(server: AuthServer, initial: str | None, prompt: bytes = b"") -> bytes | None:
    """The client's decoded SASL response: the initial one, or the answer to a 334 prompt.

    None when aiosmtpd or we already answered (the client sent `*`, or bad base64).
    """
    if initial is None:
        answer = await server.challenge_auth(prompt)
        return answer if isinstance(answer, bytes) else None  # else aiosmtpd's MISSING
    if initial == _EMPTY_RESPONSE:
        return b""
    try:
        return b64decode(initial, validate=True)
    except (binascii.Error, ValueError):
        await server.push(replies.AUTH_SYNTAX.render())
        return None


def _refused() -> AuthResult:
    return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID.render())


def _declared_size(options: Sequence[str]) -> int | None:
    for option in options:
        match = _SIZE_PARAMETER.fullmatch(option)
        if match:
            return int(match.group(1))
    return None
