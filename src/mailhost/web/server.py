"""The panel's HTTP server: uvicorn inside mailhost's own event loop, on a socket we bind."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence

import uvicorn
from starlette.types import ASGIApp

from mailhost.errors import ConfigError

# Long enough for a page to finish, short enough that shutting down never hangs.
GRACEFUL_SHUTDOWN_SECONDS = 5


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # SIGINT/SIGTERM belong to runtime.serve(), which stops every server in turn.
        yield


class WebServer:
    """Looks like an asyncio.Server to runtime: sockets, close(), wait_closed()."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], sock: socket.socket):
        self._server = server
        self._task = task
        self._socket = sock

    @property
    def sockets(self) -> Sequence[socket.socket]:
        return (self._socket,)

    def close(self) -> None:
        self._server.should_exit = True

    async def wait_closed(self) -> None:
        await self._task


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that
    # say they are TCP, and with Nagle on every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"[web] cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


async def start_web_server(app: ASGIApp, host: str, port: int) -> WebServer:
    """Serve `app` on host:port (0 picks a free port); returns once it accepts connections."""
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        # uvicorn's own handlers would write its warnings in a form of their own:
        # without them they reach the one handler logs.configure installs.
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        # The client address feeds the login penalties and the scheme the Secure cookie
        # flag: neither may come from a header any local process can write.
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="web panel")
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # raises what stopped it
            raise ConfigError(f"[web] the server on {host}:{port} stopped while starting")
        await asyncio.sleep(0.01)
    return WebServer(server, task, sock)
