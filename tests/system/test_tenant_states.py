"""Domains proven before they receive, and disabling that works everywhere, against
`mailhost serve`: the panel over HTTP, the MX and submission over SMTP, POP3S, the CLI.

Customers: acme (contact boss@acme.test, owns example.test), beta (an honest second
customer) and mallory (hostile). `[dns] nameservers` points at a DNS server on
127.0.0.1 (tests/nameserver.py); acme.test and remote.test are routed to a sink.
"""

from __future__ import annotations

import asyncio
import json
import os
import poplib
import re
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from tests.conftest import cheap_passwords
from tests.nameserver import Nameserver
from tests.system.conftest import (
    HOSTNAME,
    OP,
    PASSWORD,
    PORT_KEYS,
    Pop3sClient,
    Server,
    ThreadSink,
    _populate,
)

MAIL_HOST = "mail.example.test"
MESSAGE = b"From: someone@remote.test\r\nSubject: hi\r\n\r\nHello\r\n"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _customers(data_dir: Path, env: dict[str, str]) -> None:
    await _populate(data_dir, env)
    async with Runtime(load_settings(None, data_dir, env), passwords=cheap_passwords()) as rt:
        for login in ("beta", "mallory"):
            await rt.services.accounts.add_customer(
                OP, login, "Bulk Hosting", f"{login}@contact.test", PASSWORD
            )


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, mail_sink: ThreadSink, nameserver: Nameserver
) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    route = f"127.0.0.1:{mail_sink.port}"
    env["MAILHOST_DELIVERY_ROUTES"] = f"acme.test={route},remote.test={route}"
    env |= nameserver.environ(timeout_seconds=2)
    for key in PORT_KEYS:
        env[f"MAILHOST_{key}_PORT"] = "0"
    mailhost(data_dir, env, "init", "--hostname", HOSTNAME)
    asyncio.run(_customers(data_dir, env))
    running = Server(data_dir, env)
    running.start()
    yield running
    running.stop()


