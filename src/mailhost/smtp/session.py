"""One SMTP transaction for the MX and for submission: aiosmtpd hooks calling a PolicyEngine.

aiosmtpd parses the command line and calls `handle_<VERB>(server, session,
envelope, ...)`; the returned string is the reply. One `SessionHandler` serves
one connection. The two listeners differ only in their policy (who may
receive, what a user may send: services/policy.py) and in AUTH, which only
submission has. The transaction flows one way: MAIL opens an `Envelope`, each
RCPT adds the policy's verdict to it, and at DATA the policy looks at the
message once and `DeliveryService.accept` stores what the verdicts say. The
envelope's id is the one in the trace header, the 250 reply and the logs.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiosmtpd.smtp import AuthResult, TLSSetupException

from mailhost.errors import InvalidAddress, InvalidDomainName, TemporaryFailure
from mailhost.interfaces import Authenticator
from mailhost.logs import event
from mailhost.model.envelope import Client, Envelope, Refuse
from mailhost.model.names import DomainName
from mailhost.model.records import LoginRecord
from mailhost.model.roles import forward_path
from mailhost.services.delivery import DeliveryService
from mailhost.services.policy import PolicyEngine
from mailhost.smtp import replies
from mailhost.smtp.auth import AuthServer, Sasl
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
# RFC 6531 §3.3: local parts may be UTF-8 as well (UTF8-non-ascii); a surrogate is the
# trace of bytes that were not UTF-8 (aiosmtpd decodes with surrogateescape).
_UTF8 = "\u0080-\ud7ff\ue000-\U0010ffff"
_LOCAL_UNQUOTED = re.compile(rf"[\x21-\x7e{_UTF8}]+")
_LOCAL_QUOTED = re.compile(rf'"(?:[\x20-\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*"')
# RFC 1870 §3: the SIZE parameter of MAIL FROM is a decimal count of octets.
_SIZE_PARAMETER = re.compile(r"SIZE=([0-9]{1,20})", re.IGNORECASE)
_CONNECTIONS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SessionDependencies:
    """What one SMTP listener needs; built by runtime.py from Settings.

    `authenticator` is None on the MX: AUTH belongs to submission (RFC 6409 §4.3).
    """

    service: str  # names the listener in logs: "MX" or "submission"
    policy: PolicyEngine
    delivery: DeliveryService
    hostname: str
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    authenticator: Authenticator | None = None
    # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command.
    idle_timeout: float = 300.0


class SessionView(Protocol):
    """The parts of aiosmtpd's Session the hooks use."""

    host_name: str | None

    @property
    def peer(self) -> object: ...
    @property
    def extended_smtp(self) -> bool: ...
    @property
    def ssl(self) -> object | None: ...


class EnvelopeView(Protocol):
    """The parts of aiosmtpd's Envelope the hooks use."""

    mail_from: str | None
    mail_options: list[str]
    rcpt_tos: list[str]
    rcpt_options: list[str]
    original_content: bytes | None


def sender_syntax_ok(path: str) -> bool:
    """A loose check of the reverse-path aiosmtpd parsed from `MAIL FROM:` (RFC 5321 §4.1.2),
    UTF-8 included (RFC 6531 §3.3: a U-label domain, a UTF-8 local part)."""
    if path == NULL_SENDER:
        return True
    local, at, domain = path.rpartition("@")
    if not at or not local or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return False
    local_ok = _LOCAL_QUOTED.fullmatch(local) or (
        _LOCAL_UNQUOTED.fullmatch(local) and '"' not in local
    )
    return bool(local_ok and _sender_domain_ok(domain))


def _sender_domain_ok(domain: str) -> bool:
    if domain.isascii():
        return _SENDER_DOMAIN.fullmatch(domain) is not None
    try:
        DomainName.parse(domain)  # U-labels: IDNA decides
    except InvalidDomainName:
        return False
    return True


def peer_ip(peer: object) -> str | None:
    """The client's IP address from aiosmtpd's `Session.peer` (a socket address tuple)."""
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return None


def protocol_of(session: SessionView, authenticated: bool, smtputf8: bool = False) -> WithProtocol:
    """RFC 3848's `with` keyword; ESMTPSA is ESMTP with both TLS and AUTH. A transaction
    with SMTPUTF8 is RFC 6531's UTF8SMTP, with the same S and A (RFC 6531 §4.3)."""
    if smtputf8:  # only after EHLO: HELO sessions have no MAIL parameters
        if authenticated:
            return WithProtocol.UTF8SMTPSA if session.ssl is not None else WithProtocol.UTF8SMTPA
        return WithProtocol.UTF8SMTPS if session.ssl is not None else WithProtocol.UTF8SMTP
    if authenticated:
        return WithProtocol.ESMTPSA if session.ssl is not None else WithProtocol.ESMTPA
    if not session.extended_smtp:
        return WithProtocol.SMTP
    return WithProtocol.ESMTPS if session.ssl is not None else WithProtocol.ESMTP


