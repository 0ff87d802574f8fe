"""The Sender Rewriting Scheme: envelope senders of forwarded mail, and their bounces back.

A forwarder that relays mail with the original envelope sender fails the sender's SPF
check, so the sender is rewritten to an address at the forwarding domain that carries
the original and a keyed hash (Shevek, "The Sender Rewriting Scheme", 2004):

    SRS0=HHHH=TT=example.com=alice@forwarder.test                 first hop
    SRS1=HHHH=first.test==HHHH=TT=example.com=alice@second.test   later hops

HHHH is the first 4 base64 characters of HMAC-SHA1 over the ASCII-lowercased fields
(for SRS0 the timestamp, domain and local part; for SRS1 the first forwarder's domain
and the opaque rest of its SRS0 local part), TT the day number modulo 1024 in two
base32 characters. A later hop never unwraps an SRS0 it cannot check: it keeps it
whole and names the forwarder that made it, so a bounce goes straight back there
(SRS1 skips the hops between). Format and hash follow libsrs2, the reference
implementation, so with the same secret our addresses and postsrsd's are
interchangeable; the few departures are marked where they are made.

Written here rather than taken from pysrs (last release 2018, a port of Perl's
Mail::SRS with its legacy schemes and settings) or srslib (a 0.1 library kept
compatible with Python 2.7): neither takes our parsed types or raises our error
tree, and the scheme is about a hundred lines of hmac and string handling, held
to libsrs2's own answers by tests/model/test_srs.py.

Pure: no I/O, and the time is passed in. An SRS local part is often longer than
RFC 5321's 64 octets (§4.5.3.1.1); nearly every MTA accepts that, and libsrs2
produces them too, so it is never truncated: a shortened address could not be
reversed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mailhost.errors import (
    ConfigError,
    ExpiredSrsAddress,
    ForgedSrsAddress,
    InvalidAddress,
    InvalidDomainName,
    MalformedSrsAddress,
)
from mailhost.model.names import DomainName, EmailAddress, is_dot_string

SRS0 = "SRS0"
SRS1 = "SRS1"
_SEPARATOR = "="
# libsrs2 lets a site choose '+' or '-' after the tag; it reads all three, and so do we.
_TAG_SEPARATORS = frozenset("=+-")
HASH_LENGTH = 4
# Exactly this long: libsrs2 also reads the start of a longer one, but we make none.
_HASH_CHARS = re.compile(rf"[A-Za-z0-9+/]{{{HASH_LENGTH}}}")
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_STAMP_CHARS = re.compile(r"[A-Za-z2-7]{2}")
TIME_SLOTS = len(_BASE32) ** 2  # two base32 characters: the day number modulo 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
DEFAULT_MAX_AGE_DAYS = 21  # libsrs2's default
# Well inside the 1024-day cycle, past which an old address looks new again.
MAX_AGE_DAYS_LIMIT = 1000
# Nodes whose clocks straddle midnight disagree about the day by one: an address made
# on a node already in tomorrow is accepted, as if it were made today. libsrs2 would
# count it 1023 days old.
_CLOCK_SKEW_DAYS = 1
# RFC 5321 §4.1.2 quoted-pairSMTP: a backslash and the character it stands for.
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


def is_srs(local_part: str) -> bool:
    """Whether a local part (quoted or not) is an SRS0 or SRS1 address's, by its tag.

    The tag is read without regard to case, as libsrs2 does: some MTAs lowercase
    local parts.
    """
    return _tag(_unquote(local_part)) is not None


@dataclass(frozen=True, slots=True)
class SrsCodec:
    """Rewrites senders with `secret` and reverses bounce addresses made with it.

    `previous_secrets` are still accepted on reversal, so a secret can be replaced
    without refusing the bounces to addresses made in the last `max_age_days`.
    """

    secret: bytes = field(repr=False)
    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    previous_secrets: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.secret or not all(self.previous_secrets):
            raise ConfigError("an SRS secret is empty: every SRS secret needs at least one byte")
        if not 1 <= self.max_age_days <= MAX_AGE_DAYS_LIMIT:
            raise ConfigError(
                f"the SRS maximum age is {self.max_age_days} days; "
                f"it must be 1 to {MAX_AGE_DAYS_LIMIT} days"
            )

    def forward(
        self, sender: EmailAddress | str, forwarding_domain: DomainName, now: datetime
    ) -> str:
        """The envelope sender to relay `sender`'s mail with from `forwarding_domain`.

        The null sender stays null (RFC 5321 §4.5.5: nothing may bounce to it, so there
        is nothing to route back), and a sender at `forwarding_domain` already passes
        its SPF. Other SRS addresses become SRS1; anything else, SRS0.
        """
        text = str(sender)
        if not text:
            return ""
        quoted_local, at, host = text.rpartition("@")
        if not at or not quoted_local or not host:
            raise InvalidAddress(f"sender {text!r} is not an address (expected local@domain)")
        if _SEPARATOR in host:
            raise InvalidAddress(
                f"sender {text!r} cannot be rewritten: its domain contains {_SEPARATOR!r}, "
                "which separates the fields of an SRS address"
            )
        if _is_at(host, forwarding_domain):
            return text
        local = _unquote(quoted_local)
        return f"{_quote(self._rewrite(local, host, now))}@{forwarding_domain.ascii}"

    def reverse(self, address: str, now: datetime) -> str:
        """Where a bounce to the SRS `address` goes: the original sender for SRS0, and
        for SRS1 the SRS0 address at the forwarder that made it.

        Raises MalformedSrsAddress, ForgedSrsAddress or ExpiredSrsAddress. The
        domain after the '@' is not looked at: the caller routed the bounce here.
        """
        quoted_local, at, _host = address.rpartition("@")
        local = _unquote(quoted_local)
        tag = _tag(local) if at else None
        if tag is None:
            raise MalformedSrsAddress(
                f"{address!r} is not an SRS address (expected SRS0=… or SRS1=… before the @)"
            )
        if tag == SRS1:
            return self._reverse_srs1(address, local[5:])
        return self._reverse_srs0(address, local[5:], now)

    def _rewrite(self, local: str, host: str, now: datetime) -> str:
        tag = _tag(local)
        first = _split_srs1(local[5:]) if tag == SRS1 else None
        if first is not None:
            # Only the first forwarder can check its own SRS0; the hops in between
            # (the sender's `host` among them) are dropped. A malformed SRS1 is
            # wrapped like any other address below.
            first_host, rest = first
            return self._srs1(first_host, rest)
        if tag == SRS0:
            return self._srs1(host, local[4:])
        stamp = _stamp(_day(now))
        hash_ = _hash(self.secret, stamp, host, local)
        return _SEPARATOR.join((SRS0, hash_, stamp, host, local))

    def _srs1(self, first_host: str, rest: str) -> str:
        # `rest` keeps the separator the first forwarder put after its SRS0 tag.
        hash_ = _hash(self.secret, first_host, rest)
        return _SEPARATOR.join((SRS1, hash_, first_host, rest))

    def _reverse_srs0(self, address: str, fields: str, now: datetime) -> str:
        parts = fields.split(_SEPARATOR, 3)
        if len(parts) != 4 or not parts[2]:
            raise MalformedSrsAddress(
                f"{address!r} is an incomplete SRS0 address: it needs a hash, a timestamp, "
                "a domain and a local part, separated by '='"
            )
        given, stamp, host, local = parts
        then = _read_stamp(address, stamp)
        # The hash first, so that "expired" is said only of addresses we made.
        self._check_hash(address, given, stamp, host, local)
        age = (_day(now) - then) % TIME_SLOTS
        if self.max_age_days < age < TIME_SLOTS - _CLOCK_SKEW_DAYS:
            raise ExpiredSrsAddress(
                f"{address!r} has expired: it was made {age} days ago and bounces are "
                f"accepted for {self.max_age_days} days after forwarding"
            )
        return f"{_quote(local)}@{host}"

    def _reverse_srs1(self, address: str, fields: str) -> str:
        # No timestamp here: the first forwarder checks its own SRS0 when it gets it.
        parts = _split_srs1(fields)
        given = fields.partition(_SEPARATOR)[0]
        if parts is None:
            raise MalformedSrsAddress(
                f"{address!r} is an incomplete SRS1 address: it needs a hash, the first "
                "forwarder's domain and that forwarder's SRS0 part, separated by '='"
            )
        first_host, rest = parts
        self._check_hash(address, given, first_host, rest)
        return f"{_quote(SRS0 + rest)}@{first_host}"

    def _check_hash(self, address: str, given: str, *fields: str) -> None:
        if not _HASH_CHARS.fullmatch(given):
            raise MalformedSrsAddress(
                f"{address!r} has {given!r} where an SRS hash of {HASH_LENGTH} "
                "base64 characters belongs"
            )
        # Without regard to case, as libsrs2 compares: some MTAs lowercase local parts.
        wanted = given.upper().encode("ascii")
        for secret in (self.secret, *self.previous_secrets):
            if hmac.compare_digest(_hash(secret, *fields).upper().encode("ascii"), wanted):
                return
        raise ForgedSrsAddress(
            f"{address!r} was not made by this server: its hash does not match "
            "(a forged or altered address, or one made with a secret no longer kept)"
        )


def _tag(content: str) -> str | None:
    """SRS0 or SRS1 when `content` starts with that tag (in any case) and a separator."""
    # ASCII first: some other letters upper-case to ASCII ones (U+017F to 'S').
    tag = content[:4].upper() if content[:4].isascii() else ""
    if tag in (SRS0, SRS1) and content[4:5] in _TAG_SEPARATORS:
        return tag
    return None


def _hash(secret: bytes, *fields: str) -> str:
    # bytes.lower() folds ASCII only, as libsrs2's tolower() in the C locale does: a
    # Unicode lowercasing could change a UTF-8 local part's length and its hash.
    data = b"".join(f.encode("utf-8", "surrogatepass").lower() for f in fields)
    digest = hmac.new(secret, data, hashlib.sha1).digest()
    return base64.b64encode(digest)[:HASH_LENGTH].decode("ascii")


def _split_srs1(fields: str) -> tuple[str, str] | None:
    """(first forwarder's domain, the rest of its SRS0) from what follows `SRS1=`."""
    parts = fields.split(_SEPARATOR, 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _day(now: datetime) -> int:
    return (now - _EPOCH) // _DAY


def _stamp(day: int) -> str:
    slot = day % TIME_SLOTS
    return _BASE32[slot // len(_BASE32)] + _BASE32[slot % len(_BASE32)]


def _read_stamp(address: str, stamp: str) -> int:
    if not _STAMP_CHARS.fullmatch(stamp):
        raise MalformedSrsAddress(
            f"{address!r} has {stamp!r} where an SRS timestamp of 2 base32 characters belongs"
        )
    upper = stamp.upper()
    return _BASE32.index(upper[0]) * len(_BASE32) + _BASE32.index(upper[1])


def _is_at(host: str, domain: DomainName) -> bool:
    try:
        return DomainName.parse(host) == domain
    except InvalidDomainName:
        return False


def _unquote(local: str) -> str:
    """A local part's content: a Quoted-string loses its quotes and backslashes."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return local


def _quote(content: str) -> str:
    """The local part for `content` as RFC 5321 §4.1.2 writes it on the wire.

    libsrs2 pastes local parts in as they came, quotes and all, which for a quoted
    sender makes an SRS address no MTA should accept.
    """
    if is_dot_string(content):
        return content
    escaped = content.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
