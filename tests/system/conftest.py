"""A real `mailhost serve` in a subprocess, on ephemeral ports, with demo accounts.

The accounts are made in-process through the services (fast), then the server
process is started and its printed addresses are read back.
"""

from __future__ import annotations

import asyncio
import os
import poplib
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from aiosmtpd.smtp import SMTP, Envelope

from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.quotas import MIN_QUOTA
from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from mailhost.tls.contexts import client_context
from tests.conftest import cheap_passwords
from tests.quotas import add_small_mailbox

OP = ProviderActor("system-test")
PASSWORD = "correct horse battery"
HOSTNAME = "mx.hosting.test"
PORT_KEYS = ("MX", "SUBMISSION", "SUBMISSIONS", "POP3", "POP3S", "WEB")
_LISTENING = re.compile(r"^\s+(?P<name>.+?)\s+(?P<host>127\.0\.0\.1):(?P<port>\d+)\s")


class Pop3sClient(poplib.POP3_SSL):
    """poplib's POP3_SSL, but checking the certificate for `server_name` (SNI) not the IP."""

    def __init__(self, port: int, context: ssl.SSLContext, server_name: str) -> None:
        self.server_name = server_name
        super().__init__("127.0.0.1", port, context=context, timeout=30)

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.server_name)


def stls(client: poplib.POP3, context: ssl.SSLContext, server_name: str) -> None:
    """poplib's stls() with the certificate checked for `server_name`."""
    client._shortcmd("STLS")
    client.sock = context.wrap_socket(client.sock, server_hostname=server_name)
    client.file = client.sock.makefile("rb")
    client._tls_established = True


@dataclass
class Server:
    data_dir: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    # What serve wrote after its banner (stdout and stderr, the log), read as it comes:
    # a pipe nobody reads would stop the server once its buffer is full.
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca" / "ca.pem"

    def tls(self) -> ssl.SSLContext:
        return client_context(self.ca_file)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailhost", "--data-dir", str(self.data_dir), "serve"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.ports = {}
        seen: list[str] = []
        for line in self.process.stdout:
            seen.append(line)
            match = _LISTENING.match(line)
            if match:
                self.ports[match.group("name")] = int(match.group("port"))
            if "CA certificate" in line:
                break
        else:
            raise AssertionError("server did not start:\n" + "".join(seen))
        self.output = []
        self.reader = threading.Thread(
            target=_drain, args=(self.process.stdout, self.output), daemon=True
        )
        self.reader.start()

    def _collected(self) -> str:
        """The output after the banner; call once the process has ended."""
        if self.reader is not None:
            self.reader.join(15)
            self.reader = None
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        return "".join(self.output)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._collected()
        self.process = None

    def stop(self) -> str:
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        output = self._collected()
        self.process = None
        return output

    def maildir(self, address: str) -> Path:
        """The address's Maildir, `<local>.<its mailbox's storage key>`: found on disk,
        so a path that does not exist if the mailbox has none yet."""
        local, domain = address.split("@")
        found = list((self.data_dir / "mail" / domain).glob(f"{local}.{'[0-9a-f]' * 32}"))
        assert len(found) <= 1, found
        return found[0] if found else self.data_dir / "mail" / domain / f"{local}.none-yet"


def _drain(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


# tiny has 3KB of room left, full none: recorded as holding the rest of the smallest
# quota (tests/quotas.py), which acme's storage usage counts.
ROOM = {"tiny": 3000, "full": 0}
PREFILLED = sum(MIN_QUOTA.bytes - room for room in ROOM.values())


async def _populate(data_dir: Path, env: dict[str, str]) -> None:
    settings = load_settings(None, data_dir, env)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        await rt.services.accounts.add_customer(
            OP, "acme", "Bulk Hosting", "boss@acme.test", PASSWORD
        )
        await rt.services.accounts.add_domain(
            OP, DomainName.parse("example.test"), "acme", PASSWORD
        )
        users = rt.services.users
        for name, room in (("alice", None), ("bob", None), *ROOM.items()):
            address = EmailAddress.hosted(f"{name}@example.test")
            await users.add_user(OP, address, PASSWORD)
            if room is None:
                await users.add_mailbox(OP, address, ByteSize.parse("100MB"))
            else:
                await add_small_mailbox(rt, address, room)
        await users.add_user(OP, EmailAddress.hosted("nobox@example.test"), PASSWORD)
        await users.add_smtp_account(
            OP, EmailAddress.hosted("alice@example.test"), SmtpFacilities()
        )


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    env["MAILHOST_MX_MAX_MESSAGE_SIZE"] = "12MB"
    for key in PORT_KEYS:
        env[f"MAILHOST_{key}_PORT"] = "0"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mailhost",
            "--data-dir",
            str(data_dir),
            "init",
            "--hostname",
            HOSTNAME,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    asyncio.run(_populate(data_dir, env))
    running = Server(data_dir, env)
    running.start()
    yield running
    running.stop()


@dataclass
class ThreadSink:
    """An aiosmtpd SMTP server (not our code) on 127.0.0.1 in a thread, keeping what it gets.

    The server under test is another process, so the sink cannot share the test's loop.
    """

    port: int
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        with self.arrived:
            self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
            self.arrived.notify_all()
        return "250 2.0.0 accepted by sink"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, list[str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


@pytest.fixture
def mail_sink() -> Iterator[ThreadSink]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="mail sink", daemon=True)
    thread.start()
    sink = ThreadSink(0)

    async def listen() -> asyncio.Server:
        return await loop.create_server(
            lambda: SMTP(sink, hostname="sink.test", decode_data=False, loop=loop),
            "127.0.0.1",
            0,
        )

    listening = asyncio.run_coroutine_threadsafe(listen(), loop).result(10)
    sink.port = listening.sockets[0].getsockname()[1]
    yield sink

    async def close() -> None:
        listening.close()
        await listening.wait_closed()

    asyncio.run_coroutine_threadsafe(close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def mail_out_server(tmp_path: Path, database_url: str, mail_sink: ThreadSink) -> Iterator[Server]:
    """Like `server`, with remote.test and far.test routed to `mail_sink` ([delivery] routes)."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    route = f"127.0.0.1:{mail_sink.port}"
    env["MAILHOST_DELIVERY_ROUTES"] = f"remote.test={route},far.test={route}"
    env["MAILHOST_AUTH_PENALTY_MAX_SECONDS"] = "0.2"
    for key in PORT_KEYS:
        env[f"MAILHOST_{key}_PORT"] = "0"
    init = ["init", "--hostname", HOSTNAME]
    subprocess.run(
        [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir), *init],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    asyncio.run(_populate(data_dir, env))
    running = Server(data_dir, env)
    running.start()
    yield running
    running.stop()
