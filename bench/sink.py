"""Sinks: a bare aiosmtpd server that discards every message, in its own process (the ceiling),
and a counting one that the submission benchmark runs in-process as the relay's destination."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

from aiosmtpd.smtp import SMTP, Envelope


class Discard:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 2.0.0 discarded"


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Discard(), hostname="sink.bench.test", data_size_limit=0), "127.0.0.1", port
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))


class Counting:
    """A sink that keeps a count (and the arrival time) of every message, for the submission
    benchmark: a relayed message counts once it has reached here."""

    def __init__(self) -> None:
        self.messages = 0
        self.nbytes = 0
        self.last_arrival = 0.0
        self._arrived = asyncio.Event()

    async def wait_for(self, count: int) -> None:
        """Until `count` messages have arrived in all (the caller bounds the wait)."""
        while self.messages < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.messages += len(envelope.rcpt_tos)
        self.nbytes += len(envelope.original_content or b"")
        self.last_arrival = time.perf_counter()
        self._arrived.set()
        return "250 2.0.0 counted"


async def serve_counting(sock: socket.socket) -> tuple[Counting, asyncio.Server]:
    """Serve `sock` (already bound and listening) with a Counting sink on the running loop."""
    counting = Counting()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(counting, hostname="sink.bench.test", data_size_limit=0, decode_data=False),
        sock=sock,
    )
    return counting, server
