"""The SMTP listeners: MX, submission (587-style, STARTTLS), submissions (465-style, implicit TLS).

aiosmtpd's threaded Controller is not used: the servers run on the caller's event
loop through `loop.create_server`, one `SMTP` protocol and one handler per
connection. Limits on every read (RFC 5321 §4.5.3): command lines of 512 octets,
text lines of 1000 octets (one more for the transparency dot, as aiosmtpd allowed),
the advertised SIZE for the whole message, and an idle timeout reset by each
command and by whatever arrives during DATA, from the greeting on (on the
implicit-TLS port the handshake has it too). DATA is read in large chunks by
smtp/message_reader.py rather than by aiosmtpd's loop of one await per line.

Every session is counted in its listener's `Admission` (smtp/admission.py), and
every reply passes `EsmtpProtocol.push`, which counts the errors (Postfix's
smtpd_soft/hard_error_limit): from the soft limit on each reply waits, at the
hard limit the session ends with `421 4.7.0`. Whether a session is in the middle
of a command is tracked around aiosmtpd's command methods, so that a graceful
stop lets a message in DATA finish and ends idle sessions with `421 4.3.2`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import AnyStr

from aiosmtpd.smtp import MISSING, SMTP

from mailhost.errors import ConfigError
from mailhost.logs import event
from mailhost.smtp import replies
from mailhost.smtp.admission import Admission, SessionLimits, Turnaway
from mailhost.smtp.message_reader import CHUNK, DataRefusal, read_mail_data
from mailhost.smtp.session import SessionDependencies, SessionHandler

# RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF;
# aiosmtpd measures the line without its CRLF.
COMMAND_LINE = 510
# RFC 4954 §4 allows AUTH lines of 12288 octets; 998 still fits a PLAIN response for a
# 254-octet login and a long password.
AUTH_LINE = 998
# Greeting text after the host name (RFC 5321 §4.2); no software name or version.
GREETING = "ESMTP"
TLS_HANDSHAKE_TIMEOUT = 30.0
# The kernel queue of connections not yet accepted (Linux caps it at net.core.somaxconn);
# asyncio's default of 100 drops part of a burst, whose clients then wait for SYN retries.
LISTEN_BACKLOG = 4096

log = logging.getLogger("mailhost.smtp")


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
# `<dot-atom@dot-atom>`, then nothing or blanks and parameters that open no comment.
_PLAIN_PATH = re.compile(
    rf"<(?P<addr>{_DOT_ATOM}@{_DOT_ATOM})>(?:[ \t]+(?P<rest>[^ \t(][^(]*))?", re.ASCII
)


def _parsed_path(arg: str) -> tuple[str | None, str | None]:
    """The email package's parse of a path and what follows it (None, None if invalid)."""
    try:
        parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
        address, rest = parse(arg)
    except HeaderParseError:
        return None, None
    addr: str = address.addr_spec
    return addr, rest


Command = Callable[[str | None], Awaitable[None]]


