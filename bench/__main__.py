"""`make bench`: MX delivery, POP3 retrieval and authenticated submission.

Starts `mailhost serve` (SQLite, a fresh data directory, ephemeral ports) and a
discarding aiosmtpd sink in separate processes, drives both with the same
asyncio load generator, and prints messages/s and mailhost as a fraction of
the sink. Submission runs STARTTLS + AUTH PLAIN sessions that each send
message after message to a domain routed ([delivery] routes) to a counting
sink in this process; a message counts when it has reached the sink (spooled,
queued, DKIM-signed and relayed by the worker). BENCH_SECONDS sets the length
of each run (default 10); BENCH_ONLY=mx,pop3,submission,idle picks runs, and
BENCH_ONLY=panel runs bench/panel.py's panel latency run in the same data directory.
BENCH_ONLY=...,compare adds bench/incumbents.py's run: each scenario against mailhost and
then against Postfix + Dovecot (installed and configured by bench/incumbents_setup.sh).
The idle run (bench/idle.py) starts a `mailhost serve` of its own, with room
for 20,000 MX sessions, holds 10,000 idle connections to its MX and measures
new clients and the server's memory meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.idle import IDLE, idle_run, raise_fd_limit
from bench.incumbents import Accounts, Side, compare_run
from bench.load import Rate, Submitter, pop3_retrieve, smtp_load, submission_load
from bench.panel import run as panel_run
from bench.sink import serve_counting
from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from mailhost.tls.contexts import client_context

OP = ProviderActor("bench")
PASSWORD = "load generator secret 123"
USERS = ("small", "large")
SENDER = "sender@example.test"  # holds an SMTP account (relay, no limits)
RELAY_DOMAIN = "remote.bench.test"  # routed to the counting sink
_LISTENING = re.compile(r"^\s+(?P<name>.+?)\s+127\.0\.0\.1:(?P<port>\d+)\s")


def _env(database: Path) -> dict[str, str]:
    # MAILHOST_LOG_* passes through: the cost of the per-message log line can be measured.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MAILHOST_") or k.startswith("MAILHOST_LOG_")
    }
    env["MAILHOST_DATABASE_URL"] = f"sqlite:///{database}"
    for key in ("MX", "SUBMISSION", "SUBMISSIONS", "POP3", "POP3S", "WEB"):
        env[f"MAILHOST_{key}_PORT"] = "0"
    # Every load connection comes from 127.0.0.1: the per-client limit (50) is not measured.
    for key in ("MX", "SUBMISSION", "SUBMISSIONS"):
        env[f"MAILHOST_{key}_MAX_CONNECTIONS_PER_CLIENT"] = "1000"
    return env


async def _populate(data_dir: Path, env: dict[str, str]) -> None:
    async with Runtime(load_settings(None, data_dir, env)) as rt:
        # No limits: the load must never meet a quota (a plan with a storage limit would
        # want one on every mailbox) or the monthly transfer, whatever its length.
        await rt.services.accounts.add_plan(OP, "Bench", PlanLimits(None, None, None, None))
        await rt.services.accounts.add_customer(OP, "bench", "Bench", "b@bench.test", PASSWORD)
        await rt.services.accounts.add_domain(
            OP, DomainName.parse("example.test"), "bench", PASSWORD
        )
        for name in USERS:
            address = EmailAddress.hosted(f"{name}@example.test")
            await rt.services.users.add_user(OP, address, PASSWORD)
            await rt.services.users.add_mailbox(OP, address, None)
        sender = EmailAddress.hosted(SENDER)
        await rt.services.users.add_user(OP, sender, PASSWORD)
        await rt.services.users.add_smtp_account(OP, sender, SmtpFacilities())


def _start(
    command: list[str], env: dict[str, str], log: Path | None = None
) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """Start `command`; serve's log (a line per message at info) goes to `log`, so that it
    is written as in production but does not fill the report."""
    stderr = None if log is None else log.open("a")
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    ports: dict[str, int] = {}
    for line in process.stdout:
        if line.strip().isdigit():
            return process, {"sink": int(line)}
        match = _LISTENING.match(line)
        if match:
            ports[match.group("name")] = int(match.group("port"))
        if "CA certificate" in line:
            return process, ports
    raise SystemExit(f"{command} did not start")


def _row(rate: Rate, ceiling: Rate | None = None) -> str:
    fraction = f"{rate.per_second / ceiling.per_second:6.0%}" if ceiling else "      "
    return (
        f"  {rate.label:<44} {rate.per_second:9.1f} msg/s {rate.mb_per_second:8.2f} MB/s {fraction}"
    )


async def _mx_runs(mx: int, sink: int, seconds: float) -> list[str]:
    lines = []
    for size, user in ((1_000, "small"), (100_000, "large")):
        for connections in (1, 50):
            what = f"{size // 1000} KB x {connections} conn"
            ceiling = await smtp_load(
                f"sink       {what}", sink, "x@sink.test", size, connections, seconds
            )
            ours = await smtp_load(
                f"mailhost MX {what}", mx, f"{user}@example.test", size, connections, seconds
            )
            lines += [_row(ceiling), _row(ours, ceiling)]
            print(lines[-2], lines[-1], sep="\n", flush=True)
    return lines


async def _submission_runs(
    port: int, sink: socket.socket, tls: ssl.SSLContext, seconds: float
) -> None:
    counting, server = await serve_counting(sink)
    who = Submitter(port, tls, SENDER, PASSWORD)
    try:
        for connections in (1, 10):
            before, nbytes = counting.messages, counting.nbytes
            accepted, start = await submission_load(who, RELAY_DOMAIN, 1_000, connections, seconds)
            sending = time.perf_counter() - start
            with contextlib.suppress(TimeoutError):  # what arrived by then is what counts
                async with asyncio.timeout(120):
                    await counting.wait_for(before + accepted)
            relayed = counting.messages - before
            what = f"1 KB x {connections} conn"
            taken = Rate(f"submission {what}: accepted (250)", accepted, sending, accepted * 1_000)
            print(_row(taken))
            elapsed = max(counting.last_arrival - start, 1e-9)
            rate = Rate(
                f"submission {what}: relayed to sink", relayed, elapsed, counting.nbytes - nbytes
            )
            print(_row(rate), flush=True)
    finally:
        server.close()
        await server.wait_closed()


def _listening_socket() -> socket.socket:
    """Bound before mailhost starts, so its route can name the port; served later."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def _idle_runs(mailhost: list[str], env: dict[str, str], data_dir: Path) -> None:
    """A serve of its own: the memory measured is the idle sessions', not the other runs'."""
    env = {
        **env,
        "MAILHOST_MX_MAX_CONNECTIONS": "20000",
        "MAILHOST_MX_MAX_CONNECTIONS_PER_CLIENT": "20000",
    }
    raise_fd_limit(2 * IDLE)  # before the start: the server inherits it
    server, ports = _start([*mailhost, "serve"], env, data_dir / "serve-idle.log")
    try:
        print(f"Idle MX connections ({IDLE}, greeted, then silent; MX idle timeout 300 s)")
        asyncio.run(idle_run(ports["MX (SMTP)"], server.pid))
    finally:
        server.terminate()
        server.wait(60)


