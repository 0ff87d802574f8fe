"""Load generators: SMTP senders and POP3 readers, asyncio, counted on completion."""

from __future__ import annotations

import asyncio
import poplib
import ssl
import time
from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True)
class Rate:
    label: str
    messages: int
    seconds: float
    nbytes: int

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.nbytes / self.seconds / 1e6


def message(size: int, n: int) -> bytes:
    head = f"From: load@bench.test\r\nTo: bench@example.test\r\nSubject: bench {n}\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head.encode() + body


async def _sender(
    port: int, rcpt: str, size: int, deadline: float, counter: list[int], first: int
) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60, start_tls=False)
    await client.connect()
    n = first
    try:
        while time.perf_counter() < deadline:
            await client.sendmail("load@bench.test", [rcpt], message(size, n))
            counter[0] += 1  # counted once the server answered 250 (stored)
            n += 1
    finally:
        await client.quit()


async def smtp_load(
    label: str, port: int, rcpt: str, size: int, connections: int, seconds: float
) -> Rate:
    counter = [0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_sender(port, rcpt, size, deadline, counter, k * 1_000_000) for k in range(connections))
    )
    elapsed = time.perf_counter() - start
    return Rate(label, counter[0], elapsed, counter[0] * size)


def pop3_retrieve(label: str, port: int, ca: ssl.SSLContext, user: str, password: str) -> Rate:
    client = poplib.POP3_SSL("127.0.0.1", port, context=ca, timeout=120)
    client.user(user)
    client.pass_(password)
    count, _ = client.stat()
    start = time.perf_counter()
    nbytes = 0
    for i in range(1, count + 1):
        _, _lines, octets = client.retr(i)
        nbytes += octets
    elapsed = time.perf_counter() - start
    client.quit()
    return Rate(label, count, elapsed, nbytes)


@dataclass(frozen=True)
class Submitter:
    """Where and as whom the submission load logs in: STARTTLS, then AUTH."""

    port: int
    tls: ssl.SSLContext
    user: str
    password: str


async def _logged_in(who: Submitter) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=who.port, timeout=60, start_tls=True, tls_context=who.tls
    )
    await client.connect()
    await client.login(who.user, who.password)
    return client


async def _submit_until(
    client: aiosmtplib.SMTP,
    who: Submitter,
    rcpt_domain: str,
    size: int,
    deadline: float,
    counter: list[int],
    first: int,
) -> None:
    n = first
    try:
        while time.perf_counter() < deadline:
            content = message(size, n).replace(b"load@bench.test", who.user.encode())
            await client.sendmail(who.user, [f"r{n}@{rcpt_domain}"], content)
            counter[0] += 1  # accepted: spooled and queued (fsynced), not yet relayed
            n += 1
    finally:
        await client.quit()


async def submission_load(
    who: Submitter, rcpt_domain: str, size: int, connections: int, seconds: float
) -> tuple[int, float]:
    """Messages accepted (250 after DATA) in `seconds`, and when sending started.

    The sessions log in one after the other first, as clients starting at different
    times would (each login is also a row in `login_attempts`, services/throttle.py).
    """
    clients = [await _logged_in(who) for _ in range(connections)]
    counter = [0]
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _submit_until(client, who, rcpt_domain, size, start + seconds, counter, k * 1_000_000)
            for k, client in enumerate(clients)
        )
    )
    return counter[0], start
