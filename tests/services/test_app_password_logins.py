"""App passwords over the wire: POP3 and submission (STARTTLS and implicit TLS) of the
real runtime, with its database and authenticator, before and after two-factor is
turned on, and after the app password is revoked."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from mailhost.model.actors import ProviderActor, UserActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login
from mailhost.settings import Settings
from mailhost.tls.contexts import client_context
from tests.serving import HOSTNAME, serving, serving_settings
from tests.smtp.dialogue import REPLY_TIMEOUT, Dialogue

OP = ProviderActor("test")
PW = "correct horse battery"
AL = "al@example.test"
INVALID = "535 5.7.8 Authentication credentials invalid"
MESSAGE = b"From: al@example.test\r\nTo: al@example.test\r\nSubject: hi\r\n\r\nfrom the phone\r\n"


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return serving_settings(data_dir, database_url, "0.05")


@dataclass
class Served:
    runtime: Runtime
    ports: dict[str, int]
    user: Login
    trust: ssl.SSLContext


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[Served]:
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    await runtime.services.accounts.add_domain(OP, DomainName.parse("example.test"), "acme", PW)
    address = EmailAddress.hosted(AL)
    user = await runtime.services.users.add_user(OP, address, PW)
    await runtime.services.users.add_mailbox(OP, address, ByteSize.parse("100MB"))
    await runtime.services.users.add_smtp_account(OP, address, SmtpFacilities())
    actor = UserActor(user.id, user.domain_id, user.customer_id, user.address)
    async with serving(runtime) as ports:
        trust = client_context(runtime.settings.tls.ca_dir / "ca.pem")
        yield Served(runtime, ports, Login("user", user.id, actor), trust)


async def pop3_login(served: Served, password: str) -> str:
    """USER and PASS on POP3; the answer to PASS (then STAT and QUIT after a +OK)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.ports["POP3"])
    try:

        async def say(line: str) -> str:
            writer.write(line.encode() + b"\r\n")
            async with asyncio.timeout(REPLY_TIMEOUT):
                return (await reader.readline()).decode().rstrip("\r\n")

        async with asyncio.timeout(REPLY_TIMEOUT):
            assert (await reader.readline()).startswith(b"+OK")
        assert (await say(f"USER {AL}")).startswith("+OK")
        answer = await say(f"PASS {password}")
        if answer.startswith("+OK"):
            assert (await say("STAT")).startswith("+OK")
            await say("QUIT")
        return answer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def submit(served: Served, password: str, *, implicit: bool) -> str:
    """AUTH PLAIN on submission (STARTTLS or implicit TLS); after 235 a message to AL."""
    if implicit:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", served.ports["Submissions"], ssl=served.trust, server_hostname=HOSTNAME
        )
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.ports["Submission"])
    smtp = Dialogue(reader, writer, HOSTNAME)
    try:
        await smtp.greeting()
        await smtp.ehlo()
        if not implicit:
            await smtp.say("STARTTLS", "220 2.0.0")
            await writer.start_tls(served.trust, server_hostname=HOSTNAME)
            await smtp.ehlo()
        token = base64.b64encode(f"\0{AL}\0{password}".encode()).decode()
        answer = await smtp.say(f"AUTH PLAIN {token}", "")
        if answer.startswith("235"):
            await smtp.say(f"MAIL FROM:<{AL}>", "250 2.1.0")
            await smtp.say(f"RCPT TO:<{AL}>", "250 2.1.5")
            await smtp.data(MESSAGE, "250 2.0.0 Ok: queued as")
        return answer
    finally:
        await smtp.close()


async def test_an_app_password_opens_pop3_and_submission_and_dies_when_revoked(
    served: Served,
) -> None:
    rt, actor = served.runtime, served.user.actor
    assert isinstance(actor, UserActor)
    record, secret = await rt.web_access.app_passwords.create(actor, actor.address, "Phone")
    assert (await pop3_login(served, secret)).startswith("+OK")
    for implicit in (False, True):
        assert (await submit(served, secret.replace(" ", ""), implicit=implicit)).startswith("235")
    (listed,) = await rt.web_access.app_passwords.app_passwords(actor, actor.address)
    assert listed.last_used_at is not None and listed.last_used_address == "127.0.0.1"
    # Two-factor off: the account password works on the mail protocols too.
    assert (await pop3_login(served, PW)).startswith("+OK")
    assert (await submit(served, PW, implicit=True)).startswith("235")

    await rt.web_access.app_passwords.revoke(actor, actor.address, record.id)
    assert (await pop3_login(served, secret)).startswith("-ERR [AUTH]")
    assert await submit(served, secret, implicit=True) == INVALID


async def test_with_two_factor_on_only_app_passwords_open_mail(served: Served) -> None:
    rt, actor = served.runtime, served.user.actor
    assert isinstance(actor, UserActor)
    _, secret = await rt.web_access.app_passwords.create(actor, actor.address, "Laptop")
    key = (await rt.web_access.two_factor.start(served.user)).secret
    await rt.web_access.two_factor.confirm(
        served.user, pyotp.TOTP(key).now(), ClientInfo("127.0.0.1", "web")
    )
    assert (await pop3_login(served, PW)).startswith("-ERR [AUTH]")
    for implicit in (False, True):
        assert await submit(served, PW, implicit=implicit) == INVALID
        assert (await submit(served, secret, implicit=implicit)).startswith("235")
    assert (await pop3_login(served, secret)).startswith("+OK")
    # The panel still takes the account password (and then asks for the code).
    panel = await rt.web_access.logins.login("user", AL, PW, ClientInfo("127.0.0.1", "web"))
    assert isinstance(panel, Login)
