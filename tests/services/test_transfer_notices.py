"""Transfer reached through the MX or POP3 (not a submission) still gets its notice."""

from __future__ import annotations

import asyncio
import contextlib

from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime

OP = ProviderActor("test")
PW = "correct horse battery"
BOSS = EmailAddress.hosted("boss@acme.test")


async def test_watch_mails_the_80_percent_notice_once(runtime: Runtime) -> None:
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_plan(OP, "Thin", PlanLimits(None, None, ByteSize(10_000), None))
    await accounts.add_customer(OP, "acme", "Thin", str(BOSS), PW)
    await accounts.add_domain(OP, DomainName.parse("acme.test"), "acme", PW)
    await users.add_user(OP, BOSS, PW)
    await users.add_mailbox(OP, BOSS, None)
    customer = await accounts.customer(OP, "acme")
    await runtime.services.usage.add_transfer(customer.id, 8_500)  # e.g. POP3 retrievals
    watch = asyncio.ensure_future(
        runtime.notices.watch(accounts, runtime.services.usage, interval=0.05)
    )
    try:
        box = (await users.mailboxes(OP, DomainName.parse("acme.test")))[0]
        for _ in range(100):
            if await runtime.store.list(box.ref):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several more rounds: still one notice
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    [notice] = await runtime.store.list(box.ref)
    text = b"".join([chunk async for chunk in runtime.store.read(box.ref, notice.uid)])
    assert b"80%" in text or b"80 %" in text
