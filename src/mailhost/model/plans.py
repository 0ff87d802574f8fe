"""What a plan allows."""

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
