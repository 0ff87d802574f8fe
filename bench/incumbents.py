"""Side by side with Postfix + Dovecot (BENCH_ONLY=...,compare): the same load generator
(bench/load.py) against mailhost and then against the incumbents, scenario by scenario, so
that both see the same machine at about the same time.

bench/incumbents_setup.sh installs Postfix and Dovecot from Debian when they are missing and
starts private instances in a temporary directory: Postfix as the MX and submission
(STARTTLS, SASL through Dovecot) on high ports of 127.0.0.1, delivering example.test to
Maildirs with virtual(8) (fsync) and relaying remote.bench.test to the bench's counting
sink; Dovecot serving those Maildirs over POP3S with an auth cache. If they cannot be
installed or started, the comparison says why and the rest of the bench runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.load import Rate, Submitter, pop3_retrieve, smtp_load, submission_load
from bench.sink import Counting, serve_counting

SETUP = Path(__file__).with_name("incumbents_setup.sh")
CONNECTIONS = (1, 16, 64)
RELAY_WAIT = 120.0  # seconds a side's accepted messages may take to reach the sink


@dataclass(frozen=True)
class Side:
    """One mail system under load: where its MX, submission and POP3S listen."""

    name: str
    mx: int
    submission: int
    pop3s: int
    tls: ssl.SSLContext


@dataclass(frozen=True)
class Accounts:
    """The bench's accounts, created on both sides with the same password."""

    mailboxes: Sequence[str]  # local parts at example.test: small (1 KB), large (100 KB)
    sender: str  # submits to the relay domain
    password: str
    relay_domain: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(ports: Sequence[int], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _incumbent_tls(cert: Path) -> ssl.SSLContext:
    # The setup script's self-signed certificate is the only trusted one; connecting by IP.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    return context


def _setup(command: list[str], log: Path) -> str | None:
    """Run the setup script; None if it succeeded, else why not (its last lines).

    Its output goes to a file, not a pipe: the daemons it starts inherit the descriptors
    and keep them open, so a pipe would never reach end of file."""
    with log.open("w") as out:
        code = subprocess.run(
            ["sh", *command], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=900
        ).returncode
    if code == 0:
        return None
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    return f"setup exited with {code}: " + " | ".join(tail)


@contextlib.contextmanager
def incumbents(relay_port: int, accounts: Accounts) -> Iterator[Side | None]:
    """Postfix + Dovecot running for the duration, or None (and the reason printed)."""
    if os.geteuid() != 0:
        print("  comparison skipped: installing and starting Postfix/Dovecot needs root")
        yield None
        return
    directory = Path(tempfile.mkdtemp(prefix="mailhost-bench-incumbents-"))
    mx, submission, pop3, pop3s = (_free_port() for _ in range(4))
    users = [f"{name}@example.test" for name in accounts.mailboxes] + [accounts.sender]
    command = [str(SETUP), "start", str(directory), *map(str, (mx, submission, pop3, pop3s))]
    command += [str(relay_port), accounts.password, *users]
    try:
        why_not = _setup(command, directory / "setup.log")
        if why_not is not None:
            print(f"  comparison skipped: {why_not}", flush=True)
            yield None
            return
        try:
            _wait_listening((mx, submission, pop3s))
        except OSError as error:
            print(f"  comparison skipped: Postfix/Dovecot not listening ({error})", flush=True)
            yield None
            return
        tls = _incumbent_tls(directory / "cert.pem")
        yield Side("Postfix/Dovecot", mx, submission, pop3s, tls)
    finally:
        stop = ["sh", str(SETUP), "stop", str(directory)]
        subprocess.run(stop, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def _pair(label: str, ours: Rate, theirs: Rate) -> str:
    ratio = ours.per_second / theirs.per_second if theirs.messages else float("nan")
    return f"  {label:<40} {ours.per_second:8.1f} vs {theirs.per_second:8.1f} msg/s  {ratio:5.2f}"


async def _mx(side: Side, size: int, user: str, connections: int, seconds: float) -> Rate:
    label = f"{side.name} MX {size // 1000} KB x {connections}"
    return await smtp_load(label, side.mx, f"{user}@example.test", size, connections, seconds)


async def _relayed(
    side: Side, counting: Counting, accounts: Accounts, connections: int, seconds: float
) -> Rate:
    """Messages/s from the first submission to the last arrival at the sink (the next hop)."""
    who = Submitter(side.submission, side.tls, accounts.sender, accounts.password)
    before, nbytes = counting.messages, counting.nbytes
    accepted, start = await submission_load(who, accounts.relay_domain, 1_000, connections, seconds)
    with contextlib.suppress(TimeoutError):  # what arrived by then is what counts
        async with asyncio.timeout(RELAY_WAIT):
            await counting.wait_for(before + accepted)
    relayed = counting.messages - before
    elapsed = max(counting.last_arrival - start, 1e-9)
    return Rate(f"{side.name} relayed", relayed, elapsed, counting.nbytes - nbytes)


async def _pop3(side: Side, user: str, password: str) -> Rate:
    label = f"{side.name} POP3S RETR"
    return await asyncio.to_thread(
        pop3_retrieve, label, side.pop3s, side.tls, f"{user}@example.test", password
    )


async def _compare(
    ours: Side, theirs: Side, accounts: Accounts, relay_sink: socket.socket, seconds: float
) -> None:
    small, large = accounts.mailboxes[0], accounts.mailboxes[1]
    print(f"  {'scenario':<40} {'mailhost':>8} vs {'theirs':>8}        {'ratio':>5}", flush=True)
    for size, user in ((1_000, small), (100_000, large)):
        for connections in CONNECTIONS:
            a = await _mx(ours, size, user, connections, seconds)
            b = await _mx(theirs, size, user, connections, seconds)
            label = f"MX {size // 1000} KB x {connections} conn, until stored"
            print(_pair(label, a, b), flush=True)
    # A duplicate of the bound socket: the submission run closes its own server on it.
    counting, server = await serve_counting(relay_sink.dup())
    try:
        for connections in CONNECTIONS:
            a = await _relayed(ours, counting, accounts, connections, seconds)
            b = await _relayed(theirs, counting, accounts, connections, seconds)
            label = f"submission 1 KB x {connections} conn, relayed"
            print(_pair(label, a, b), flush=True)
    finally:
        server.close()
        await server.wait_closed()
    a = await _pop3(ours, small, accounts.password)
    b = await _pop3(theirs, small, accounts.password)
    print(_pair("POP3S 1 KB, one session, RETR all", a, b), flush=True)


def compare_run(ours: Side, accounts: Accounts, relay_sink: socket.socket, seconds: float) -> None:
    """Every scenario against `ours`, then against Postfix/Dovecot; ratio = ours ÷ theirs."""
    print("Side by side with Postfix + Dovecot (msg/s; ratio = mailhost ÷ Postfix/Dovecot)")
    with incumbents(relay_sink.getsockname()[1], accounts) as theirs:
        if theirs is not None:
            asyncio.run(_compare(ours, theirs, accounts, relay_sink, seconds))
