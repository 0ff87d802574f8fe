"""Delivery log entries made the way the worker makes them: enqueue, claim, record.

Two tenants: acme's a.example sent three messages (delivered, failed, deferred) and
other's b.example one (delivered, to secret@rival.test); mailhost itself sent a
notice (no owner). Times rise by a minute per entry, in that order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailhost.interfaces import Attempt, AttemptResult, Deferred, Failed, Relayed
from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName
from mailhost.runtime import Runtime

OP = ProviderActor("test")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
NEVER = T0 + timedelta(days=365)


async def log_attempt(
    rt: Runtime,
    sender: str,
    recipient: str,
    domain: DomainName | None,
    outcome: AttemptResult,
    at: datetime,
) -> str:
    """Queue one message for `domain` (None: mailhost's own), let a worker try it once at
    `at` and record `outcome`; its message id."""
    owner = None if domain is None else await rt.services.accounts.domain(OP, domain)
    body = await rt.spool.write(b"Subject: t\r\n\r\nhello\r\n")
    await rt.queue.enqueue(
        sender,
        [recipient],
        body,
        None if owner is None else owner.customer_id,
        None if owner is None else owner.id,
        at,
        at + timedelta(days=5),
    )
    (claimed,) = await rt.queue.claim_due(at, 10)
    assert list((await rt.queue.record([Attempt(claimed, outcome)], at)).owned) == [True]
    return body.message_id


async def two_tenants_log(rt: Runtime) -> dict[str, str]:
    """The entries of the module docstring (a.example and b.example must exist); the
    message id of each recipient."""
    a, b = DomainName.parse("a.example"), DomainName.parse("b.example")
    plan: list[tuple[str, str, DomainName | None, AttemptResult]] = [
        ("alice@a.example", "carol@far.test", a, Relayed("250 2.0.0 Ok: queued as A1")),
        ("alice@a.example", "nobody@far.test", a, Failed("550 5.1.1 <nobody@far.test>: no")),
        ("boss@a.example", "dave@slow.test", a, Deferred("451 4.7.1 greylisted", NEVER)),
        ("bob@b.example", "secret@rival.test", b, Relayed("250 2.0.0 Ok: queued as B1")),
        ("", "admin@elsewhere.test", None, Relayed("250 2.0.0 Ok: notice")),
    ]
    ids: dict[str, str] = {}
    for minute, (sender, recipient, domain, outcome) in enumerate(plan):
        at = T0 + timedelta(minutes=minute)
        ids[recipient] = await log_attempt(rt, sender, recipient, domain, outcome, at)
    return ids
