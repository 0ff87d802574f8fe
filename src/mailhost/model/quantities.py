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

    def __str__(self) -> str:
        for unit in ("TB", "GB", "MB", "KB"):
            factor = _UNITS[unit]
            if self.bytes >= factor:
                text = f"{Decimal(self.bytes) / factor:.2f}".rstrip("0").rstrip(".")
                return f"{text}{unit}"
        return f"{self.bytes}B"
