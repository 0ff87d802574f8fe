"""SMTP to the next hop with aiosmtplib: opportunistic STARTTLS, one reply per recipient, reuse.

TLS is opportunistic (RFC 7435; RFC 3207): used whenever the server offers
STARTTLS, without certificate checks (MX host names are not authenticated
without DANE or MTA-STS), and a failed handshake falls back to a new
plaintext connection rather than to no delivery at all. A connection that
finished a transaction goes back to a per-destination pool and is reused,
after RSET, until it has been idle for `idle_seconds`. At most
`per_destination` transactions run at once to one host and port (Postfix's
default_destination_concurrency_limit): a batch of messages to one destination
waits for a connection to come back rather than opening one per message, which
a receiver would take for a flood, and which costs a handshake each.

A message that needs SMTPUTF8 goes with it (RFC 6531 §3.4) or not at all: a hop
that does not offer it fails every recipient permanently (RFC 6531 §3.2), so
the sender gets a DSN; nothing is downgraded. 8-bit content is declared with
BODY=8BITMIME where offered (RFC 6152), and sent as it is where not: see
`_eight_bit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiosmtplib import (
    SMTP,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientRefused,
    SMTPResponseException,
)

from mailhost.outbound.routing import Hop

log = logging.getLogger("mailhost.outbound")

# Postfix's default_destination_concurrency_limit; every connection may stay for reuse.
MAX_PER_DESTINATION = 20
# Connection-level failures (refused, timed out, dropped) are temporary: RFC 5321 §4.5.4.1.
_LINK_ERRORS = (SMTPException, OSError, ssl.SSLError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the next hop answered for one recipient, or what we concluded without an answer."""

    code: int
    text: str
    host: str = ""  # the server that said it; "" when no server was reached
    port: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @property
    def relay(self) -> str:
        """`host:port` of the server that said it, or "none" (as Postfix logs it)."""
        if not self.host:
            return "none"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        # Multi-line replies arrive joined with "\n"; one line is what logs and DSNs carry.
        return f"{self.code} {' '.join(self.text.split())}"