def _throughput_runs(
    mailhost: list[str],
    env: dict[str, str],
    data_dir: Path,
    relay_sink: socket.socket,
    only: set[str],
    seconds: float,
) -> None:
    server, ports = _start([*mailhost, "serve"], env, data_dir / "serve.log")
    sink, sink_port = _start([sys.executable, "-m", "bench.sink"], env)
    try:
        tls = client_context(data_dir / "ca" / "ca.pem")
        tls.check_hostname = False  # connecting by IP; the chain is still verified
        if "mx" in only:
            print("MX delivery (durable: counted after 250, once synced in the Maildir)")
            asyncio.run(_mx_runs(ports["MX (SMTP)"], sink_port["sink"], seconds))
        if "pop3" in only:
            print("POP3 retrieval over TLS (one session, RETR of every message)")
            for user in USERS:
                rate = pop3_retrieve(
                    f"POP3S RETR {user}", ports["POP3S"], tls, f"{user}@example.test", PASSWORD
                )
                print(_row(rate), flush=True)
        if "submission" in only:
            print("Submission (STARTTLS, AUTH PLAIN, several messages per session)")
            asyncio.run(_submission_runs(ports["Submission"], relay_sink, tls, seconds))
        if "compare" in only:
            ours = Side("mailhost", ports["MX (SMTP)"], ports["Submission"], ports["POP3S"], tls)
            accounts = Accounts(USERS, SENDER, PASSWORD, RELAY_DOMAIN)
            compare_run(ours, accounts, relay_sink, seconds)
    finally:
        sink.terminate()
        server.terminate()
        server.wait(30)


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    with tempfile.TemporaryDirectory(prefix="mailhost-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        env = _env(data_dir / "mailhost.db")
        relay_sink = _listening_socket()
        env["MAILHOST_DELIVERY_ROUTES"] = f"{RELAY_DOMAIN}=127.0.0.1:{relay_sink.getsockname()[1]}"
        only = set(os.environ.get("BENCH_ONLY", "mx,pop3,submission,idle").split(","))
        mailhost = [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir)]
        subprocess.run(
            [*mailhost, "init", "--hostname", "bench.hosting.test"],
            env=env,
            check=True,
            capture_output=True,
        )
        asyncio.run(_populate(data_dir, env))
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; {seconds:.0f} s per run",
            flush=True,
        )
        try:
            if only & {"mx", "pop3", "submission", "compare"}:
                _throughput_runs(mailhost, env, data_dir, relay_sink, only, seconds)
            if "idle" in only:
                _idle_runs(mailhost, env, data_dir)
            if "panel" in only:  # not by default: seeding 400 accounts takes a minute
                panel_run(mailhost, env, data_dir)
        finally:
            relay_sink.close()


if __name__ == "__main__":
    main()
