"""POP3 listeners: 110-style (plaintext with STLS) and 995-style (implicit TLS) servers."""

from __future__ import annotations

import asyncio
import ssl

from mailhost.errors import ConfigError
from mailhost.pop3.connection import MAX_LINE, Pop3Dependencies, serve_connection
from mailhost.pop3.responses import TOO_MANY_CONNECTIONS

DEFAULT_MAX_CONNECTIONS = 1000
TLS_HANDSHAKE_TIMEOUT = 30.0


class _ConnectionLimit:
    """Counts live sessions of one listener and turns away those over the limit."""

    def __init__(
        self,
        deps: Pop3Dependencies,
        ssl_context: ssl.SSLContext | None,
        *,
        implicit_tls: bool,
        max_connections: int,
    ) -> None:
        self._deps = deps
        # On an implicit-TLS port the session is already encrypted, so STLS is not offered.
        self._stls_context = None if implicit_tls else ssl_context
        self._implicit_tls = implicit_tls
        self._max_connections = max_connections
        self.active = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self._max_connections:
            await _refuse(writer)
            return
        self.active += 1
        try:
            await serve_connection(
                reader,
                writer,
                self._deps,
                ssl_context=self._stls_context,
                tls_active=self._implicit_tls,
            )
        except asyncio.CancelledError:
            # Shutdown cancels the session (its `finally` released the mailbox and
            # closed the socket). Nothing awaits this task, and Python 3.11's stream
            # callback would log a cancelled root task as an unhandled error.
            return
        finally:
            self.active -= 1


async def _refuse(writer: asyncio.StreamWriter) -> None:
    # RFC 3206 §5: [SYS/TEMP], the client may come back later.
    try:
        writer.write(TOO_MANY_CONNECTIONS.render())
        async with asyncio.timeout(5.0):
            await writer.drain()
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()
        try:
            async with asyncio.timeout(5.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass


async def start_pop3_server(
    host: str,
    port: int,
    *,
    implicit_tls: bool,
    ssl_context: ssl.SSLContext | None,
    deps: Pop3Dependencies,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> asyncio.Server:
    """Listen on host:port; `ssl_context=None` means a plaintext port without STLS."""
    if implicit_tls and ssl_context is None:
        raise ConfigError(f"POP3 listener {host}:{port} uses implicit TLS but has no TLS context")
    if max_connections < 1:
        raise ConfigError(f"POP3 listener {host}:{port}: max_connections must be at least 1")
    handler = _ConnectionLimit(
        deps, ssl_context, implicit_tls=implicit_tls, max_connections=max_connections
    )
    return await asyncio.start_server(
        handler,
        host,
        port,
        limit=MAX_LINE,
        ssl=ssl_context if implicit_tls else None,
        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit_tls else None,
    )


__all__ = ["DEFAULT_MAX_CONNECTIONS", "Pop3Dependencies", "start_pop3_server"]
