"""Panel latency with the seed's Bulk Hosting plan full: 40 domains and 400 accounts.

`python -m bench.panel` (or `BENCH_ONLY=panel make bench`) starts `mailhost serve`
(SQLite, a fresh data directory) and seeds, through the same services the CLI calls,
customer `bulk` on "Bulk Hosting" (40 domains, 2.5GB, 40GB, 400 accounts) with its 40
domains bulk1.test … bulk40.test; the worst domain for the lists, bulk1.test, holds all
its 400 accounts (250 users with a POP3 mailbox, 150 of them with an SMTP account too),
and 20 more customers of one domain each make the provider's lists longer. Then it logs
in as the provider, the customer and bulk1.test's manager, as a browser would (form,
CSRF, cookie), and asks each list page BENCH_REQUESTS times (default 200), one request
at a time, printing p50/p95/max in milliseconds. The target is p95 under 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mailhost.errors import PlanExists
from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import load_settings

OP = ProviderActor("bench")
PASSWORD = "panel bench secret 123"
DOMAINS = 40
MAILBOXES = 250
SMTP_ACCOUNTS = 150
OTHER_CUSTOMERS = 20
TARGET_MS = 50.0
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_LISTENING = re.compile(r"^\s+(?P<name>.+?)\s+127\.0\.0\.1:(?P<port>\d+)\s")

PAGES: dict[str, list[str]] = {
    "provider": [
        "/provider/",
        "/provider/customers",
        "/provider/customers?sort=storage&order=desc",
        "/provider/domains",
        "/provider/domains?q=bulk1&sort=customer",
    ],
    "customer": [
        "/customer/",
        "/customer/?q=bulk2",
        "/customer/audit",
        "/customer/audit?page=5",
    ],
    "domain": [
        "/domain/bulk1.test/users",
        "/domain/bulk1.test/users?page=5",
        "/domain/bulk1.test/users?q=user1",
        "/domain/bulk1.test/mailboxes",
        "/domain/bulk1.test/mailboxes?sort=used&order=desc",
        "/domain/bulk1.test/smtp",
        "/domain/bulk1.test/smtp?sort=facilities&page=2",
    ],
}
LOGINS = {"provider": "root", "customer": "bulk", "domain": "bulk1.test"}


def _env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = f"sqlite:///{database}"
    for key in ("MX", "SUBMISSION", "SUBMISSIONS", "POP3", "POP3S", "WEB"):
        env[f"MAILHOST_{key}_PORT"] = "0"
    return env


async def seed(data_dir: Path, env: dict[str, str]) -> None:
    async with Runtime(load_settings(None, data_dir, env)) as rt:
        accounts, users = rt.services.accounts, rt.services.users
        await rt.web_access.admins.add(OP, "root", "root@hosting.test", PASSWORD)
        storage = ByteSize.parse("2.5GB")
        bulk = PlanLimits(DOMAINS, storage, ByteSize.parse("40GB"), 400)
        for name, limits in (("Bulk Hosting", bulk), ("Small", PlanLimits(1, None, None, 10))):
            with contextlib.suppress(PlanExists):  # `init` defines the seed's plan
                await accounts.add_plan(OP, name, limits)
        await accounts.add_customer(OP, "bulk", "Bulk Hosting", "it@bulk.test", PASSWORD)
        for n in range(1, DOMAINS + 1):
            await accounts.add_domain(OP, DomainName.parse(f"bulk{n}.test"), "bulk", PASSWORD)
        quota = ByteSize(storage.bytes // MAILBOXES)
        for n in range(1, MAILBOXES + 1):
            address = EmailAddress.hosted(f"user{n}@bulk1.test")
            await users.add_user(OP, address, PASSWORD)
            await users.add_mailbox(OP, address, quota)
            if n <= SMTP_ACCOUNTS:
                facilities = SmtpFacilities(hourly_limit=n % 7 * 60 or None)
                await users.add_smtp_account(OP, address, facilities)
        for n in range(1, OTHER_CUSTOMERS + 1):
            await accounts.add_customer(OP, f"small{n}", "Small", f"it@small{n}.test", PASSWORD)
            await accounts.add_domain(OP, DomainName.parse(f"small{n}.test"), f"small{n}", PASSWORD)


def start(command: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], int]:
    with log.open("a") as stderr:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    assert process.stdout is not None
    for line in process.stdout:
        match = _LISTENING.match(line)
        if match and match.group("name") == "Web panel":
            return process, int(match.group("port"))
    raise SystemExit(f"{command} did not start its web panel")


def login(client: httpx.Client, level: str) -> None:
    form = client.get(f"/login/{level}")
    found = _CSRF.search(form.text)
    assert found, f"no login form at /login/{level}"
    data = {"csrf": found.group(1), "login": LOGINS[level], "password": PASSWORD}
    answer = client.post(f"/login/{level}", data=data)
    if answer.status_code != 303:
        raise SystemExit(f"{level} login failed: {answer.status_code}")


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    for _ in range(5):  # warm: templates compiled, caches filled
        client.get(path)
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code}")
    return times


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(port: int, requests: int) -> bool:
    """Print the table; True when every page's p95 is within the target."""
    within = True
    print(f"  {'page':<52} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for level, paths in PAGES.items():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            login(client, level)
            for path in paths:
                times = measure(client, path, requests)
                p95 = percentile(times, 0.95)
                within = within and p95 < TARGET_MS
                flag = "" if p95 < TARGET_MS else "  over the target"
                print(
                    f"  {level + ' ' + path:<52} {statistics.median(times):7.1f} "
                    f"{p95:7.1f} {max(times):7.1f}{flag}",
                    flush=True,
                )
    return within


def run(mailhost: list[str], env: dict[str, str], data_dir: Path) -> bool:
    """Seed the data dir `mailhost init` made, serve it and measure."""
    requests = int(os.environ.get("BENCH_REQUESTS", "200"))
    began = time.perf_counter()
    asyncio.run(seed(data_dir, env))
    print(
        f"panel: {DOMAINS} domains, {MAILBOXES + SMTP_ACCOUNTS} accounts seeded in "
        f"{time.perf_counter() - began:.0f} s; {requests} requests per page",
        flush=True,
    )
    server, port = start([*mailhost, "serve"], env, data_dir / "serve-panel.log")
    try:
        return report(port, requests)
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mailhost-bench-panel-") as tmp:
        data_dir = Path(tmp) / "data"
        env = _env(data_dir / "mailhost.db")
        mailhost = [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir)]
        subprocess.run(
            [*mailhost, "init", "--hostname", "bench.hosting.test"],
            env=env,
            check=True,
            capture_output=True,
        )
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            flush=True,
        )
        within = run(mailhost, env, data_dir)
    raise SystemExit(0 if within else 1)


if __name__ == "__main__":
    main()
