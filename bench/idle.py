"""Idle connections: many SMTP clients that read the greeting and then say nothing.

Issue 10 asks that 10,000 idle connections to one listener leave new clients served
within a second and the process under 500 MB. The idle clients are bare non-blocking
sockets driven by the event loop's sock_* calls (no transports, no streams), so the
load generator stays small; once a client has its 220 it is only a file descriptor
in a list until the end. Every probe is a fresh client: connect, 220, EHLO, 250, QUIT.
"""

from __future__ import annotations

import asyncio
import re
import resource
import selectors
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

IDLE = 10_000
BATCH = 250  # connects in flight at once: well inside the listener's backlog (4096)
PER_ADDRESS = 2_500  # clients per source address 127.0.0.n: ephemeral ports never run short
PROBES = 20
TIMEOUT = 30.0  # seconds for one connect or reply before it counts as failed
_LAST_LINE = re.compile(rb"(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$")


class ReplyError(Exception):
    """The server answered something else than the reply the client waits for."""


@dataclass(frozen=True)
class Memory:
    """A process's resident set now (VmRSS) and at its peak (VmHWM), in MB."""

    rss_mb: float
    peak_mb: float

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024  # the kernel says kB
        return cls(fields["VmRSS"], fields["VmHWM"])


async def _reply(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> int:
    """Read one (possibly multi-line) SMTP reply and return its code."""
    data = b""
    while (last := _LAST_LINE.search(data)) is None:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ReplyError(f"connection closed after {data!r}")
        data += chunk
    return int(last.group(1))


async def _idle_client(
    loop: asyncio.AbstractEventLoop, port: int, n: int, idle: list[socket.socket]
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        # bind() before connect() takes a port per source address whatever the
        # destination, hence several source addresses for 10,000 clients.
        sock.bind((f"127.0.0.{1 + n // PER_ADDRESS}", 0))
        async with asyncio.timeout(TIMEOUT):
            await loop.sock_connect(sock, ("127.0.0.1", port))
            code = await _reply(loop, sock)
        if code != 220:
            raise ReplyError(f"greeting {code}")
    except BaseException:
        sock.close()
        raise
    idle.append(sock)


async def _open_idle(port: int, count: int) -> tuple[list[socket.socket], list[str], float]:
    """Open `count` idle clients in batches; the open ones, the failures, the seconds taken."""
    loop = asyncio.get_running_loop()
    idle: list[socket.socket] = []
    failures: list[str] = []
    start = time.perf_counter()
    for first in range(0, count, BATCH):
        results = await asyncio.gather(
            *(_idle_client(loop, port, n, idle) for n in range(first, min(first + BATCH, count))),
            return_exceptions=True,
        )
        failures += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return idle, failures, time.perf_counter() - start


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line.startswith(code):
            raise ReplyError(f"wanted {code!r}, got {line!r}")
        if line[3:4] == b" ":
            return


async def _probe(port: int) -> float:
    """Seconds for a new client: connect, 220, EHLO, 250, QUIT, 221."""
    start = time.perf_counter()
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await _expect(reader, b"220")
            writer.write(b"EHLO probe.bench.test\r\n")
            await _expect(reader, b"250")
            writer.write(b"QUIT\r\n")
            await _expect(reader, b"221")
        finally:
            writer.close()
            await writer.wait_closed()
    return time.perf_counter() - start


async def _probes(port: int) -> list[float]:
    return [await _probe(port) for _ in range(PROBES)]


def _still_open(idle: list[socket.socket]) -> int:
    """How many idle clients have heard nothing: no 421, no timeout, no close."""
    with selectors.DefaultSelector() as selector:  # epoll: select() stops at fd 1024
        for sock in idle:
            selector.register(sock, selectors.EVENT_READ)
        return len(idle) - len(selector.select(timeout=0))


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft limit on open files (inherited by servers it starts then)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"idle run: needs {needed} file descriptors, `ulimit -Hn` is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:7.1f} ms, max {max(samples) * 1000:7.1f} ms"


async def idle_run(port: int, server_pid: int, count: int = IDLE) -> None:
    """Open `count` idle clients to the MX on `port` and measure `server_pid` with them."""
    raise_fd_limit(count + 1_000)
    before = Memory.of(server_pid)
    alone = await _probes(port)
    idle, failures, opening = await _open_idle(port, count)
    try:
        held = Memory.of(server_pid)
        loaded = await _probes(port)
        open_at_end = _still_open(idle)
    finally:
        for sock in idle:
            sock.close()
    await asyncio.sleep(2)  # the server sees the EOFs and drops the sessions
    after = Memory.of(server_pid)
    print(f"  opened {len(idle)} of {count} idle connections in {opening:.1f} s", end="")
    print(f" ({len(failures)} failed; {open_at_end} still open after the probes)")
    for failure in sorted(set(failures))[:5]:
        print(f"    failure: {failure} (x{failures.count(failure)})")
    print(f"  {'':<34} {'new client: connect..QUIT':<40} {'VmRSS':>9} {'VmHWM':>9}")
    for label, samples, memory in (
        ("before the idle connections", alone, before),
        (f"with {len(idle)} idle connections", loaded, held),
    ):
        print(f"  {label:<34} {_ms(samples):<40} {memory.rss_mb:6.0f} MB {memory.peak_mb:6.0f} MB")
    print(f"  {'after closing them':<34} {'':<40} {after.rss_mb:6.0f} MB {after.peak_mb:6.0f} MB")
    generator = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  (load generator peak RSS {generator:.0f} MB)", flush=True)