class EsmtpProtocol(SMTP):
    """aiosmtpd's SMTP with our replies and limits: enhanced codes throughout, a timeout
    notice, connection and error limits, and a graceful stop."""

    command_size_limit = COMMAND_LINE  # HELO sessions; EHLO ones use the dict below
    # aiosmtpd gives this to the connection's StreamReader as its limit, which makes it
    # the DATA chunk. Command lines keep their own limits (`command_size_limits`,
    # checked on the whole line); text lines are checked by smtp/message_reader.py.
    line_length_limit = CHUNK

    def __init__(
        self,
        handler: SessionHandler,
        loop: asyncio.AbstractEventLoop,
        *,
        hostname: str,
        max_message_size: int,
        idle_timeout: float,
        tls_context: ssl.SSLContext | None,
        require_starttls: bool,
        auth_required: bool,
        admission: Admission,
        auth_exclude_mechanism: tuple[str, ...] = (),
    ) -> None:
        # aiosmtpd keeps these limits in a class attribute that every new connection
        # clears and every EHLO raises; one dict per connection keeps them apart.
        self.command_size_limits: collections.defaultdict[str, int] = collections.defaultdict(
            lambda: COMMAND_LINE
        )
        super().__init__(
            handler,
            data_size_limit=max_message_size,
            # RFC 6531: aiosmtpd then reads command arguments as UTF-8 (invalid bytes
            # become surrogates, which no address check accepts; the line limits
            # stay in octets) and raises the MAIL line limit by 10 (RFC 6531 §3.4).
            # Whether a transaction may use UTF-8 is smtp/session.py's to decide.
            enable_SMTPUTF8=True,
            decode_data=False,  # keep the bytes as sent; 8BITMIME
            hostname=hostname,
            ident=GREETING,
            tls_context=tls_context,  # its SNI callback picks mail.<domain>
            require_starttls=require_starttls,
            timeout=idle_timeout,
            auth_required=auth_required,
            auth_require_tls=True,
            auth_exclude_mechanism=auth_exclude_mechanism,
            loop=loop,
        )
        self._mx_hostname = hostname
        self._handler = handler
        self._mx_verb: str | None = None
        self._admission = admission
        self._limits = admission.limits
        self._admitted = False  # counted in the admission until connection_lost
        self._turned_away = False  # answered 421 at connect; aiosmtpd never started
        self._errors = 0  # 4xx and 5xx replies sent in this session
        self._mid_reply = False  # the first lines of a multi-line reply are out
        self._busy = False  # a command is under way (for DATA: receiving or storing)
        self._stopping = False
        self._hung_up = False  # a 421 went out: nothing more is said
        self._in_data = False  # between the 354 and the end of the data
        # aiosmtpd dispatches commands through this table; wrapped, they tell the
        # graceful stop whether the session is idle.
        self._smtp_methods = {
            verb: self._tracked(method) for verb, method in self._smtp_methods.items()
        }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admitted:  # again after STARTTLS, with the TLS transport
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        turnaway = self._admission.admit(self, client)
        if turnaway is not None:
            self._turned_away = True
            self._hang_up(self._turnaway_reply(turnaway, client), transport)
            return
        self._admitted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._turned_away:  # aiosmtpd's own clean-up expects a session it never had
            asyncio.StreamReaderProtocol.connection_lost(self, error)
            return
        self._admission.release(self)
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self._turned_away:
            return False
        return super().eof_received()

    def data_received(self, data: bytes) -> None:
        # aiosmtpd starts the idle timer at each command and never during DATA, so a
        # large message on a slow link was cut off mid-way. Every arrival shows the
        # client is there, as each read does for Postfix's smtpd_timeout.
        if self._in_data:
            self._reset_timeout()
        super().data_received(data)

    def _turnaway_reply(self, turnaway: Turnaway, client: str) -> str:
        if turnaway is Turnaway.CLIENT_FULL:
            return replies.TOO_MANY_CONNECTIONS_FROM.render(
                hostname=self._mx_hostname, client=client
            )
        if turnaway is Turnaway.LISTENER_FULL:
            return replies.TOO_MANY_CONNECTIONS.render(hostname=self._mx_hostname)
        return replies.SHUTTING_DOWN.render(hostname=self._mx_hostname)

    async def push(self, status: AnyStr) -> None:
        if self._hung_up:
            return  # after our 421 nothing more; aiosmtpd may still try to answer
        if isinstance(status, str):
            status = replies.translate(status, self._mx_verb)
        line = status if isinstance(status, str) else status.decode("ascii", "replace")
        if not self._mid_reply:
            # Postfix's error limits: every 4xx/5xx reply counts, and from the soft
            # limit on every reply (errors or not) waits, so guessing is slow.
            if line[:1] in ("4", "5"):
                self._errors += 1
            if self._errors >= self._limits.soft_error_limit:
                await asyncio.sleep(self._limits.error_sleep_seconds)
                if self._hung_up:
                    return
        self._mid_reply = line[3:4] == "-"
        await super().push(status)
        if not self._mid_reply and self._errors >= self._limits.hard_error_limit:
            event(log, "disconnected", client=self._client(), errors=self._errors)
            self._hang_up(replies.TOO_MANY_ERRORS.render(hostname=self._mx_hostname))

    def _tracked(self, method: Command) -> Command:
        async def command(arg: str | None) -> None:
            self._busy = True
            try:
                await method(arg)
            finally:
                self._busy = False
                if self._stopping:  # the stop came during this command: now it is answered
                    self._hang_up(replies.SHUTTING_DOWN.render(hostname=self._mx_hostname))

        return command

    def stop_session(self) -> None:
        """Say 421 4.3.2 and close: now if idle, else once the command under way is answered."""
        self._stopping = True
        if not self._busy:
            self._hang_up(replies.SHUTTING_DOWN.render(hostname=self._mx_hostname))

    def abort_session(self) -> None:
        """Close at once: a message not answered yet gets no 250 (the client will retry)."""
        self._hung_up = True
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()

    def _hang_up(self, line: str, transport: asyncio.BaseTransport | None = None) -> None:
        """Send `line` (a 421) and close; RFC 5321 §3.8: the server closes after a 421."""
        self._hung_up = True
        transport = transport or self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(line.encode("ascii") + b"\r\n")
        if transport is not None:
            # close() sends what is buffered first; connection_lost() then cleans up.
            transport.close()

    def _client(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"

    async def smtp_STARTTLS(self, arg: str) -> None:
        # aiosmtpd would start TLS inside TLS after a second STARTTLS, and on the
        # implicit-TLS port answer as if TLS were merely unavailable.
        if self.transport is not None and self.transport.get_extra_info("sslcontext"):
            await self.push(replies.TLS_ALREADY_ACTIVE.render())
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        # "553 5.1.3 malformed address" is aiosmtpd's text for both MAIL and RCPT.
        self._mx_verb = "MAIL"
        try:
            await super().smtp_MAIL(arg)
        finally:
            self._mx_verb = None

    async def smtp_RCPT(self, arg: str | None) -> None:
        self._mx_verb = "RCPT"
        try:
            await super().smtp_RCPT(arg)
        finally:
            self._mx_verb = None

    async def smtp_DATA(self, arg: str | None) -> None:
        # aiosmtpd's checks and replies before the 354 (its texts, which `push`
        # translates), then smtp/message_reader.py instead of its loop of one await a line.
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        if envelope is None or not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # A connection lost meanwhile cancels this task (aiosmtpd's connection_lost), as
        # it cancelled aiosmtpd's own loop: nothing is stored, nothing answered.
        self._in_data = True
        try:
            outcome = await read_mail_data(self._reader, self.data_size_limit)
        finally:
            self._in_data = False
        if isinstance(outcome, DataRefusal):
            # RFC 5321 §4.2.5: the refusal comes after the whole data was read.
            reply = (
                replies.DATA_LINE_TOO_LONG.render()
                if outcome is DataRefusal.LINE_TOO_LONG
                else replies.MESSAGE_TOO_BIG.render()
            )
            assert self.session is not None  # commands run only inside a session
            await self.push(self._handler.refused_data(self.session, reply))
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        envelope.content = envelope.original_content = outcome
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd 1.4's own parse, less the typing.Protocol class it defines on every
        # call, and with a fast path for the plain `<local@domain> [params]` nearly
        # every client sends (the email package's parser is a fifth of an MX's time).
        # tests/smtp/test_mx.py checks both against aiosmtpd's on arbitrary input.
        # The fast path is ASCII: a UTF-8 path (RFC 6531 §3.3) takes the email parser.
        if not arg:
            return "", ""
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is not None:
            addr, rest = plain.group("addr"), plain.group("rest") or ""
        else:
            addr, rest = _parsed_path(arg)
        if addr is None:
            return None, None
        local = addr.rpartition("@")[0]
        if self.local_part_limit and len(local) > self.local_part_limit:
            return None, None
        return addr, rest

    def _timeout_cb(self) -> None:
        # aiosmtpd's own callback closes silently; RFC 5321 §4.5.3.2 servers say why.
        self._hang_up(replies.IDLE_TIMEOUT.render(hostname=self._mx_hostname))


class MxProtocol(EsmtpProtocol):
    """The MX: no AUTH, no HELP list."""

    def __init__(
        self, deps: SessionDependencies, loop: asyncio.AbstractEventLoop, admission: Admission
    ) -> None:
        super().__init__(
            SessionHandler(deps),
            loop,
            hostname=deps.hostname,
            max_message_size=deps.max_message_size,
            idle_timeout=deps.idle_timeout,
            tls_context=deps.ssl_context,
            # RFC 3207 §4: an MX must accept mail from MTAs that do not use TLS.
            require_starttls=False,
            auth_required=False,
            admission=admission,
            auth_exclude_mechanism=("LOGIN", "PLAIN"),
        )

    async def smtp_AUTH(self, arg: str | None) -> None:
        # AUTH belongs to submission (RFC 6409 §4.3), not to the MX.
        await self.push(replies.AUTH_NOT_OFFERED.render())

    async def smtp_HELP(self, arg: str | None) -> None:
        await self.push(replies.HELP.render())


class SubmissionProtocol(EsmtpProtocol):
    """Submission: AUTH required, and TLS before it.

    587-style (`implicit_tls=False`): STARTTLS is offered and every command but
    EHLO, STARTTLS, NOOP and QUIT is refused until TLS is up (RFC 3207 §4, RFC 8314
    §3.3). 465-style: the connection is TLS from its first byte (RFC 8314 §3.3).
    Either way MAIL, RCPT and DATA need AUTH first (RFC 4954 §6, RFC 6409 §4.3).
    """

    def __init__(
        self,
        deps: SessionDependencies,
        loop: asyncio.AbstractEventLoop,
        admission: Admission,
        *,
        implicit_tls: bool,
    ) -> None:
        super().__init__(
            SessionHandler(deps),
            loop,
            hostname=deps.hostname,
            max_message_size=deps.max_message_size,
            idle_timeout=deps.idle_timeout,
            tls_context=None if implicit_tls else deps.ssl_context,
            require_starttls=not implicit_tls,
            auth_required=True,
            admission=admission,
        )
        self.command_size_limits["AUTH"] = AUTH_LINE
        if implicit_tls:
            # aiosmtpd knows only STARTTLS as TLS; on this port TLS came before the greeting.
            self._auth_require_tls = False
        self._implicit_tls = implicit_tls

    async def smtp_HELP(self, arg: str | None) -> None:
        await self.push(replies.SUBMISSION_HELP.render())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        session = self.session
        if self._implicit_tls and session is not None and session.ssl is None:
            # What aiosmtpd records after STARTTLS: the handler sees TLS the same way.
            session.ssl = {
                "ssl_object": transport.get_extra_info("ssl_object"),
                "cipher": transport.get_extra_info("cipher"),
                "peercert": transport.get_extra_info("peercert"),
            }


async def start_submission_server(
    host: str,
    port: int,
    deps: SessionDependencies,
    *,
    implicit_tls: bool,
    admission: Admission | None = None,
) -> asyncio.Server:
    """Listen on host:port (0 picks a free port); close the returned server to stop.

    `admission` holds the listener's session limits and live sessions (default: one of
    its own with Postfix's limits); `admission.stop()` ends the sessions gracefully.
    """
    where = f"submission listener {host}:{port}"
    if deps.ssl_context is None:
        raise ConfigError(f"{where}: needs a TLS certificate (RFC 8314: no passwords in clear)")
    if deps.max_message_size < 1 or deps.idle_timeout <= 0:
        raise ConfigError(f"{where}: max_message_size and idle_timeout must be positive")
    if deps.authenticator is None:
        raise ConfigError(f"{where}: needs an authenticator (RFC 6409 §4.3: AUTH first)")
    loop = asyncio.get_running_loop()
    sessions = admission if admission is not None else Admission(SessionLimits())
    tls: ssl.SSLContext | None = deps.ssl_context if implicit_tls else None
    return await loop.create_server(
        lambda: SubmissionProtocol(deps, loop, sessions, implicit_tls=implicit_tls),
        host,
        port,
        ssl=tls,
        # Before the greeting there is the handshake: a client idle in it is idle too.
        ssl_handshake_timeout=min(TLS_HANDSHAKE_TIMEOUT, deps.idle_timeout) if tls else None,
        backlog=LISTEN_BACKLOG,
    )


async def start_mx_server(
    host: str, port: int, deps: SessionDependencies, *, admission: Admission | None = None
) -> asyncio.Server:
    """Listen on host:port (0 picks a free port); close the returned server to stop.

    `admission` holds the listener's session limits and live sessions (default: one of
    its own with Postfix's limits); `admission.stop()` ends the sessions gracefully.
    """
    if deps.max_message_size < 1:
        raise ConfigError(f"MX listener {host}:{port}: max_message_size must be positive")
    if deps.idle_timeout <= 0:
        raise ConfigError(f"MX listener {host}:{port}: idle_timeout must be positive")
    loop = asyncio.get_running_loop()
    sessions = admission if admission is not None else Admission(SessionLimits())
    return await loop.create_server(
        lambda: MxProtocol(deps, loop, sessions), host, port, backlog=LISTEN_BACKLOG
    )


__all__ = [
    "Admission",
    "MxProtocol",
    "SessionDependencies",
    "SessionLimits",
    "SubmissionProtocol",
    "start_mx_server",
    "start_submission_server",
]
