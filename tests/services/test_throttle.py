"""Login penalties on a real database (no lockouts), and the limiter of reset mails."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from mailhost.model.actors import ProviderActor
from mailhost.model.logins import AttemptFacts, BadCredentials, ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.authentication import AuthenticationService
from mailhost.services.throttle import MemoryLimiter, Penalties, penalty_seconds
from mailhost.settings import Settings
from mailhost.storage.database.engine import session_factory
from mailhost.storage.database.login_attempts import SqlLoginAttempts
from mailhost.storage.database.unit_of_work import SqlLoginDirectory
from tests.conftest import cheap_passwords

OP = ProviderActor("test")
PW = "correct horse battery"
WINDOW = 900.0
CAP = 15.0
BOB = "bob@example.test"
OWNER = "192.0.2.1"
ATTACKERS = tuple(f"198.51.100.{n}" for n in range(1, 11))
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def yesterday() -> datetime:
    return datetime.now(UTC) - timedelta(days=1)


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def penalties(runtime: Runtime, clock: Clock | None = None, cap: float = CAP) -> Penalties:
    attempts = SqlLoginAttempts(session_factory(runtime.engine))
    if clock is None:
        return Penalties(attempts, max_seconds=cap, window_seconds=WINDOW)
    return Penalties(attempts, max_seconds=cap, window_seconds=WINDOW, clock=clock)


async def settle(
    rules: Penalties, client: str, success: bool, account: str = BOB, service: str = "pop3"
) -> None:
    """An attempt settled now, as the login paths record it (without anyone waiting)."""
    detail = "accepted" if success else "wrong password"
    facts = AttemptFacts(
        rules.now(), "user", account, ClientInfo(client, service), None, success, detail
    )
    await rules.attempts.record(facts)


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 15.0), (6, 15.0), (10**6, 15.0)],
)
def test_the_penalty_doubles_from_one_second_up_to_the_cap(failures: int, seconds: float) -> None:
    assert penalty_seconds(failures, CAP) == seconds


async def test_each_failure_from_an_address_doubles_the_wait_before_its_next_attempt(
    runtime: Runtime,
) -> None:
    clock = Clock()
    rules = penalties(runtime, clock)
    waits = []
    for _ in range(6):
        waits.append(await rules.address_wait(ATTACKERS[0]))
        await settle(rules, ATTACKERS[0], success=False)
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 15.0]
    clock.advance(10)  # the wait runs from the latest failure
    assert await rules.address_wait(ATTACKERS[0]) == 5.0
    clock.advance(5)
    assert await rules.address_wait(ATTACKERS[0]) == 0.0


async def test_a_clean_address_owes_nothing_while_its_account_is_attacked(
    runtime: Runtime,
) -> None:
    rules = penalties(runtime, Clock())
    for attacker in ATTACKERS:
        await settle(rules, attacker, success=False)
    assert await rules.address_wait(OWNER) == 0.0
    # Failing answers on the account are slow whichever address asks.
    assert await rules.account_penalty("user", BOB) == CAP
    assert await rules.account_penalty("user", "alice@example.test") == 0.0
    assert await rules.account_penalty("customer", BOB) == 0.0  # another kind of login


async def test_a_success_forgives_that_address_its_failures_on_that_account_only(
    runtime: Runtime,
) -> None:
    rules = penalties(runtime, Clock())
    for _ in range(3):
        await settle(rules, ATTACKERS[0], success=False)
    await settle(rules, ATTACKERS[0], success=False, account="alice@example.test")
    await settle(rules, ATTACKERS[1], success=False)

    await settle(rules, ATTACKERS[0], success=True)

    assert await rules.address_wait(ATTACKERS[0]) == 1.0  # alice's failure stands
    assert await rules.address_wait(ATTACKERS[1]) == 1.0
    assert await rules.account_penalty("user", BOB) == 1.0  # the other address's failure
    # Counting starts afresh after the success.
    await settle(rules, ATTACKERS[0], success=False)
    assert await rules.address_wait(ATTACKERS[0]) == 2.0


async def test_the_owners_logins_do_not_forgive_an_attacker(runtime: Runtime) -> None:
    rules = penalties(runtime, Clock())
    for _ in range(4):
        await settle(rules, ATTACKERS[0], success=False)
    await settle(rules, OWNER, success=True)
    assert await rules.address_wait(ATTACKERS[0]) == 8.0
    assert await rules.account_penalty("user", BOB) == 8.0


async def test_failures_older_than_the_window_are_forgotten(runtime: Runtime) -> None:
    clock = Clock()
    rules = penalties(runtime, clock)
    for _ in range(5):
        await settle(rules, ATTACKERS[0], success=False)
    clock.advance(WINDOW + 1)
    assert await rules.address_wait(ATTACKERS[0]) == 0.0
    assert await rules.account_penalty("user", BOB) == 0.0


async def test_penalties_are_shared_by_processes_through_the_database(
    settings: Settings, runtime: Runtime
) -> None:
    here = penalties(runtime)
    for _ in range(3):
        await settle(here, ATTACKERS[0], success=False)
    # Another node on the same database sees the same failures at once.
    async with Runtime(settings, passwords=cheap_passwords()) as elsewhere:
        there = penalties(elsewhere)
        assert await there.address_wait(ATTACKERS[0]) > 0
        assert await there.account_penalty("user", BOB) == 4.0
        assert await there.address_wait(OWNER) == 0.0


@pytest.fixture
async def bob(runtime: Runtime) -> EmailAddress:
    await runtime.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PW)
    await runtime.services.accounts.add_domain(OP, DomainName.parse("example.test"), "acme", PW)
    address = EmailAddress.hosted(BOB)
    await runtime.services.users.add_user(OP, address, PW)
    return address


async def test_parallel_guesses_from_one_address_wait_in_line(
    runtime: Runtime, bob: EmailAddress
) -> None:
    cap = 0.04
    rules = penalties(runtime, cap=cap)
    auth = AuthenticationService(
        SqlLoginDirectory(runtime.units), cheap_passwords(), rules, cache_seconds=0
    )
    client = ClientInfo(ATTACKERS[0], "pop3")
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(auth.authenticate(str(bob), f"guess number {n}", client) for n in range(50))
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(outcome, BadCredentials) for outcome in outcomes)
    # Opening 50 connections at once is no faster than guessing one after another:
    # each guess waited the penalty of all the failures before it.
    assert elapsed >= sum(penalty_seconds(n, cap) for n in range(50)) * 0.99
    assert await rules.attempts.failures_of("user", str(bob), yesterday(), 100) == 50


async def test_failing_answers_from_fresh_addresses_wait_for_the_accounts_failures(
    runtime: Runtime, bob: EmailAddress
) -> None:
    cap = 0.1
    rules = penalties(runtime, cap=cap)
    auth = AuthenticationService(
        SqlLoginDirectory(runtime.units), cheap_passwords(), rules, cache_seconds=0
    )
    for attacker in ATTACKERS[:4]:
        assert await rules.address_wait(attacker) == 0.0
        started = time.monotonic()
        outcome = await auth.authenticate(str(bob), "spread guess", ClientInfo(attacker, "pop3"))
        assert isinstance(outcome, BadCredentials)
        assert time.monotonic() - started >= cap * 0.99


async def test_an_abandoned_attempt_stands_as_a_failure(
    runtime: Runtime, bob: EmailAddress
) -> None:
    rules = penalties(runtime, cap=0.1)
    client = ClientInfo(ATTACKERS[0], "submission")

    checking = asyncio.Event()

    async def hang_up() -> None:
        async with rules.attempt("user", BOB, client):
            checking.set()
            await asyncio.sleep(3600)  # the client goes away mid-check

    task = asyncio.create_task(hang_up())
    await checking.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await rules.attempts.failures_of("user", BOB, yesterday(), 10) == 1
    assert await rules.account_penalty("user", BOB) == 0.1


# Password reset mails: counted per client address and per login, every request.


class Ticks:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_limiter_refuses_an_account_over_its_limit_until_the_window_passes() -> None:
    ticks = Ticks()
    limiter = MemoryLimiter(per_address=9, per_account=3, window_seconds=600, clock=ticks)
    for attacker in ATTACKERS[:3]:
        assert await limiter.check(attacker, BOB) is None
        ticks.now += 100
    assert await limiter.check(OWNER, BOB) == pytest.approx(300.0)
    assert await limiter.check(OWNER, "alice@example.test") is None
    ticks.now += 300
    assert await limiter.check(OWNER, BOB) is None


async def test_the_limiter_refuses_an_address_over_its_limit_whatever_the_account() -> None:
    limiter = MemoryLimiter(per_address=4, per_account=9, window_seconds=600, clock=Ticks())
    for n in range(4):
        assert await limiter.check(ATTACKERS[0], f"user{n}@example.test") is None
    assert await limiter.check(ATTACKERS[0], "new@example.test") == pytest.approx(600.0)
    assert await limiter.check(ATTACKERS[1], "new@example.test") is None


async def test_the_limiters_memory_is_bounded_by_forgetting_the_least_recent_keys() -> None:
    ticks = Ticks()
    limiter = MemoryLimiter(
        per_address=4, per_account=9, window_seconds=600, clock=ticks, max_keys=3
    )
    for n in range(4):
        await limiter.check(ATTACKERS[0], f"guess{n}@example.test")
    assert await limiter.check(ATTACKERS[0], "x@example.test") is not None
    for n in range(3):  # three newer addresses push the oldest one out
        ticks.now += 1
        await limiter.check(f"203.0.113.{n}", f"user{n}@example.test")
    assert await limiter.check(ATTACKERS[0], "x@example.test") is None
