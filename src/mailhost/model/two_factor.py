"""The secrets of two-factor logins and app passwords, as pure rules: TOTP codes (RFC 6238),
recovery codes and app passwords, how they are made, written and compared."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp

# RFC 6238 §4 with the defaults every authenticator app knows: SHA-1, 6 digits, 30 s.
CODE_DIGITS = 6
STEP_SECONDS = 30
# RFC 6238 §5.2: one step either side covers a phone whose clock is a little off and a
# code typed just as it changed.
STEPS_ACCEPTED = (-1, 0, 1)

RECOVERY_CODES = 10
# No 0/o, 1/i/l: a recovery code is read off paper and typed by hand.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 12  # 31**12, about 59 bits
_RECOVERY_GROUP = 4

# Lower-case letters only, so that a phone's keyboard never has to switch; 26**16 is
# about 75 bits. The first group is stored in clear to find the row (56 bits stay
# behind argon2), so that a login costs one argon2 verification, not one per password.
_APP_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_APP_GROUPS = 4
_APP_GROUP = 4
APP_PASSWORD_PREFIX = _APP_GROUP


def new_secret() -> str:
    """A TOTP secret: 160 random bits in base32, as RFC 4226 §4 recommends."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code (Key URI Format)."""
    return pyotp.TOTP(secret, digits=CODE_DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def grouped_secret(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def looks_like_code(text: str) -> bool:
    """Whether `text` has the shape of a TOTP code (spaces between digits allowed)."""
    digits = "".join(text.split())
    return len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit()


def matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The time step whose code `code` is, within STEPS_ACCEPTED of `now`, or None.

    Only steps later than `after` (the step of the last code accepted) count: RFC 6238
    §5.2, a code is accepted once, and no earlier code after it.
    """
    if not looks_like_code(code):
        return None
    typed = "".join(code.split())
    totp = pyotp.TOTP(secret, digits=CODE_DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(now)
    for offset in STEPS_ACCEPTED:
        step = current + offset
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES fresh codes, written in groups (abcd-efgh-jkmn)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        groups = [raw[i : i + _RECOVERY_GROUP] for i in range(0, len(raw), _RECOVERY_GROUP)]
        codes.append("-".join(groups))
    return codes


def normalised_recovery_code(text: str) -> str | None:
    """The code without separators, lower-cased; None if it cannot be a recovery code."""
    raw = "".join(text.split()).replace("-", "").lower()
    if len(raw) != _RECOVERY_LENGTH or any(char not in _RECOVERY_ALPHABET for char in raw):
        return None
    return raw


def recovery_digest(secret: str, code: str) -> str:
    """What the database keeps of a recovery code (as written or as typed).

    Keyed with the login's TOTP secret: the codes table alone cannot be searched for
    codes, and the codes die with the enrolment they were made for.
    """
    normal = normalised_recovery_code(code) or ""
    return hmac.new(secret.encode("ascii"), normal.encode("ascii"), hashlib.sha256).hexdigest()


def pending_signature(secret: str, password_hash: str, name: str, payload: str) -> str:
    """The signature of a pending login (a right password still owing its code).

    Keyed by what only the database holds, the login's TOTP secret and password hash,
    so any node can check it, and a password change or a new enrolment voids it.
    """
    key = hashlib.sha256(f"{secret}\0{password_hash}".encode()).digest()
    message = f"{payload}\0{name}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_app_password() -> str:
    """A fresh app password, written in groups of four letters (abcd efgh ijkl mnop)."""
    groups = (
        "".join(secrets.choice(_APP_ALPHABET) for _ in range(_APP_GROUP))
        for _ in range(_APP_GROUPS)
    )
    return " ".join(groups)


def normalised_app_password(text: str) -> str | None:
    """The letters of an app password without spaces or dashes, lower-cased; None if `text`
    cannot be one (then no app password is even looked up)."""
    raw = "".join(text.split()).replace("-", "").lower()
    if len(raw) != _APP_GROUPS * _APP_GROUP or any(char not in _APP_ALPHABET for char in raw):
        return None
    return raw
