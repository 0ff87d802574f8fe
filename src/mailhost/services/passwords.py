"""Password rules and argon2id hashing; hashing always runs off the event loop.

The strength rules, checked in this order by `check_strength`:
  1. at most 1024 characters (bounds the work a single login can cause);
  2. at least 10 characters;
  3. no control characters (they cannot be typed reliably in mail clients);
  4. not containing the login name, compared case-insensitively;
  5. not one of a short built-in list of the most common passwords.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from mailhost.errors import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 1024
# Shorter names are too likely to occur by chance inside a good password.
_MIN_IDENTITY = 3

# Passwords of MIN_LENGTH or more from public breach frequency lists; shorter
# common passwords are already refused by the length rule.
_COMMON = frozenset(
    {
        "0123456789",
        "1234567890",
        "12345678910",
        "123456789a",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abc1234567",
        "abcdefghij",
        "aaaaaaaaaa",
        "0000000000",
        "1111111111",
        "iloveyou12",
        "letmein123",
        "password12",
        "password123",
        "password1!",
        "passw0rd123",
        "q1w2e3r4t5",
        "qwerty1234",
        "qwerty123456",
        "qwertyuiop",
        "qwertyuiop123",
        "welcome123",
        "zaq12wsxcde",
        "changeme123",
        "administrator",
    }
)


def check_strength(password: str, *, identity: str) -> None:
    """Raise WeakPassword naming the first rule `password` breaks (see the module docstring)."""
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password must be at most {MAX_LENGTH} characters")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"a password must be at least {MIN_LENGTH} characters (this one has {len(password)})"
        )
    if any(unicodedata.category(char) == "Cc" for char in password):
        raise WeakPassword("a password must not contain control characters")
    folded = password.casefold()
    for name in _identity_names(identity):
        if name in folded:
            raise WeakPassword(f"a password must not contain the login name {name!r}")
    if folded in _COMMON:
        raise WeakPassword("this password is one of the most common ones; choose another")


def _identity_names(identity: str) -> list[str]:
    """The login and, for an address, its local part: the parts a guesser tries first."""
    whole = identity.strip().casefold()
    names = [whole, whole.rpartition("@")[0]] if "@" in whole else [whole]
    return [name for name in names if len(name) >= _MIN_IDENTITY]


def _secret(password: str) -> bytes:
    """The bytes argon2 sees."""
    # RFC 8265 §4.2 (OpaqueString): NFC, so that "é" typed as one code point
    # or as e + combining accent is the same password on every client.
    # surrogatepass: a front end that decoded undecodable bytes with
    # surrogateescape must get a refusal, not a UnicodeEncodeError.
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


class Passwords:
    """argon2id hashing with OWASP's minimum parameters unless told otherwise.

    The parameters are constructor arguments so that tests can choose cheap
    ones; production code uses the defaults.
    """

    def __init__(
        self, *, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1
    ) -> None:
        # OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """An encoded argon2id hash ($argon2id$v=19$m=...) with a fresh salt."""
        return await asyncio.to_thread(self._hasher.hash, _secret(password))

    async def verify(self, hash: str, password: str) -> bool:
        """Whether `password` matches `hash`; an unreadable hash matches nothing."""
        return await asyncio.to_thread(self._verify, hash, _secret(password))

    async def verify_unknown(self, password: str) -> bool:
        """Spend one verification's time against a dummy hash; always False.

        Called for logins that do not exist, so that answering "no such user"
        takes as long as answering "wrong password".
        """
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy_hash, password)
        return False

    def needs_rehash(self, hash: str) -> bool:
        """Whether `hash` was made with other parameters (or is unreadable)."""
        try:
            return self._hasher.check_needs_rehash(hash)
        except InvalidHashError:
            return True

    def _verify(self, hash: str, password: bytes) -> bool:
        try:
            return self._hasher.verify(hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError is a VerificationError: a wrong password.
            return False
