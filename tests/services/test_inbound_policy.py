"""The MX's recipient rules, with and without the short recipient cache."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from mailhost.model.actors import ProviderActor
from mailhost.model.envelope import Accept, Reason, Refuse
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.services.inbound_policy import InboundPolicy
from tests.quotas import add_small_mailbox

OP = ProviderActor("test")
PW = "correct horse battery"
BOB = EmailAddress.hosted("bob@example.test")


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def _hosted(rt: Runtime) -> None:
    await rt.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    await rt.services.accounts.add_domain(OP, DomainName.parse("example.test"), "acme", PW)
    await rt.services.users.add_user(OP, BOB, PW)
    await add_small_mailbox(rt, BOB, room=1000)


async def test_refusals_name_the_reason(runtime: Runtime) -> None:
    await _hosted(runtime)
    policy = InboundPolicy(runtime.units)
    cases = {
        "bob@elsewhere.test": Reason.RELAY_DENIED,
        "nobody@example.test": Reason.UNKNOWN_USER,
    }
    for raw, reason in cases.items():
        verdict = await policy.lookup(EmailAddress.parse(raw))
        assert verdict == Refuse(reason, raw)
    await runtime.services.users.add_user(OP, EmailAddress.hosted("nobox@example.test"), PW)
    nobox = await policy.lookup(EmailAddress.hosted("nobox@example.test"))
    assert nobox == Refuse(Reason.NO_MAILBOX, "nobox@example.test")


async def test_cached_recipient_tracks_own_deliveries_and_expires(runtime: Runtime) -> None:
    await _hosted(runtime)
    clock = Clock()
    policy = InboundPolicy(runtime.units, cache_seconds=1.0, clock=clock)
    first = await policy.lookup(BOB)
    assert isinstance(first, Accept)
    policy.stored(first.mailbox, 1000)  # this process filled the mailbox
    assert await policy.lookup(BOB) == Refuse(Reason.MAILBOX_FULL, str(BOB))
    await runtime.services.users.remove_user(OP, BOB)
    clock.now += 0.5
    assert await policy.lookup(BOB) == Refuse(Reason.MAILBOX_FULL, str(BOB))
    clock.now += 1.0  # past the cache: the removal is seen
    assert await policy.lookup(BOB) == Refuse(Reason.UNKNOWN_USER, str(BOB))


async def test_refusals_are_not_cached(runtime: Runtime) -> None:
    clock = Clock()
    policy = InboundPolicy(runtime.units, cache_seconds=60.0, clock=clock)
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    await runtime.services.accounts.add_domain(OP, DomainName.parse("example.test"), "acme", PW)
    assert await policy.lookup(BOB) == Refuse(Reason.UNKNOWN_USER, str(BOB))
    await runtime.services.users.add_user(OP, BOB, PW)
    await runtime.services.users.add_mailbox(OP, BOB, ByteSize.parse("100MB"))
    assert isinstance(await policy.lookup(BOB), Accept)


async def test_recipients_missing_the_cache_together_share_one_query(runtime: Runtime) -> None:
    await _hosted(runtime)
    policy = InboundPolicy(runtime.units, cache_seconds=1.0)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", seen)
    try:
        verdicts = await asyncio.gather(*(policy.lookup(BOB) for _ in range(20)))
        nobody = EmailAddress.hosted("nobody@example.test")
        refusals = await asyncio.gather(*(policy.lookup(nobody) for _ in range(5)))
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", seen)
    assert all(isinstance(v, Accept) for v in verdicts)
    assert refusals == [Refuse(Reason.UNKNOWN_USER, str(nobody))] * 5
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects  # one for bob's twenty, one for nobody's five
