"""A listener of one kind (MX, submission with STARTTLS, submissions with implicit TLS)
on 127.0.0.1, built from a runtime the way runtime.py builds them for `serve`."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from mailhost.runtime import Runtime
from mailhost.smtp.admission import Admission
from mailhost.smtp.listeners import SessionDependencies, start_mx_server, start_submission_server
from mailhost.tls.contexts import client_context

Kind = Literal["mx", "submission", "submissions"]


async def listen(
    runtime: Runtime,
    kind: Kind,
    admission: Admission,
    context: ssl.SSLContext,
    *,
    hostname: str,
    max_message_size: int,
    idle_timeout: float,
) -> asyncio.Server:
    deps = SessionDependencies(
        service="MX" if kind == "mx" else "submission",
        policy=runtime.services.inbound if kind == "mx" else runtime.submission,
        authenticator=None if kind == "mx" else runtime.services.authentication,
        delivery=runtime.services.delivery,
        hostname=hostname,
        ssl_context=context,
        max_message_size=max_message_size,
        idle_timeout=idle_timeout,
    )
    if kind == "mx":
        return await start_mx_server("127.0.0.1", 0, deps, admission=admission)
    return await start_submission_server(
        "127.0.0.1", 0, deps, implicit_tls=kind == "submissions", admission=admission
    )


class Listening:
    """Listeners started for one test, closed together at its end; `trust` verifies them."""

    def __init__(self, runtime: Runtime, context: ssl.SSLContext, hostname: str) -> None:
        self.trust = client_context(runtime.settings.tls.ca_dir / "ca.pem")
        self._runtime = runtime
        self._context = context
        self._hostname = hostname
        self._servers: list[asyncio.Server] = []

    async def start(
        self, kind: Kind, admission: Admission, *, max_message_size: int, idle_timeout: float
    ) -> int:
        """The port of a new listener of `kind`."""
        server = await listen(
            self._runtime,
            kind,
            admission,
            self._context,
            hostname=self._hostname,
            max_message_size=max_message_size,
            idle_timeout=idle_timeout,
        )
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()


@asynccontextmanager
async def listening(runtime: Runtime, hostname: str) -> AsyncIterator[Listening]:
    context = await asyncio.to_thread(runtime.certificates.server_context)
    on = Listening(runtime, context, hostname)
    try:
        yield on
    finally:
        await on.close()
