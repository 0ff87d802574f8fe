"""`mailhost init --demo` is honest: Forgot password of every demo login mails a link to the
demo mailbox, which the printed login reads over POP3S; and `init` without --hostname says
which name it chose and why."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mailhost.cli.setup import DEMO_INBOX, FALLBACK_HOSTNAME, choose_hostname
from mailhost.runtime import Runtime
from mailhost.web.app import create_web_app
from mailhost.web.dns_check import DnsChecker
from tests.serving import HOSTNAME, serving, serving_settings
from tests.web.conftest import Panel

LINK = re.compile(r"(https?://\S+/reset/(\S+))")
# The printed lines: "  demo mailbox     demo@example.test / PASSWORD".
LOGIN_LINE = re.compile(r"^\s+(?P<what>[a-zA-Z ,0-9]+?)\s{2,}(?P<login>\S+) / (?P<secret>\S+)$")


def mailhost(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    return {**env, "COLUMNS": "200", **extra}


def printed_logins(text: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in text.splitlines():
        match = LOGIN_LINE.match(line)
        if match:
            found[match.group("what")] = (match.group("login"), match.group("secret"))
    return found


async def pop3s_messages(port: int, ca: Path, login: str, secret: str) -> list[bytes]:
    """Every message of the mailbox, read over POP3S as the printed curl command does:
    the demo CA, SNI and host name check for mail.example.test."""
    context = ssl.create_default_context(cafile=str(ca))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="mail.example.test"
    )

    async def command(line: str, *, multiline: bool = False) -> bytes:
        if line:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()
        status = await reader.readline()
        assert status.startswith(b"+OK"), (line.split(" ")[0], status)
        if not multiline:
            return status
        body = []
        while (chunk := await reader.readline()) != b".\r\n":
            body.append(chunk[1:] if chunk.startswith(b"..") else chunk)
        return b"".join(body)

    try:
        await command("")  # the greeting
        await command(f"USER {login}")
        await command(f"PASS {secret}")
        count = int((await command("STAT")).split()[1])
        return [await command(f"RETR {n}", multiline=True) for n in range(1, count + 1)]
    finally:
        writer.write(b"QUIT\r\n")
        writer.close()


async def test_forgot_password_of_every_demo_login_reaches_the_demo_mailbox(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = clean_env(MAILHOST_DATABASE_URL=database_url)
    made = mailhost(data_dir, env, "init", "--hostname", HOSTNAME, "--demo")
    assert made.returncode == 0, made.stderr
    kept = (data_dir / "demo-logins.txt").read_text()
    assert kept in made.stdout  # printed, and kept in the data directory
    logins = printed_logins(kept)
    inbox, inbox_secret = logins["demo mailbox"]
    assert inbox == DEMO_INBOX
    assert f"mails its reset link to {DEMO_INBOX}" in " ".join(kept.split())
    assert f"--user '{DEMO_INBOX}:{inbox_secret}' pop3s://mail.example.test:" in kept

    settings = serving_settings(data_dir, database_url, "0.2")
    async with Runtime(settings) as runtime:
        app = create_web_app(runtime, dns_checker=DnsChecker(["127.0.0.1"], port=9, timeout=0.3))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50010))
        levels = {
            "provider": logins["provider admin"][0],
            "customer": logins["customer panel"][0],
            "domain": logins["domain panel"][0],
            "user": logins["user with SMTP"][0],
        }
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            panel = Panel(client)
            for level, login in levels.items():
                await panel.get(f"/forgot/{level}")
                answer = await panel.post(f"/forgot/{level}", login=login)
                assert answer.status_code == 200
            await runtime.web_access.resets.drain()
            async with serving(runtime) as ports:
                raw = await pop3s_messages(
                    ports["POP3S"], data_dir / "ca" / "ca.pem", inbox, inbox_secret
                )
            assert len(raw) == len(levels)
            links = {}
            for data in raw:
                message = email.message_from_bytes(data, policy=email.policy.default)
                assert isinstance(message, email.message.EmailMessage)
                assert message["To"] == DEMO_INBOX
                body = message.get_body(("plain",))
                assert body is not None
                text = body.get_content()
                kind = re.search(r"password of the (\w+) login", text)
                found = LINK.search(text)
                assert kind and found, text
                links[kind.group(1)] = found.group(2)
                # Read raw (as curl shows it), the link is whole: no quoted-printable breaks.
                assert found.group(1).encode() in data
            assert set(links) == set(levels)
            # The link works: the reset form of that login opens.
            form = await panel.get(f"/reset/{links['user']}")
            assert form.status_code == 200 and "alice" in form.text


def test_init_says_which_host_name_it_chose_and_why(tmp_path: Path) -> None:
    """Whatever this machine's name: the line init prints is the one for it."""
    made = mailhost(tmp_path / "data", clean_env(), "init")
    assert made.returncode == 0, made.stderr
    expected = choose_hostname(socket.getfqdn())
    written = (tmp_path / "data" / "mailhost.toml").read_text()
    assert f'hostname = "{expected.name}"' in written
    shown = made.stderr if expected.warning else made.stdout
    assert expected.note in " ".join(shown.split())


@pytest.mark.parametrize(
    ("fqdn", "name", "words"),
    [
        (
            "localhost",
            FALLBACK_HOSTNAME,
            "no dotted host name found (socket.getfqdn() = 'localhost'); using mail.localhost, "
            "which only this machine reaches: set --hostname for a real server",
        ),
        ("vm", FALLBACK_HOSTNAME, "(socket.getfqdn() = 'vm')"),
        ("vm.localdomain", FALLBACK_HOSTNAME, "no dotted host name found"),
        ("box.lan.test", "box.lan.test", "but it is not a public name (.test is reserved"),
        (
            "MX1.Provider.NET",
            "mx1.provider.net",
            "using the machine's name mx1.provider.net as the server's host name",
        ),
    ],
)
def test_the_chosen_name_and_the_reason(fqdn: str, name: str, words: str) -> None:
    choice = choose_hostname(fqdn)
    assert choice.name == name
    assert words in choice.note
    assert choice.warning == (name != "mx1.provider.net")
