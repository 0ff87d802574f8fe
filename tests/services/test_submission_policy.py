"""Submission rules without sockets: sender scope, notice levels, and the shared counters.

The counters run on the real database (SQLite and PostgreSQL): the hourly limit
must hold when many connections count at once, and a notice must be claimed once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.model.envelope import Client
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import LoginRecord, SmtpAccountRecord
from mailhost.runtime import Runtime
from mailhost.services import submission_policy
from mailhost.services.submission_policy import hour_of, sender_allowed
from mailhost.services.transfer_notices import levels_reached
from mailhost.storage.database.engine import session_factory
from mailhost.storage.database.submission_counters import SqlSubmissionCounters
from tests.outbound.conftest import OP, hosted_customer

ALICE = LoginRecord(7, 3, 1, EmailAddress.hosted("alice@example.com"), "hash", True, None)


def account(scope: SenderScope) -> SmtpAccountRecord:
    return SmtpAccountRecord(1, ALICE.user_id, ALICE.address, SmtpFacilities(sender_scope=scope))


@pytest.mark.parametrize(
    ("sender", "own", "domain", "none"),
    [
        ("alice@example.com", True, True, True),
        ("Alice@EXAMPLE.com", True, True, True),
        ("<alice@example.com>", True, True, True),
        ("bob@example.com", False, True, False),
        ("alice@example.org", False, False, False),
        ("alice@sub.example.com", False, False, False),
        ("<>", False, False, False),
        ("", False, False, False),
        ('"alice"@example.com', False, False, False),
        ("alice@example.com@evil.test", False, False, False),
    ],
)
def test_sender_scope_table(sender: str, own: bool, domain: bool, none: bool) -> None:
    assert sender_allowed(ALICE, account(SenderScope.OWN), sender) is own
    assert sender_allowed(ALICE, account(SenderScope.DOMAIN), sender) is domain
    assert sender_allowed(ALICE, None, sender) is none  # no SMTP account: own address only


@given(
    local=st.from_regex(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}", fullmatch=True),
    domain=st.sampled_from(["example.com", "example.org", "xample.com", "example.com.evil.test"]),
    scope=st.sampled_from(list(SenderScope)),
)
def test_allowed_senders_are_always_in_the_users_own_domain(
    local: str, domain: str, scope: SenderScope
) -> None:
    sender = f"{local}@{domain}"
    if sender_allowed(ALICE, account(scope), sender):
        parsed = EmailAddress.parse(sender)
        assert parsed.domain == ALICE.address.domain
        assert scope is SenderScope.DOMAIN or parsed.local.lower() == "alice"


@pytest.mark.parametrize(
    ("used", "limit", "levels"),
    [
        (0, "100KB", ()),
        (79_999, "100KB", ()),
        (80_000, "100KB", (80,)),
        (99_999, "100KB", (80,)),
        (100_000, "100KB", (100, 80)),
        (10**12, "100KB", (100, 80)),
        (10**12, None, ()),  # no limit, no notices
        (5, "0B", ()),
    ],
)
def test_notice_levels(used: int, limit: str | None, levels: tuple[int, ...]) -> None:
    assert levels_reached(used, None if limit is None else ByteSize.parse(limit)) == levels


def test_hours_are_utc() -> None:
    moment = datetime(2024, 3, 9, 23, 59, tzinfo=UTC).astimezone()
    assert hour_of(moment) == "2024-03-09T23"


async def user_id(runtime: Runtime) -> int:
    await hosted_customer(runtime)
    user = await runtime.services.users.user(OP, EmailAddress.hosted("bob@example.com"))
    return user.id


async def test_hourly_reservations_never_pass_the_limit_under_concurrency(
    runtime: Runtime,
) -> None:
    counters = SqlSubmissionCounters(session_factory(runtime.engine))
    bob = await user_id(runtime)
    results = await asyncio.gather(
        *(counters.reserve_message(bob, "2024-03-09T23", 5) for _ in range(20))
    )
    assert results.count(True) == 5
    assert await counters.messages_sent(bob, "2024-03-09T23") == 5
    assert await counters.messages_sent(bob, "2024-03-10T00") == 0  # a new hour starts at 0
    await counters.release_message(bob, "2024-03-09T23")
    assert await counters.reserve_message(bob, "2024-03-09T23", 5)
    assert not await counters.reserve_message(bob, "2024-03-09T23", 5)


async def test_each_notice_is_claimed_once_until_forgotten(runtime: Runtime) -> None:
    counters = SqlSubmissionCounters(session_factory(runtime.engine))
    customer = await hosted_customer(runtime)
    claims = await asyncio.gather(
        *(counters.claim_notice(customer, "2024-03", 80) for _ in range(10))
    )
    assert claims.count(True) == 1
    assert await counters.claim_notice(customer, "2024-03", 100)  # another level
    assert await counters.claim_notice(customer, "2024-04", 80)  # another month
    await counters.forget_notice(customer, "2024-03", 80)
    assert await counters.claim_notice(customer, "2024-03", 80)


async def test_a_full_submitter_cache_drops_closed_connections_not_live_ones(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = runtime.submission
    monkeypatch.setattr(submission_policy, "MAX_CACHED", 3)
    monkeypatch.setattr(submission_policy, "SUBMITTER_SECONDS", 1.0)
    for connection in (1, 2):  # sent once and closed: never read again
        await policy.check_sender(Client("127.0.0.1", "h", True, ALICE, connection), "", None)
    await asyncio.sleep(1.5)
    for connection in (3, 4):  # sending now
        await policy.check_sender(Client("127.0.0.1", "h", True, ALICE, connection), "", None)
    assert set(policy._submitters) == {3, 4}  # before: the whole cache went, 3's read too
