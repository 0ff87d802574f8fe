"""Drives one POP3 client over asyncio streams: limits, timeouts, STLS, mailbox lock, streaming."""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TypeVar

from mailhost.errors import MailboxInUse
from mailhost.interfaces import Authenticator, MailStore
from mailhost.model.logins import ClientInfo
from mailhost.model.records import LoginRecord
from mailhost.pop3.machine import (
    Action,
    Authenticate,
    Close,
    Commit,
    OpenMailbox,
    Phase,
    Pop3Machine,
    Send,
    StartTls,
    Stream,
)
from mailhost.pop3.responses import DotStuffer

# Longest line we buffer. Commands are capped at 255 octets by the parser (RFC 2449 §4);
# SASL continuation lines are not commands and carry base64 credentials, so allow more.
MAX_LINE = 2048
TLS_HANDSHAKE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
# A retrieval response goes out in writes of at least this much (the whole response,
# for most mail): each write is a TLS record and a send(2).
WRITE_AT_LEAST = 32 * 1024
# Retrieved bytes are reported (on_retrieved, a database write) once per session, at
# QUIT or when it ends otherwise, and whenever this much has gone out since the last
# report: one write per session rather than one per RETR, and a long session is not
# counted late.
REPORT_EVERY = 1024 * 1024

