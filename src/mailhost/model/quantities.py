"""Byte sizes such as "2.5GB": parsed once, carried as integers of bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from mailhost.errors import InvalidSize

# Hosting plans are sold in decimal units (a "2.5GB" plan is 2.5 x 10^9 bytes);
# binary units are accepted when written as KiB/MiB/GiB/TiB.
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
MAX_BYTES = 2**62  # fits a signed 64-bit column on every database
# Largest first, binary and decimal interleaved: 2**30 is "1GiB", not "1073741.824KB".
_EXACT_UNITS = ("TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB")


@dataclass(frozen=True, slots=True, order=True)
class ByteSize:
    bytes: int

    def __post_init__(self) -> None:
        if not 0 <= self.bytes <= MAX_BYTES:
            raise InvalidSize(f"size {self.bytes} bytes is out of range")

    @classmethod
    def parse(cls, raw: str) -> ByteSize:
        match = _SIZE.match(raw)
        unit = match.group(2).upper() if match else ""
        if match is None or unit not in _UNITS:
            raise InvalidSize(
                f"{raw!r} is not a size; write a number with a unit such as 250MB, 2.5GB or 1GiB"
            )
        try:
            value = Decimal(match.group(1)) * _UNITS[unit]
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise InvalidSize(f"{raw!r} is not a size") from exc
        if value != value.to_integral_value():
            raise InvalidSize(f"{raw!r} is not a whole number of bytes")
        if value > MAX_BYTES:
            raise InvalidSize(f"{raw!r} is too large")
        return cls(int(value))

    @property
    def exact(self) -> str:
        """The size in the largest unit that writes it with at most three decimals:
        "2.5GB", "1GiB", "10MB", "10485.761KB", "999B". Unlike str(), which
        rounds for display, `ByteSize.parse(size.exact) == size` always holds: the API
        answers with it so that what it returns can be sent back unchanged."""
        for unit in _EXACT_UNITS:
            factor = _UNITS[unit.upper()]
            if self.bytes >= factor and (self.bytes * 1000) % factor == 0:
                # An exact quotient keeps no trailing zeros: 2500/1000 is 2.5, 2000/1000 is 2.
                return f"{Decimal(self.bytes * 1000 // factor) / 1000:f}{unit}"
        return f"{self.bytes}B"

    def __str__(self) -> str:
        for unit in ("TB", "GB", "MB", "KB"):
            factor = _UNITS[unit]
            if self.bytes >= factor:
                text = f"{Decimal(self.bytes) / factor:.2f}".rstrip("0").rstrip(".")
                return f"{text}{unit}"
        return f"{self.bytes}B"
