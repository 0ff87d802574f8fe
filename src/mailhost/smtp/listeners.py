"""The SMTP listeners: MX, submission (587-style, STARTTLS), submissions (465-style, implicit TLS).

aiosmtpd's threaded Controller is not used: the servers run on the caller's event
loop through `loop.create_server`, one `SMTP` protocol and one handler per
connection. Limits on every read (RFC 5321 §4.5.3): command lines of 512 octets,
text lines of 1000 octets (aiosmtpd allows one more for the transparent dot),
the advertised SIZE for the whole message, and an idle timeout reset by each
command.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import AnyStr

from aiosmtpd.smtp import SMTP

from mailhost.errors import ConfigError
from mailhost.smtp import replies
from mailhost.smtp.handler import MxDependencies, MxHandler
from mailhost.smtp.submission import SubmissionDependencies, SubmissionHandler

# RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF;
# aiosmtpd measures the line without its CRLF.
COMMAND_LINE = 510
# RFC 4954 §4 allows AUTH lines of 12288 octets; aiosmtpd's reader stops at 1001, which
# still fits a PLAIN response for a 254-octet login and a long password.
AUTH_LINE = 998
# Greeting text after the host name (RFC 5321 §4.2); no software name or version.
GREETING = "ESMTP"
TLS_HANDSHAKE_TIMEOUT = 30.0


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


class EsmtpProtocol(SMTP):
    """aiosmtpd's SMTP with our replies and limits: enhanced codes throughout, a timeout notice."""

    command_size_limit = COMMAND_LINE  # HELO sessions; EHLO ones use the dict below

    def __init__(
        self,
        handler: object,
        loop: asyncio.AbstractEventLoop,
        *,
        hostname: str,
        max_message_size: int,
        idle_timeout: float,
        tls_context: ssl.SSLContext | None,
        require_starttls: bool,
        auth_required: bool,
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
            enable_SMTPUTF8=False,
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
        self._mx_verb: str | None = None

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = replies.translate(status, self._mx_verb)
        await super().push(status)

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

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd 1.4's own parse, less the typing.Protocol class it defines on every
        # call, and with a fast path for the plain `<local@domain> [params]` nearly
        # every client sends (the email package's parser is a fifth of an MX's time).
        # tests/smtp/test_mx.py checks both against aiosmtpd's on arbitrary input.
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
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            line = replies.IDLE_TIMEOUT.render(hostname=self._mx_hostname)
            transport.write(line.encode("ascii") + b"\r\n")
        if transport is not None:
            # close() sends what is buffered first; connection_lost() then cleans up.
            transport.close()


class MxProtocol(EsmtpProtocol):
    """The MX: no AUTH, no HELP list."""

    def __init__(self, deps: MxDependencies, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(
            MxHandler(deps),
            loop,
            hostname=deps.hostname,
            max_message_size=deps.max_message_size,
            idle_timeout=deps.idle_timeout,
            tls_context=deps.ssl_context,
            # RFC 3207 §4: an MX must accept mail from MTAs that do not use TLS.
            require_starttls=False,
            auth_required=False,
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
        self, deps: SubmissionDependencies, loop: asyncio.AbstractEventLoop, *, implicit_tls: bool
    ) -> None:
        super().__init__(
            SubmissionHandler(deps),
            loop,
            hostname=deps.hostname,
            max_message_size=deps.max_message_size,
            idle_timeout=deps.idle_timeout,
            tls_context=None if implicit_tls else deps.ssl_context,
            require_starttls=not implicit_tls,
            auth_required=True,
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
    host: str, port: int, deps: SubmissionDependencies, *, implicit_tls: bool
) -> asyncio.Server:
    """Listen on host:port (0 picks a free port); close the returned server to stop."""
    where = f"submission listener {host}:{port}"
    if deps.ssl_context is None:
        raise ConfigError(f"{where}: needs a TLS certificate (RFC 8314: no passwords in clear)")
    if deps.max_message_size < 1 or deps.idle_timeout <= 0:
        raise ConfigError(f"{where}: max_message_size and idle_timeout must be positive")
    loop = asyncio.get_running_loop()
    tls: ssl.SSLContext | None = deps.ssl_context if implicit_tls else None
    return await loop.create_server(
        lambda: SubmissionProtocol(deps, loop, implicit_tls=implicit_tls),
        host,
        port,
        ssl=tls,
        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit_tls else None,
    )


async def start_mx_server(host: str, port: int, deps: MxDependencies) -> asyncio.Server:
    """Listen on host:port (0 picks a free port); close the returned server to stop."""
    if deps.max_message_size < 1:
        raise ConfigError(f"MX listener {host}:{port}: max_message_size must be positive")
    if deps.idle_timeout <= 0:
        raise ConfigError(f"MX listener {host}:{port}: idle_timeout must be positive")
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: MxProtocol(deps, loop), host, port)


__all__ = [
    "MxDependencies",
    "MxProtocol",
    "SubmissionDependencies",
    "SubmissionProtocol",
    "start_mx_server",
    "start_submission_server",
]
