"""Login throttling: limits per address and per account, growing delays, bounded memory."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhost.services.throttle import MemoryThrottle, Throttle, delay_after

WINDOW = 600.0
PER_ADDRESS = 4
PER_ACCOUNT = 3
OWNER = "192.0.2.1"
ATTACKERS = ("198.51.100.1", "198.51.100.2", "198.51.100.3")
ACCOUNTS = ("bob@example.com", "alice@example.com")


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def make_throttle(clock: Clock, max_keys: int = 1000) -> Throttle:
    return MemoryThrottle(
        max_failures_per_address=PER_ADDRESS,
        max_failures_per_account=PER_ACCOUNT,
        window_seconds=WINDOW,
        clock=clock,
        max_keys=max_keys,
    )


async def fail(throttle: Throttle, address: str, account: str) -> float:
    assert await throttle.check(address, account) is None
    return await throttle.failure(address, account)


async def succeed(throttle: Throttle, address: str, account: str) -> None:
    assert await throttle.check(address, account) is None
    await throttle.success(address, account)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.5), (4, 1.0), (5, 2.0), (6, 4.0), (7, 8.0), (8, 8.0)],
)
def test_the_delay_doubles_from_the_third_failure_up_to_eight_seconds(
    failures: int, delay: float
) -> None:
    assert delay_after(failures) == delay


def test_the_delay_stays_capped_for_huge_counts() -> None:
    assert delay_after(10**6) == 8.0


async def test_an_account_is_refused_after_its_limit_until_the_window_passes() -> None:
    clock = Clock()
    throttle = make_throttle(clock)
    for attacker in ATTACKERS:
        await fail(throttle, attacker, "bob@example.com")
        clock.now += 100

    # The first failure was 300 s ago; it expires after 600 s.
    assert await throttle.check(OWNER, "bob@example.com") == pytest.approx(300.0)
    assert await throttle.check(OWNER, "alice@example.com") is None

    clock.now += 300
    assert await throttle.check(OWNER, "bob@example.com") is None


async def test_an_address_is_refused_after_its_limit_whatever_the_account() -> None:
    clock = Clock()
    throttle = make_throttle(clock)
    for n in range(PER_ADDRESS):
        await fail(throttle, ATTACKERS[0], f"user{n}@example.com")

    assert await throttle.check(ATTACKERS[0], "new@example.com") == pytest.approx(WINDOW)
    assert await throttle.check(ATTACKERS[1], "new@example.com") is None


async def test_failures_return_growing_delays() -> None:
    throttle = make_throttle(Clock())

    delays = [await fail(throttle, ATTACKERS[0], f"user{n}@example.com") for n in range(4)]

    assert delays == [0.0, 0.0, 0.5, 1.0]


async def test_attempts_in_flight_count_against_the_limit() -> None:
    throttle = make_throttle(Clock())
    for attacker in ATTACKERS:
        assert await throttle.check(attacker, "bob@example.com") is None

    # No answer has come back yet, but three guesses are already running.
    assert await throttle.check(OWNER, "bob@example.com") is not None


async def test_success_forgives_that_address_its_earlier_failures() -> None:
    throttle = make_throttle(Clock())
    await fail(throttle, OWNER, "bob@example.com")
    await fail(throttle, OWNER, "bob@example.com")
    await succeed(throttle, OWNER, "bob@example.com")

    delays = [await fail(throttle, OWNER, "bob@example.com") for _ in range(2)]

    assert delays == [0.0, 0.0]  # counting starts afresh
    assert await throttle.check(OWNER, "alice@example.com") is None


async def test_the_owners_logins_do_not_reset_an_attackers_count() -> None:
    throttle = make_throttle(Clock())
    await fail(throttle, ATTACKERS[0], "bob@example.com")
    await fail(throttle, ATTACKERS[1], "bob@example.com")
    await succeed(throttle, OWNER, "bob@example.com")

    await fail(throttle, ATTACKERS[2], "bob@example.com")

    assert await throttle.check(ATTACKERS[2], "bob@example.com") is not None


async def test_a_success_on_one_account_does_not_forgive_failures_on_another() -> None:
    throttle = make_throttle(Clock())
    for n in range(PER_ADDRESS - 1):
        await fail(throttle, ATTACKERS[0], f"user{n}@example.com")
    await succeed(throttle, ATTACKERS[0], "attacker@example.com")

    await fail(throttle, ATTACKERS[0], "victim@example.com")

    assert await throttle.check(ATTACKERS[0], "another@example.com") is not None


async def test_memory_is_bounded_by_forgetting_the_least_recent_keys() -> None:
    clock = Clock()
    throttle = make_throttle(clock, max_keys=3)
    for n in range(PER_ADDRESS):
        await fail(throttle, ATTACKERS[0], f"guess{n}@example.com")
    assert await throttle.check(ATTACKERS[0], "x@example.com") is not None

    for n in range(3):  # three newer addresses push the oldest one out
        clock.now += 1
        await fail(throttle, f"203.0.113.{n}", f"user{n}@example.com")

    assert await throttle.check(ATTACKERS[0], "x@example.com") is None


@dataclass(frozen=True, slots=True)
class Begin:
    """A login attempt reaches the password check and stays in flight."""

    address: str
    account: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The oldest attempt in flight from `address` gets its answer."""

    address: str
    right: bool


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login attempt from start to answer with nothing in between."""

    address: str
    account: str
    right: bool


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


Event = Begin | Finish | Attempt | Wait
addresses = st.sampled_from((OWNER, *ATTACKERS))
# Mostly one account, so that limits are reached often enough to be tested.
accounts = st.sampled_from((ACCOUNTS[0], ACCOUNTS[0], ACCOUNTS[0], ACCOUNTS[1]))
events = st.lists(
    st.one_of(
        st.builds(Begin, addresses, accounts),
        st.builds(Finish, addresses, st.booleans()),
        st.builds(Attempt, addresses, accounts, st.booleans()),
        st.builds(Wait, st.floats(min_value=0, max_value=WINDOW / 10)),
    ),
    max_size=60,
)


class Server:
    """Drives a throttle the way AuthenticationService does; records what guessers got."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.throttle = make_throttle(self.clock)
        self.in_flight: dict[str, list[str]] = {address: [] for address in (OWNER, *ATTACKERS)}
        self.guesses_on: dict[str, list[float]] = {account: [] for account in ACCOUNTS}
        self.guesses_from: dict[str, list[float]] = {address: [] for address in ATTACKERS}

    async def run(self, event: Event) -> None:
        match event:
            case Wait(seconds):
                self.clock.now += seconds
            case Begin(address, account):
                await self.begin(address, account)
            case Finish(address, right) if self.in_flight[address]:
                await self.finish(address, self.in_flight[address].pop(0), right)
            case Attempt(address, account, right) if await self.begin(address, account):
                await self.finish(address, self.in_flight[address].pop(), right)

    async def begin(self, address: str, account: str) -> bool:
        retry_after = await self.throttle.check(address, account)
        if retry_after is not None:
            assert 0 < retry_after <= WINDOW
            return False
        self.in_flight[address].append(account)
        if address in ATTACKERS:
            self.guesses_on[account].append(self.clock.now)
            self.guesses_from[address].append(self.clock.now)
        return True

    async def finish(self, address: str, account: str, right: bool) -> None:
        if right and address == OWNER:  # only the owner knows the password
            await self.throttle.success(address, account)
        else:
            assert 0 <= await self.throttle.failure(address, account) <= 8.0


def most_in_any_window(times: list[float]) -> int:
    return max((sum(1 for u in times if t - WINDOW < u <= t) for t in times), default=0)


@settings(max_examples=1000)
@given(script=events)
async def test_guessers_never_get_more_attempts_than_the_limits(script: list[Event]) -> None:
    server = Server()
    for event in script:
        await server.run(event)

    for times in server.guesses_on.values():
        assert most_in_any_window(times) <= PER_ACCOUNT
    for times in server.guesses_from.values():
        assert most_in_any_window(times) <= PER_ADDRESS
    # Safety is not bought by refusing forever: after a quiet window, everyone may try.
    server.clock.now += WINDOW
    for address in (OWNER, *ATTACKERS):
        assert await server.throttle.check(address, ACCOUNTS[0]) is None
        await server.throttle.success(address, ACCOUNTS[0])