def opportunistic_context() -> ssl.SSLContext:
    """Encrypt when offered, authenticate nobody (RFC 7435 §1.2)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(slots=True)
class _Idle:
    client: SMTP
    since: float


class _Destination:
    """One host and port: its idle connections, and the right to open or use one."""

    def __init__(self, limit: int) -> None:
        self.idle: list[_Idle] = []
        self.slots = asyncio.Semaphore(limit)
        self.users = 0  # transactions holding or awaiting a slot

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.users += 1
        try:
            async with self.slots:
                yield
        finally:
            self.users -= 1


class _Unreachable(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class SmtpTransport:
    def __init__(
        self,
        helo_name: str,
        *,
        timeout: float = 120.0,
        idle_seconds: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        per_destination: int = MAX_PER_DESTINATION,
    ) -> None:
        self._helo = helo_name
        self._timeout = timeout
        self._idle_seconds = idle_seconds
        self._tls = tls_context or opportunistic_context()
        self._per_destination = per_destination
        self._destinations: dict[tuple[str, int], _Destination] = {}

    async def send(
        self,
        hops: Sequence[Hop],
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        smtputf8: bool = False,
    ) -> dict[str, Reply]:
        """One transaction at the first hop that answers; a reply for every recipient.

        `smtputf8`: the message needs an SMTPUTF8 transaction (model/message.py).
        """
        last = Reply(451, "4.4.1 no mail host to try")
        for hop in hops:
            destination = self._destination(hop)
            async with destination.slot():
                try:
                    client = await self._checkout(hop, destination)
                except _Unreachable as exc:
                    last = exc.reply
                    log.info("cannot use %s: %s", hop.address, exc.reply)
                    continue
                try:
                    replies = await _transaction(client, hop, sender, recipients, message, smtputf8)
                except _LINK_ERRORS as exc:
                    client.close()
                    # Possibly after DATA was sent: a retry may duplicate, which RFC 5321
                    # §6.1 prefers to losing the message.
                    why = _why(exc)
                    text = f"4.4.2 connection to {hop.host} lost: {why}"
                    return dict.fromkeys(recipients, Reply(451, text, hop.host, hop.port))
                _checkin(destination, client)
                return replies
        return dict.fromkeys(recipients, last)

    async def close_idle(self) -> None:
        """Close pooled connections idle longer than `idle_seconds`."""
        now = asyncio.get_running_loop().time()
        stale: list[SMTP] = []
        for key, destination in list(self._destinations.items()):
            entries = destination.idle
            destination.idle = [e for e in entries if now - e.since < self._idle_seconds]
            stale += [e.client for e in entries if now - e.since >= self._idle_seconds]
            if not destination.idle and not destination.users:
                del self._destinations[key]
        await _quit_all(stale)

    async def close(self) -> None:
        clients = [e.client for d in self._destinations.values() for e in d.idle]
        for destination in self._destinations.values():
            destination.idle.clear()
        await _quit_all(clients)

    def _destination(self, hop: Hop) -> _Destination:
        key = (hop.address, hop.port)
        destination = self._destinations.get(key)
        if destination is None:
            destination = self._destinations[key] = _Destination(self._per_destination)
        return destination

    async def _checkout(self, hop: Hop, destination: _Destination) -> SMTP:
        while destination.idle:
            client = destination.idle.pop().client
            try:
                await client.rset()  # proves the connection is alive and clears any state
                return client
            except _LINK_ERRORS:
                client.close()
        return await self._open(hop)

    async def _open(self, hop: Hop) -> SMTP:
        client = await self._connect(hop)
        if client.supports_extension("starttls"):
            try:
                await client.starttls(server_hostname=hop.host, tls_context=self._tls)
                await client.ehlo()  # RFC 3207 §4.2: forget what was said before TLS
                return await _login(client, hop)
            except _Unreachable:
                raise
            except _LINK_ERRORS as exc:
                client.close()
                if hop.auth is not None:
                    raise _cleartext_refused(hop) from None
                log.warning(
                    "STARTTLS with %s failed (%s); sending in the clear", hop.host, _why(exc)
                )
            return await self._connect(hop)
        if hop.auth is not None:
            client.close()
            raise _cleartext_refused(hop)
        return client

    async def _connect(self, hop: Hop) -> SMTP:
        client = SMTP(
            hostname=hop.address,
            port=hop.port,
            local_hostname=self._helo,
            timeout=self._timeout,
            start_tls=False,
        )
        try:
            await client.connect()
            try:
                await client.ehlo()
            except SMTPHeloError:
                await client.helo()  # RFC 5321 §4.1.4: fall back for pre-ESMTP servers
        except SMTPResponseException as exc:
            client.close()
            code = exc.code if 400 <= exc.code < 500 else 451
            raise _Unreachable(Reply(code, f"{hop.host} said: {exc.code} {exc.message}")) from None
        except _LINK_ERRORS as exc:
            client.close()
            raise _Unreachable(
                Reply(451, f"4.4.1 cannot connect to {hop.host} port {hop.port}: {_why(exc)}")
            ) from None
        return client


def _checkin(destination: _Destination, client: SMTP) -> None:
    # Never more idle than the slots: a connection only comes back from a slot's holder.
    if client.is_connected:
        destination.idle.append(_Idle(client, asyncio.get_running_loop().time()))


async def _login(client: SMTP, hop: Hop) -> SMTP:
    """AUTH at a smarthost (RFC 4954), on a connection that is already encrypted."""
    if hop.auth is None:
        return client
    # One mechanism (PLAIN, RFC 4616, else LOGIN), one try: aiosmtplib's login() would
    # send a refused password again under every other mechanism the server lists.
    authenticate = client.auth_plain if "plain" in client.server_auth_methods else client.auth_login
    try:
        await authenticate(*hop.auth)
    except SMTPResponseException as exc:
        client.close()
        # A wrong password is the operator's to fix: defer, never bounce everyone's mail.
        reply = Reply(451, f"4.7.0 {hop.host} refused our login: {exc.code} {exc.message}")
        raise _Unreachable(reply) from None
    return client


def _cleartext_refused(hop: Hop) -> _Unreachable:
    text = f"4.7.0 {hop.host} offers no working STARTTLS; the password is not sent in the clear"
    return _Unreachable(Reply(451, text))


async def _transaction(
    client: SMTP,
    hop: Hop,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    smtputf8: bool,
) -> dict[str, Reply]:
    """MAIL, one RCPT per recipient, DATA; a refused MAIL or DATA answers for everyone."""
    options = ["BODY=8BITMIME"] if _eight_bit(message, client) else []
    encoding = "ascii"
    if smtputf8:
        if not client.supports_extension("smtputf8"):
            # Our conclusion, not the server's reply: no host, so the DSN says so.
            text = f"5.6.7 {hop.host} does not support SMTPUTF8, which this message needs"
            return dict.fromkeys(recipients, Reply(553, text))
        options.append("SMTPUTF8")
        encoding = "utf-8"
    try:
        await client.mail(sender, options=options, encoding=encoding)
    except SMTPResponseException as exc:
        await client.rset()
        return dict.fromkeys(recipients, Reply(exc.code, exc.message, hop.host, hop.port))
    replies: dict[str, Reply] = {}
    accepted: list[str] = []
    for recipient in recipients:
        try:
            await client.rcpt(recipient, encoding=encoding)
            accepted.append(recipient)
        except SMTPRecipientRefused as exc:
            replies[recipient] = Reply(exc.code, exc.message, hop.host, hop.port)
    if not accepted:
        await client.rset()
        return replies
    try:
        done = await client.data(message)
        final = Reply(done.code, done.message, hop.host, hop.port)
    except SMTPResponseException as exc:
        final = Reply(exc.code, exc.message, hop.host, hop.port)
    replies.update(dict.fromkeys(accepted, final))
    return replies


def _eight_bit(message: bytes, client: SMTP) -> bool:
    """RFC 6152: declare 8-bit content where the server says it can take it.

    Where it does not, the message goes as it is, undeclared. RFC 6152 §3 would
    have it converted to 7 bits or returned; Postfix converts (unless
    disable_mime_output_conversion = yes). Converting rewrites the MIME structure
    of a message that others may have signed, and bouncing loses mail that
    practically every server today takes as it is.
    """
    return client.supports_extension("8bitmime") and not message.isascii()


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _quit_all(clients: Sequence[SMTP]) -> None:
    for client in clients:
        try:
            await client.quit(timeout=5)
        except _LINK_ERRORS:
            client.close()
