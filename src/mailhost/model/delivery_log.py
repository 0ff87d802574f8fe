"""The delivery log as its readers ask for it: one entry per attempt, a search, a page.

Like cPanel's "Track Delivery": who sent what to whom, when, and what the remote
server answered. The query is parsed once, where it enters (CLI option, panel form,
API query string), and the service scopes it to what the asking login may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from mailhost.errors import InvalidInput
from mailhost.model.names import DomainName

DeliveryStatus = Literal["delivered", "deferred", "failed", "deleted"]
STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)
MAX_PAGE = 500
MAX_SEARCH = 256
DEFAULT_PAGE = 50


@dataclass(frozen=True, slots=True)
class DeliveryLogRecord:
    """One attempt and its outcome, as `delivery_log` keeps it."""

    at: datetime
    delivery_id: int | None
    message_id: str
    sender: str  # "" is the null sender
    recipient: str
    status: str  # one of STATUSES
    remote_reply: str


@dataclass(frozen=True, slots=True)
class DeliveryLogPage:
    """The entries one page shows, newest first, and how many match in all."""

    entries: Sequence[DeliveryLogRecord]
    total: int


def parse_status(raw: str) -> DeliveryStatus | None:
    """ "" means any status; otherwise one of STATUSES, named in the refusal."""
    text = raw.strip().lower()
    if not text:
        return None
    for status in STATUSES:
        if status == text:
            return status
    raise InvalidInput(f"status {raw.strip()!r} is unknown: use {', '.join(STATUSES)}")


@dataclass(frozen=True, slots=True)
class DeliveryLogQuery:
    """What to look for: `search` is a case-insensitive part of the sender, the recipient
    or the message id; `status` and `domain` narrow it; `limit` and `offset` page it."""

    search: str = ""
    status: DeliveryStatus | None = None
    domain: DomainName | None = None
    limit: int = DEFAULT_PAGE
    offset: int = 0

    def __post_init__(self) -> None:
        if len(self.search) > MAX_SEARCH:
            raise InvalidInput(f"the search text is too long: at most {MAX_SEARCH} characters")
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"a page shows 1 to {MAX_PAGE} entries, not {self.limit}")
        if self.offset < 0:
            raise InvalidInput(f"the offset must be 0 or more, not {self.offset}")

    @classmethod
    def parse(
        cls,
        search: str = "",
        status: str = "",
        domain: str = "",
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
    ) -> DeliveryLogQuery:
        """From what a person typed: blank fields mean "any"."""
        return cls(
            search=search.strip(),
            status=parse_status(status),
            domain=DomainName.parse(domain.strip()) if domain.strip() else None,
            limit=limit,
            offset=offset,
        )

    @property
    def older(self) -> int:
        """The offset of the next (older) page."""
        return self.offset + self.limit

    @property
    def newer(self) -> int:
        """The offset of the previous (newer) page."""
        return max(0, self.offset - self.limit)
