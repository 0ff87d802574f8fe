"""Plan limits and usage, and the pure checks between them."""

from __future__ import annotations

from dataclasses import dataclass

from mailhost.errors import InvalidInput
from mailhost.model.quantities import ByteSize


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """What a plan allows; None means unlimited."""

    max_domains: int | None
    storage: ByteSize | None
    transfer: ByteSize | None
    max_accounts: int | None

    def __post_init__(self) -> None:
        for name, value in (("domains", self.max_domains), ("accounts", self.max_accounts)):
            if value is not None and value < 0:
                raise InvalidInput(f"the number of {name} cannot be negative")


@dataclass(frozen=True, slots=True)
class Usage:
    """What a customer uses now (counts) and this month (transfer)."""

    domains: int
    accounts: int
    storage_bytes: int
    transfer_bytes: int


def domains_left(limits: PlanLimits, usage: Usage) -> int | None:
    if limits.max_domains is None:
        return None
    return max(0, limits.max_domains - usage.domains)


def accounts_left(limits: PlanLimits, usage: Usage) -> int | None:
    """Mailboxes and SMTP accounts both count toward "POP3/SMTP accounts"."""
    if limits.max_accounts is None:
        return None
    return max(0, limits.max_accounts - usage.accounts)


def transfer_fraction(limits: PlanLimits, usage: Usage) -> float | None:
    if limits.transfer is None or limits.transfer.bytes == 0:
        return None
    return usage.transfer_bytes / limits.transfer.bytes