class SessionHandler:
    """aiosmtpd handler for one MX or submission connection."""

    def __init__(self, deps: SessionDependencies) -> None:
        self._deps = deps
        self._sasl: Sasl | None = None
        self._connection = next(_CONNECTIONS)
        self._transaction: tuple[Client, Envelope] | None = None

    # Connection boundary: nothing unexpected escapes as anything but a 451 with a ref.

    def temporary_failure(self, stage: str, error: BaseException) -> str:
        """Log an unexpected error with a reference and answer 451 4.3.0 with it."""
        ref = secrets.token_hex(4)
        log.error("%s %s failed (ref %s)", self._deps.service, stage, ref, exc_info=error)
        return replies.TEMPORARY_FAILURE.render(ref=ref)

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd calls this for an exception no hook caught."""
        if isinstance(error, TLSSetupException):
            # A failed handshake is the client's business; aiosmtpd closes the connection.
            log.info(
                "%s STARTTLS handshake failed: %r", self._deps.service, error.__cause__ or error
            )
            return replies.TEMPORARY_FAILURE.render(ref="tls")  # not sent
        return self.temporary_failure("session", error)

    # Greeting and housekeeping: each starts the transaction afresh (RFC 5321 §4.1.4).

    async def handle_HELO(
        self, server: object, session: SessionView, envelope: EnvelopeView, hostname: str
    ) -> str:
        session.host_name = hostname
        self._transaction = None
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
        self._transaction = None
        keywords = [
            "PIPELINING",  # RFC 2920; aiosmtpd reads commands from one buffer
            f"SIZE {self._deps.max_message_size}",  # RFC 1870
            "8BITMIME",  # RFC 6152; content is kept as bytes
            "ENHANCEDSTATUSCODES",  # RFC 2034
            "SMTPUTF8",  # RFC 6531; UTF-8 addresses and headers, kept as they came
        ]
        if session.ssl is None:
            if self._deps.ssl_context is not None:
                keywords.append("STARTTLS")  # RFC 3207 §4.2: not once TLS is up
        elif self._deps.authenticator is not None and self._login() is None:
            # RFC 4954 §4 and RFC 8314 §3: passwords only inside TLS; plain mechanisms
            # only, never NTLM/SPA or CRAM (which would need the password in clear here).
            keywords.append("AUTH PLAIN LOGIN")
        return replies.ehlo_lines(self._deps.hostname, keywords)

    async def handle_NOOP(
        self, server: object, session: SessionView, envelope: EnvelopeView, arg: str | None
    ) -> str:
        return replies.OK.render()

    async def handle_RSET(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        self._transaction = None
        return replies.OK.render()

    async def handle_QUIT(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        return replies.BYE.render()

    async def handle_VRFY(
        self, server: object, session: SessionView, envelope: EnvelopeView, address: str
    ) -> str:
        # RFC 5321 §3.5.3 and §7.3: 252 without saying whether the user exists.
        return replies.CANNOT_VRFY.render()

    # AUTH (submission only; the MX protocol answers AUTH itself).

    async def auth_PLAIN(self, server: AuthServer, args: list[str]) -> AuthResult:
        return await self._mechanisms(server).plain(server, args)

    async def auth_LOGIN(self, server: AuthServer, args: list[str]) -> AuthResult:
        return await self._mechanisms(server).login_mechanism(server, args)

    def _mechanisms(self, server: AuthServer) -> Sasl:
        if self._sasl is None:
            if self._deps.authenticator is None:
                raise RuntimeError(f"{self._deps.service} offers no AUTH")
            ip = peer_ip(server.session.peer) or "unknown"
            self._sasl = Sasl(self._deps.authenticator, ip)
        return self._sasl

    def _login(self) -> LoginRecord | None:
        return None if self._sasl is None else self._sasl.login

    # The transaction.

    async def handle_MAIL(
        self,
        server: object,
        session: SessionView,
        envelope: EnvelopeView,
        address: str,
        options: list[str],
    ) -> str:
        self._transaction = None
        client = self._client(session)
        if self._deps.authenticator is not None and client.login is None:
            # The protocol answers 530 first; never relay unauthenticated.
            return replies.AUTH_REQUIRED.render()
        smtputf8 = "SMTPUTF8" in options  # aiosmtpd upper-cased them and checked its form
        if not smtputf8 and not address.isascii():
            return self._refused(client, "MAIL", replies.NEEDS_SMTPUTF8.render(), address)
        if not sender_syntax_ok(address):
            return self._refused(client, "MAIL", replies.BAD_SENDER_SYNTAX.render(), address)
        sender = "" if address == NULL_SENDER else address
        try:
            opened = await self._deps.policy.check_sender(client, sender, _declared_size(options))
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("MAIL", error)
        if isinstance(opened, Refuse):
            return self._refused(client, "MAIL", replies.render(opened), address)
        opened.smtputf8 = smtputf8
        self._transaction = (client, opened)
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
        if self._transaction is None:  # not reached: aiosmtpd answers RCPT before MAIL itself
            return replies.translate("503 Error: need MAIL command", "RCPT")
        client, open_envelope = self._transaction
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return self._refused(client, "RCPT", replies.TOO_MANY_RECIPIENTS.render(), address)
        if not open_envelope.smtputf8 and not address.isascii():
            # A U-label domain too: its A-label would do, but the client must send that.
            return self._refused(client, "RCPT", replies.NEEDS_SMTPUTF8.render(), address)
        try:
            recipient = forward_path(address, self._deps.hostname)  # <postmaster> too
        except InvalidAddress:
            return self._refused(client, "RCPT", replies.BAD_RECIPIENT_SYNTAX.render(), address)
        try:
            verdict = await self._deps.policy.check_recipient(client, open_envelope, recipient)
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("RCPT", error)
        if isinstance(verdict, Refuse):
            return self._refused(client, "RCPT", replies.render(verdict), address)
        open_envelope.add(recipient, verdict)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK.render()

    async def handle_DATA(
        self, server: object, session: SessionView, envelope: EnvelopeView
    ) -> str:
        # aiosmtpd starts a new envelope after DATA whatever we answer; so do we.
        transaction, self._transaction = self._transaction, None
        if transaction is None or not transaction[1].recipients:
            return replies.NO_VALID_RECIPIENTS.render()
        client, open_envelope = transaction
        try:
            return await self._accept(session, client, open_envelope, envelope.original_content)
        except Exception as error:  # the connection boundary: answer 451, log with a ref
            return self.temporary_failure("DATA", error)

    async def _accept(
        self, session: SessionView, client: Client, envelope: Envelope, content: bytes | None
    ) -> str:
        content = content or b""
        bare = first_bare_line_ending(content)
        if bare is not None:
            # Nothing with bare CR/LF is stored or relayed (SMTP smuggling, RFC 5321 §2.3.8).
            return self._refused(client, "DATA", replies.BARE_LINE_ENDING.render(), offset=bare)
        # aiosmtpd's data_size_limit already answered an oversized DATA; this is the
        # same limit, kept so the rule does not depend on aiosmtpd's counting.
        if len(content) > self._deps.max_message_size:
            return self._refused(client, "DATA", replies.MESSAGE_TOO_BIG.render())
        message = self._trace(session, client, envelope) + content
        policy = self._deps.policy
        refusal = await policy.check_message(client, envelope, message)
        if refusal is not None:
            return self._refused(client, "DATA", replies.render(refusal))
        try:
            await self._deps.delivery.accept(envelope, message)
        except TemporaryFailure as failure:
            await policy.release(envelope)
            reply = replies.SUBMISSION_DEFERRED.render(detail=failure.message)
            return self._refused(client, "DATA", reply)
        except BaseException:
            await policy.release(envelope)
            raise
        event(
            log,
            "accepted",
            id=envelope.id,
            service=self._deps.service,
            client=client.ip,
            login=None if client.login is None else client.login.address,
            sender=envelope.sender or "<>",
            to=envelope.recipients,
            size=len(message),
            tls=client.tls,
        )
        return replies.QUEUED.render(queue_id=envelope.id)

    def refused_data(self, session: SessionView, reply: str) -> str:
        """`reply` to a DATA the listener refused before the message was whole (a line or
        the size over its limit), logged like every other refusal."""
        return self._refused(self._client(session), "DATA", reply)

    def _client(self, session: SessionView) -> Client:
        ssl_on = session.ssl is not None
        ip = peer_ip(session.peer)
        return Client(ip, session.host_name, ssl_on, self._login(), self._connection)

    def _refused(
        self, client: Client, stage: str, reply: str, address: str = "", offset: int | None = None
    ) -> str:
        event(
            log,
            "refused",
            service=self._deps.service,
            stage=stage,
            client=client.ip,
            login=None if client.login is None else client.login.address,
            address=address or None,
            reply=reply,
            offset=offset,
        )
        return reply

    def _trace(self, session: SessionView, client: Client, envelope: Envelope) -> bytes:
        single = envelope.recipients[0] if len(envelope.recipients) == 1 else None
        return received_header(
            helo=client.helo,
            peer_ip=client.ip,
            hostname=self._deps.hostname,
            protocol=protocol_of(session, client.login is not None, envelope.smtputf8),
            queue_id=envelope.id,
            recipient=single,
            now=datetime.now(UTC),
        )


def _declared_size(options: Sequence[str]) -> int | None:
    for option in options:
        match = _SIZE_PARAMETER.fullmatch(option)
        if match:
            return int(match.group(1))
    return None