RetrievalHook = Callable[[LoginRecord, int], Awaitable[None]]
ExpungeHook = Callable[[int, int], Awaitable[None]]  # (mailbox id, bytes freed)
_T = TypeVar("_T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pop3Dependencies:
    """What a POP3 listener needs from the rest of mailhost; built by runtime."""

    store: MailStore
    authenticator: Authenticator
    hostname: str
    allow_plaintext_auth: bool = False  # operator option for a localhost-only listener
    idle_timeout: float = 600.0  # RFC 1939 §3: an autologout timer of at least 10 minutes
    command_timeout: float = 600.0  # one authentication, lock, listing, read or delete
    on_retrieved: RetrievalHook | None = None  # transfer accounting after each RETR/TOP
    on_expunged: ExpungeHook | None = None  # mailbox usage after deletions at QUIT


class _LineTooLong(Exception):
    pass


class _PeerGone(Exception):
    """The client closed, reset or stalled; end quietly and apply no deletions."""


class Pop3Connection:
    """One client from greeting to close; all protocol decisions are the machine's."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        deps: Pop3Dependencies,
        *,
        ssl_context: ssl.SSLContext | None,
        tls_active: bool,
    ) -> None:
        self._reader, self._writer, self._deps = reader, writer, deps
        self._ssl_context = ssl_context
        self._machine = Pop3Machine(
            hostname=deps.hostname,
            tls_active=tls_active,
            tls_available=ssl_context is not None,
            allow_plaintext_auth=deps.allow_plaintext_auth,
        )
        peer = writer.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self._session = AsyncExitStack()  # holds store.exclusive(mailbox) while logged in
        self._closing = False
        self._unreported = 0  # bytes retrieved and not yet passed to on_retrieved

    async def run(self) -> None:
        try:
            await self._send(self._machine.greeting())
            while not self._closing:
                try:
                    line = await self._read_line()
                except _LineTooLong:
                    actions = self._machine.line_too_long()
                else:
                    if line is None:
                        break
                    actions = self._receive(line)
                await self._perform(actions)
        except _PeerGone:
            pass  # RFC 1939 §6: no QUIT, no UPDATE; the marks die with the session
        finally:
            try:
                await self._session.aclose()
            finally:
                await self._close_writer()
                await self._report_retrieved()

    def _receive(self, line: bytes) -> list[Action]:
        try:
            return self._machine.receive(line)
        except Exception:
            return self._machine.failed(self._incident("command"))

    async def _perform(self, actions: list[Action]) -> None:
        queue = deque(actions)
        while queue and not self._closing:
            action = queue.popleft()
            if self._unreported and self._machine.phase is Phase.UPDATE:
                # Before the last reply: once a client has seen QUIT answered, its
                # retrievals are counted.
                await self._report_retrieved()
            try:
                queue.extend(await self._do(action))
            except (_PeerGone, asyncio.CancelledError):
                raise
            except Exception:
                queue.extend(self._machine.failed(self._incident(type(action).__name__)))

    async def _do(self, action: Action) -> list[Action]:
        if isinstance(action, Send):
            await self._send(action.data)
            return []
        if isinstance(action, Authenticate):
            client = ClientInfo(address=self._peer, service="pop3")
            call = self._deps.authenticator.authenticate(action.login, action.password, client)
            return self._machine.auth_result(await self._bounded(call))
        if isinstance(action, OpenMailbox):
            return await self._open(action)
        if isinstance(action, Stream):
            return await self._stream(action)
        if isinstance(action, Commit):
            mailbox = self._machine.mailbox
            assert mailbox is not None
            freed = await self._bounded(self._deps.store.delete(mailbox, action.uids))
            if self._deps.on_expunged is not None:
                await self._bounded(self._deps.on_expunged(mailbox.id, freed))
            return self._machine.committed()
        if isinstance(action, StartTls):
            await self._start_tls()
            return []
        assert isinstance(action, Close)
        self._closing = True
        return []

    async def _open(self, action: OpenMailbox) -> list[Action]:
        store = self._deps.store
        try:
            await self._bounded(self._session.enter_async_context(store.exclusive(action.mailbox)))
        except MailboxInUse:
            return self._machine.mailbox_in_use()
        try:
            messages = await self._bounded(store.list(action.mailbox))
        except BaseException:
            await self._session.aclose()  # no session, so no lock either
            raise
        return self._machine.mailbox_opened(messages)

    async def _stream(self, action: Stream) -> list[Action]:
        assert self._machine.mailbox is not None
        chunks = self._deps.store.read(self._machine.mailbox, action.uid)
        try:
            try:
                first = await self._bounded(anext(chunks, None))
            except Exception:
                # Nothing sent yet, so a plain -ERR keeps the session usable.
                return self._machine.failed(self._incident("read"))
            await self._send_message(action, first, chunks)
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
        return []

    async def _send_message(
        self, action: Stream, chunk: bytes | None, chunks: AsyncIterator[bytes]
    ) -> None:
        stuffer = DotStuffer(action.top_lines)
        pending = action.status  # sent with the first part of the message
        try:
            while chunk is not None and not stuffer.complete:
                pending += stuffer.feed(chunk)
                if len(pending) >= WRITE_AT_LEAST:
                    await self._send(pending)
                    self._unreported += len(pending)
                    pending = b""
                chunk = await self._bounded(anext(chunks, None))
            pending += stuffer.finish()
            await self._send(pending)
            self._unreported += len(pending)
        except (_PeerGone, asyncio.CancelledError):
            raise
        except Exception:
            # The +OK may be out: an -ERR now would be read as message text, so hang up.
            self._incident("stream")
            self._closing = True
        if self._unreported >= REPORT_EVERY:
            await self._report_retrieved()

    async def _report_retrieved(self) -> None:
        nbytes, self._unreported = self._unreported, 0
        hook, login = self._deps.on_retrieved, self._machine.login
        if hook is None or login is None or nbytes == 0:
            return
        try:
            await self._bounded(hook(login, nbytes))
        except Exception:
            self._incident("transfer accounting")

    async def _start_tls(self) -> None:
        assert self._ssl_context is not None
        # No await between discarding and start_tls: loop.start_tls pauses reading before it
        # first yields, so every plaintext byte after STLS is either dropped here or fed to
        # the handshake, never read as a command (RFC 2595 §4; cf. CVE-2011-0411).
        _discard_buffered(self._reader)
        try:
            await self._writer.start_tls(
                self._ssl_context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise _PeerGone from exc
        self._machine.tls_started()

    async def _read_line(self) -> bytes | None:
        """The next line with its ending; None at end of input or after the idle timeout."""
        try:
            async with asyncio.timeout(self._deps.idle_timeout):
                try:
                    line = await self._reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    await self._discard_line(exc.consumed)
                    raise _LineTooLong from exc
        except (asyncio.IncompleteReadError, TimeoutError, OSError, ssl.SSLError):
            # RFC 1939 §3: on autologout close without a reply and without UPDATE.
            return None
        if len(line) > MAX_LINE:
            raise _LineTooLong
        return line

    async def _discard_line(self, consumed: int) -> None:
        while True:
            await self._reader.readexactly(consumed)
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                consumed = exc.consumed

    async def _send(self, data: bytes) -> None:
        if not data:
            return
        try:
            self._writer.write(data)
            if self._writer.transport.get_write_buffer_size() == 0:
                # All of it went to the kernel: nothing to wait for, so no timer to set.
                # A peer that is gone shows at the next read (or a write that backs up).
                return
            # A client that stops reading is idle too.
            async with asyncio.timeout(self._deps.idle_timeout):
                await self._writer.drain()
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise _PeerGone from exc

    async def _bounded(self, work: Awaitable[_T]) -> _T:
        async with asyncio.timeout(self._deps.command_timeout):
            return await work

    async def _close_writer(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except (OSError, ssl.SSLError, TimeoutError):
            pass  # the peer is gone either way

    def _incident(self, during: str) -> str:
        incident = secrets.token_hex(4)
        _log.exception("POP3 incident %s during %s (peer %s)", incident, during, self._peer)
        return incident


def _discard_buffered(reader: asyncio.StreamReader) -> None:
    """Drop what the client sent after STLS; StreamReader has no public way to do this."""
    buffer = getattr(reader, "_buffer", None)
    if not isinstance(buffer, bytearray):
        # Fail closed: without the discard, pipelined plaintext could pass for TLS input.
        raise RuntimeError("cannot discard buffered plaintext before TLS")
    buffer.clear()


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    deps: Pop3Dependencies,
    *,
    ssl_context: ssl.SSLContext | None,
    tls_active: bool,
) -> None:
    """Serve one client until QUIT, timeout or disconnect."""
    await Pop3Connection(reader, writer, deps, ssl_context=ssl_context, tls_active=tls_active).run()


__all__ = ["MAX_LINE", "Pop3Connection", "Pop3Dependencies", "RetrievalHook", "serve_connection"]