def mailhost(data_dir: Path, env: dict[str, str], *args: str) -> str:
    done = run(data_dir, env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli(server: Server, *args: str) -> str:
    return mailhost(server.data_dir, server.env, *args)


class Browser:
    """httpx without JavaScript: cookies kept, every form's CSRF token echoed."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.csrf = ""

    def get(self, url: str) -> httpx.Response:
        return self._seen(self.client.get(url))

    def post(self, url: str, **fields: str) -> httpx.Response:
        return self._seen(self.client.post(url, data={"csrf": self.csrf, **fields}))

    def _seen(self, response: httpx.Response) -> httpx.Response:
        match = _CSRF.search(response.text)
        if match:
            self.csrf = match.group(1)
        return response

    def login(self, level: str, login: str) -> httpx.Response:
        self.get(f"/login/{level}")
        return self.post(f"/login/{level}", login=login, password=PASSWORD)


class Browsers:
    """Opens browsers on the server's panel and closes them all at the end of the test."""

    def __init__(self, server: Server) -> None:
        self._base = f"http://127.0.0.1:{server.ports['Web panel']}"
        self._clients: list[httpx.Client] = []

    def new(self) -> Browser:
        self._clients.append(httpx.Client(base_url=self._base, timeout=30))
        return Browser(self._clients[-1])

    def logged_in(self, level: str, login: str) -> Browser:
        browser = self.new()
        assert browser.login(level, login).status_code == 303
        return browser

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def browsers(server: Server) -> Iterator[Browsers]:
    opened = Browsers(server)
    yield opened
    opened.close()


def add_domain_with_user(browser: Browser, domain: str, username: str) -> None:
    """What a customer does in the panel: the domain, then a user with a mailbox."""
    browser.get("/customer/")
    assert browser.post("/customer/domains", name=domain, password=PASSWORD).status_code == 303
    browser.get(f"/domain/{domain}/users")
    added = browser.post(f"/domain/{domain}/users", username=username, password=PASSWORD)
    assert added.status_code == 303
    browser.get(f"/domain/{domain}/mailboxes")
    added = browser.post(f"/domain/{domain}/mailboxes", username=username, quota="100MB")
    assert added.status_code == 303


def rcpt(server: Server, address: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        smtp.mail("someone@remote.test")
        return smtp.rcpt(address)


def deliver(server: Server, address: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["MX (SMTP)"], timeout=30) as smtp:
        smtp.ehlo("remote.test")
        smtp.sendmail("someone@remote.test", [address], MESSAGE)


def pop3_count(server: Server, user: str) -> int:
    client = Pop3sClient(server.ports["POP3S"], server.tls(), MAIL_HOST)
    try:
        client.user(user)
        client.pass_(PASSWORD)
        return int(client.stat()[0])
    finally:
        client.close()


def pop3_refused(server: Server, user: str) -> bytes:
    with pytest.raises(poplib.error_proto) as caught:
        pop3_count(server, user)
    return bytes(caught.value.args[0])


def submission_login(server: Server, user: str) -> tuple[int, bytes | str]:
    with smtplib.SMTP("127.0.0.1", server.ports["Submission"], timeout=30) as smtp:
        smtp.ehlo("client.test")
        # smtplib checks the certificate against the connect() host.
        smtp._host = MAIL_HOST  # type: ignore[attr-defined]
        smtp.starttls(context=server.tls())
        smtp.ehlo("client.test")
        try:
            return smtp.login(user, PASSWORD)
        except smtplib.SMTPAuthenticationError as refused:
            return refused.smtp_code, refused.smtp_error


def test_a_customer_cannot_take_over_another_through_its_contact_domain(
    server: Server, mail_sink: ThreadSink, browsers: Browsers
) -> None:
    """mallory adds acme.test, where acme's contact boss@acme.test lives, and a mailbox for
    boss, then asks for acme's password reset: the link must go to the real acme.test."""
    mallory = browsers.logged_in("customer", "mallory")
    add_domain_with_user(mallory, "acme.test", "boss")
    assert "status-pending" in mallory.get("/customer/").text
    assert rcpt(server, "boss@acme.test") == (554, b"5.7.1 <boss@acme.test>: relay access denied")
    anyone = browsers.new()
    anyone.get("/forgot/customer")
    assert anyone.post("/forgot/customer", login="acme").status_code == 200
    ((_sender, recipients, data),) = mail_sink.wait_for(1)
    assert recipients == ["boss@acme.test"]
    assert b"/reset/" in data
    boxes = json.loads(cli(server, "mailbox", "list", "acme.test", "--json"))
    assert boxes == [{"address": "boss@acme.test", "quota": 100_000_000, "used": 0}]
    assert b"-ERR [AUTH]" in pop3_refused(server, "boss@acme.test")


def test_a_pending_domain_receives_once_its_customer_shows_the_proof(
    server: Server, nameserver: Nameserver, browsers: Browsers
) -> None:
    beta = browsers.logged_in("customer", "beta")
    add_domain_with_user(beta, "beta.test", "ann")
    assert rcpt(server, "ann@beta.test")[0] == 554
    page = beta.get("/domain/beta.test/dns")
    found = re.search(r"mailhost-verification=([0-9a-f]{32})", page.text)
    assert found is not None
    token = found.group(1)
    checked = beta.post("/domain/beta.test/dns/verify")
    assert checked.status_code == 409
    assert (
        f"no TXT record mailhost-verification={token} found at beta.test; publish it and "
        "check again (DNS changes can take an hour)"
    ) in checked.text
    nameserver.publish_txt("beta.test", f"mailhost-verification={token}")
    verified = beta.post("/domain/beta.test/dns/verify")
    assert (verified.status_code, verified.headers["location"]) == (
        303,
        "/domain/beta.test/dns?done=domain_verified",
    )
    assert "status-verified" in beta.get("/customer/").text
    deliver(server, "ann@beta.test")  # refusals are never cached: accepted at once
    assert pop3_count(server, "ann@beta.test") == 1


def test_the_cli_verifies_a_pending_domain_or_trusts_it(
    server: Server, nameserver: Nameserver, browsers: Browsers
) -> None:
    beta = browsers.logged_in("customer", "beta")
    for domain in ("one.test", "two.test"):
        add_domain_with_user(beta, domain, "ann")
    listed = {d["domain"]: d["status"] for d in json.loads(cli(server, "domain", "list", "--json"))}
    assert listed == {"example.test": "verified", "one.test": "pending", "two.test": "pending"}
    refused = run(server.data_dir, server.env, "domain", "verify", "one.test")
    assert refused.returncode == 1
    assert "error: no TXT record mailhost-verification=" in refused.stderr
    token = re.search(r"mailhost-verification=([0-9a-f]{32})", refused.stderr)
    assert token is not None
    nameserver.publish_txt("one.test", token.group(0))
    assert "domain one.test is verified" in cli(server, "domain", "verify", "one.test")
    assert "domain two.test is verified" in cli(server, "domain", "verify", "two.test", "--trust")
    listed = {d["domain"]: d["status"] for d in json.loads(cli(server, "domain", "list", "--json"))}
    assert listed == {"example.test": "verified", "one.test": "verified", "two.test": "verified"}
    for domain in ("one.test", "two.test"):
        deliver(server, f"ann@{domain}")
        assert pop3_count(server, f"ann@{domain}") == 1


@pytest.mark.parametrize(("level", "target"), [("domain", "example.test"), ("customer", "acme")])
def test_disabling_stops_mail_and_logins_everywhere_until_enabled(
    server: Server, browsers: Browsers, level: str, target: str
) -> None:
    cli(server, level, "disable", target)
    # Nobody has sent to bob in this server's life, so no cached answer stands in the way.
    assert rcpt(server, "bob@example.test") == (
        450,
        b"4.2.1 <bob@example.test>: mailbox temporarily unavailable",
    )
    assert b"-ERR [AUTH]" in pop3_refused(server, "bob@example.test")
    assert submission_login(server, "alice@example.test")[0] == 535
    assert browsers.new().login("user", "bob@example.test").status_code != 303
    assert browsers.new().login("domain", "example.test").status_code != 303
    if level == "customer":
        assert browsers.new().login("customer", "acme").status_code != 303
    cli(server, level, "enable", target)
    deliver(server, "bob@example.test")
    assert pop3_count(server, "bob@example.test") == 1
    assert submission_login(server, "alice@example.test")[0] == 235
    assert browsers.new().login("user", "bob@example.test").status_code == 303
    assert browsers.new().login("domain", "example.test").status_code == 303
