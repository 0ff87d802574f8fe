"""Password strength rules and argon2id hashing off the event loop."""

from __future__ import annotations

import asyncio
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.errors import WeakPassword
from mailhost.services.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, check_strength

GOOD = "correct horse battery staple"


@pytest.fixture
def passwords() -> Passwords:
    # Real argon2id with the smallest costs it allows: fast, but the same code path.
    return Passwords(time_cost=1, memory_cost=8, parallelism=1)


def weakness(password: str, identity: str = "bob@example.com") -> str:
    with pytest.raises(WeakPassword) as caught:
        check_strength(password, identity=identity)
    assert caught.value.code == "weak_password"
    return caught.value.message


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "a password must be at least 10 characters (this one has 5)"),
        ("x" * (MAX_LENGTH + 1), f"a password must be at most {MAX_LENGTH} characters"),
        ("tab\tinside password", "a password must not contain control characters"),
        ("line\nbreak password", "a password must not contain control characters"),
        (
            "my-BOB@Example.com-secret",
            "a password must not contain the login name 'bob@example.com'",
        ),
        ("xxBoBxx-long-enough", "a password must not contain the login name 'bob'"),
        ("QwertyUIOP", "this password is one of the most common ones; choose another"),
        ("password123", "this password is one of the most common ones; choose another"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule_they_break(password: str, message: str) -> None:
    assert weakness(password) == message


@pytest.mark.parametrize(
    "password",
    [GOOD, "x" * MIN_LENGTH, "y" * MAX_LENGTH, "b-o-b-split-up-is-fine", "pässwörter-ünd-mehr"],
)
def test_strong_passwords_pass(password: str) -> None:
    check_strength(password, identity="bob@example.com")


def test_short_identities_are_not_searched_for() -> None:
    # "al" occurs in many good passwords by chance; requiring its absence helps no one.
    check_strength("totally-legal-words", identity="al@example.com")


def test_a_bare_login_name_is_an_identity_too() -> None:
    assert weakness("acme-hosting-2024", identity="Acme") == (
        "a password must not contain the login name 'acme'"
    )


@given(password=st.text(max_size=40), identity=st.sampled_from(["bob", "bob@example.com", "x"]))
def test_accepted_passwords_obey_every_rule(password: str, identity: str) -> None:
    try:
        check_strength(password, identity=identity)
    except WeakPassword:
        accepted = False
    else:
        accepted = True
    obeys = (
        MIN_LENGTH <= len(password) <= MAX_LENGTH
        and not any(unicodedata.category(char) == "Cc" for char in password)
        and "bob" not in password.casefold()
    )
    if accepted:
        assert obeys
    elif obeys:  # refused although it obeys the other rules: only the common list may say so
        assert weakness(password, identity).startswith("this password is one of the most common")


async def test_hash_then_verify(passwords: Passwords) -> None:
    encoded = await passwords.hash(GOOD)

    assert encoded.startswith("$argon2id$")
    assert await passwords.verify(encoded, GOOD)
    assert not await passwords.verify(encoded, GOOD + "!")
    assert not await passwords.verify(encoded, GOOD.upper())


async def test_each_hash_has_its_own_salt(passwords: Passwords) -> None:
    first, second = await passwords.hash(GOOD), await passwords.hash(GOOD)

    assert first != second
    assert await passwords.verify(second, GOOD)


async def test_default_parameters_are_owasp_argon2id() -> None:
    encoded = await Passwords().hash(GOOD)

    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_composed_and_decomposed_accents_are_the_same_password(
    passwords: Passwords,
) -> None:
    composed = unicodedata.normalize("NFC", "café au lait, s'il vous plaît")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed

    assert await passwords.verify(await passwords.hash(composed), decomposed)


async def test_undecodable_input_is_refused_not_crashed(passwords: Passwords) -> None:
    garbled = b"secret-\xff\xfe-bytes".decode("utf-8", "surrogateescape")
    encoded = await passwords.hash(GOOD)

    assert not await passwords.verify(encoded, garbled)
    assert await passwords.verify(await passwords.hash(garbled), garbled)


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken"])
async def test_an_unreadable_stored_hash_matches_nothing(passwords: Passwords, stored: str) -> None:
    assert not await passwords.verify(stored, GOOD)
    assert passwords.needs_rehash(stored)


async def test_hashes_with_other_parameters_need_rehashing(passwords: Passwords) -> None:
    cheap = await passwords.hash(GOOD)

    assert not passwords.needs_rehash(cheap)
    assert Passwords().needs_rehash(cheap)


async def test_unknown_users_cost_a_verification_and_never_match(passwords: Passwords) -> None:
    assert not await passwords.verify_unknown(GOOD)
    assert not await passwords.verify_unknown("")


async def test_hashing_leaves_the_event_loop_free() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await Passwords().hash(GOOD)  # ~19 MiB of argon2 work: long enough to notice
    during = ticks - before
    task.cancel()

    # On the loop the ticker could not run at all while hashing.
    assert during > 1
