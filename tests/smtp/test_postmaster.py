"""postmaster@ and abuse@ on the MX: a real server, the runtime's own policy and delivery,
real Maildirs, and the real delivery worker relaying to an aiosmtpd sink.

acme owns a.test (contact boss@a.test, a mailbox here); other owns b.test (contact
chief@remote.test, elsewhere) and the pending pending.test; the provider admin
root's email is ops@remote.test. remote.test routes to the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailhost.model.actors import CustomerActor, ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from mailhost.smtp.listeners import start_mx_server
from mailhost.smtp.session import SessionDependencies
from tests.outbound.conftest import Sink, start_sink
from tests.smtp.dialogue import Dialogue

OP = ProviderActor("test")
PW = "correct horse battery"
HOST = "mx.hosting.test"
A, B = DomainName.parse("a.test"), DomainName.parse("b.test")
MESSAGE = b"From: Someone <someone@remote.test>\r\nSubject: your mail server\r\n\r\nHello.\r\n"
QUEUED = "250 2.0.0 Ok: queued as "


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    started, server = await start_sink(None)
    yield started
    server.close()
    await server.wait_closed()


@pytest.fixture
def settings(data_dir: Path, database_url: str, sink: Sink) -> Settings:
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOST,
        "MAILHOST_DELIVERY_ROUTES": f"remote.test=127.0.0.1:{sink.port}",
    }
    return load_settings(None, data_dir, environ)


@dataclass
class Mx:
    port: int

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Dialogue]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        smtp = Dialogue(reader, writer, HOST)
        try:
            await smtp.greeting()
            await smtp.ehlo()
            await smtp.say("MAIL FROM:<someone@remote.test>", "250 2.1.0")
            yield smtp
        finally:
            await smtp.close()


@pytest.fixture
async def mx(runtime: Runtime) -> AsyncIterator[Mx]:
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@a.test", PW)
    await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@remote.test", PW)
    await accounts.add_domain(OP, A, "acme", PW)
    await accounts.add_domain(OP, B, "other", PW)
    other = await accounts.customer(OP, "other")
    pending = DomainName.parse("pending.test")  # added by its customer: pending its DNS proof
    await accounts.add_domain(CustomerActor(other.id, other.login), pending, "other", PW)
    boss = EmailAddress.hosted("boss@a.test")
    await users.add_user(OP, boss, PW)
    await users.add_mailbox(OP, boss, ByteSize.parse("100MB"))
    await runtime.web_access.admins.add(OP, "root", "ops@remote.test", PW)
    deps = SessionDependencies(
        service="MX",
        policy=runtime.services.inbound,  # as runtime.py wires it, [server] hostname and all
        delivery=runtime.services.delivery,
        hostname=HOST,
        ssl_context=None,
        max_message_size=10_000,
        idle_timeout=30.0,
    )
    server = await start_mx_server("127.0.0.1", 0, deps)
    yield Mx(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def boss_mail(runtime: Runtime) -> list[bytes]:
    (box,) = await runtime.services.users.mailboxes(OP, A)
    found: list[bytes] = []
    for message in await runtime.store.list(box.ref):
        async with aclosing(runtime.store.read(box.ref, message.uid)) as stream:
            found.append(b"".join([chunk async for chunk in stream]))
    return found


async def test_postmaster_of_a_domain_and_of_the_server_are_accepted_without_such_users(
    mx: Mx, runtime: Runtime, sink: Sink
) -> None:
    async with mx.connect() as smtp:
        await smtp.say("RCPT TO:<postmaster@a.test>", "250 2.1.5")
        await smtp.say("RCPT TO:<PostMaster>", "250 2.1.5")  # RFC 5321 §4.1.1.3: no domain
        await smtp.data(MESSAGE, QUEUED)
    (stored,) = await boss_mail(runtime)  # the contact address is a mailbox here
    assert stored.endswith(MESSAGE)
    assert stored.startswith(b"Return-Path: <someone@remote.test>\r\nDelivered-To: boss@a.test\r\n")
    assert await runtime.worker.run_once() == 1  # the server's postmaster: root's email
    (relayed,) = sink.received
    assert (relayed.sender, relayed.recipients) == ("someone@remote.test", ["ops@remote.test"])
    assert relayed.data.endswith(MESSAGE)


async def test_postmaster_mail_for_a_contact_elsewhere_is_relayed_and_held_with_its_tenant(
    mx: Mx, runtime: Runtime, sink: Sink
) -> None:
    async with mx.connect() as smtp:
        await smtp.say("RCPT TO:<POSTMASTER@b.test>", "250 2.1.5")
        await smtp.data(MESSAGE, QUEUED)
    await runtime.services.accounts.set_customer_enabled(OP, "other", False)
    assert await runtime.worker.run_once() == 0 and sink.received == []  # held, not bounced
    async with mx.connect() as smtp:  # new postmaster mail of a disabled tenant waits too
        line = await smtp.say("RCPT TO:<postmaster@b.test>", "450")
        assert line == "450 4.2.1 <postmaster@b.test>: mailbox temporarily unavailable"
    await runtime.services.accounts.set_customer_enabled(OP, "other", True)
    assert await runtime.worker.run_once() == 1
    (relayed,) = sink.received
    assert relayed.recipients == ["chief@remote.test"]


async def test_abuse_is_refused_while_off_and_accepted_once_turned_on(
    mx: Mx, runtime: Runtime
) -> None:
    async with mx.connect() as smtp:
        line = await smtp.say("RCPT TO:<abuse@a.test>", "550")
        assert line == "550 5.1.1 <abuse@a.test>: no such user here"
    await runtime.services.postmaster.set_postmaster(OP, A, abuse=True)
    async with mx.connect() as smtp:
        await smtp.say("RCPT TO:<Abuse@a.test>", "250 2.1.5")
        await smtp.data(MESSAGE, QUEUED)
    (stored,) = await boss_mail(runtime)
    assert stored.endswith(MESSAGE)


async def test_postmaster_is_no_way_to_relay_for_unproven_or_foreign_domains(mx: Mx) -> None:
    async with mx.connect() as smtp:
        for domain in ("pending.test", "remote.test"):
            line = await smtp.say(f"RCPT TO:<postmaster@{domain}>", "554")
            assert line == f"554 5.7.1 <postmaster@{domain}>: relay access denied"


async def test_relayed_postmaster_mail_of_a_second_owner_comes_in_its_own_transaction(
    mx: Mx, runtime: Runtime, sink: Sink
) -> None:
    async with mx.connect() as smtp:
        await smtp.say("RCPT TO:<postmaster@b.test>", "250 2.1.5")
        await smtp.say("RCPT TO:<postmaster@a.test>", "250 2.1.5")  # delivered here: no owner
        line = await smtp.say("RCPT TO:<postmaster>", "452")
        assert (
            line
            == f"452 4.5.3 <postmaster@{HOST}>: too many recipients, send this one again separately"
        )
        await smtp.data(MESSAGE, QUEUED)
        await smtp.say("MAIL FROM:<someone@remote.test>", "250 2.1.0")
        await smtp.say("RCPT TO:<postmaster>", "250 2.1.5")
        await smtp.data(MESSAGE, QUEUED)
    assert await runtime.worker.run_once() == 2
    assert sorted(r.recipients[0] for r in sink.received) == [
        "chief@remote.test",
        "ops@remote.test",
    ]
    (stored,) = await boss_mail(runtime)
    assert stored.endswith(MESSAGE)
