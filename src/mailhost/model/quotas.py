"""Mailbox quotas: the smallest one, and a plan's storage shared out among them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailhost.errors import InvalidSize
from mailhost.model.quantities import ByteSize

# Below this a mailbox holds hardly a message; "no quota" is None, never 0 or -1.
MIN_QUOTA = ByteSize(10**6)


def check_quota(quota: ByteSize | None) -> None:
    if quota is not None and quota < MIN_QUOTA:
        raise InvalidSize(f"a mailbox quota is at least {MIN_QUOTA}; {quota.exact} is less")


def parse_quota(raw: str) -> ByteSize:
    """A quota as written at an edge ("250MB"); a negative one is refused as too small.
    The minimum itself is the service's to hold (services/quotas.py), so that a quota
    sent back unchanged is never refused."""
    if raw.strip().startswith("-"):
        raise InvalidSize(f"a mailbox quota is at least {MIN_QUOTA}; {raw.strip()} is less")
    return ByteSize.parse(raw)


@dataclass(frozen=True, slots=True)
class Allocation:
    """A customer's plan storage as given out to its mailboxes as quotas."""

    plan: str
    storage: ByteSize | None  # None: the plan has no storage limit
    allocated: int  # bytes: the quotas of the mailboxes together
    without_quota: int  # mailboxes with no quota (a plan with a storage limit allows none)

    @classmethod
    def of(
        cls, plan: str, storage: ByteSize | None, quotas: Iterable[ByteSize | None]
    ) -> Allocation:
        given = list(quotas)
        allocated = sum(q.bytes for q in given if q is not None)
        return cls(plan, storage, allocated, sum(1 for q in given if q is None))

    @property
    def left(self) -> ByteSize | None:
        """What can still be given out; None without a storage limit."""
        if self.storage is None:
            return None
        return ByteSize(max(self.storage.bytes - self.allocated, 0))

    def fits(self, quota: ByteSize | None) -> bool:
        """May one more mailbox (besides those counted) have `quota`?"""
        left = self.left
        return left is None or (quota is not None and quota <= left)
