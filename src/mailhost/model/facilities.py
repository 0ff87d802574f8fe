"""What an SMTP account lets its user do, and the short identifiers listings show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mailhost.errors import InvalidInput
from mailhost.model.quantities import ByteSize


class SenderScope(StrEnum):
    """Which envelope/From addresses the user may send as."""

    OWN = "own"
    DOMAIN = "domain"


@dataclass(frozen=True, slots=True)
class SmtpFacilities:
    """The facilities enabled on one SMTP account; None means no limit."""

    relay: bool = True
    sender_scope: SenderScope = SenderScope.OWN
    hourly_limit: int | None = None
    max_recipients: int | None = None
    max_message_size: ByteSize | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("hourly limit", self.hourly_limit),
            ("recipients per message", self.max_recipients),
        ):
            if value is not None and value < 1:
                raise InvalidInput(f"{name} must be at least 1 (omit it for no limit)")

    @property
    def identifiers(self) -> tuple[str, ...]:
        """Short identifiers shown beside each SMTP account in listings.

        R relay to other domains · D send as any address of the domain ·
        H<n> messages per hour · N<n> recipients per message · S<size> max message size
        """
        ids: list[str] = []
        if self.relay:
            ids.append("R")
        if self.sender_scope is SenderScope.DOMAIN:
            ids.append("D")
        if self.hourly_limit is not None:
            ids.append(f"H{self.hourly_limit}")
        if self.max_recipients is not None:
            ids.append(f"N{self.max_recipients}")
        if self.max_message_size is not None:
            ids.append(f"S{self.max_message_size}")
        return tuple(ids)

    @property
    def label(self) -> str:
        return " ".join(self.identifiers) or "-"


_ID = re.compile(r"^(R|D|H(\d+)|N(\d+)|S(.+))$")


def parse_identifiers(text: str) -> SmtpFacilities:
    """The inverse of `SmtpFacilities.label`; used by scripts and tests."""
    relay = False
    scope = SenderScope.OWN
    hourly: int | None = None
    recipients: int | None = None
    size: ByteSize | None = None
    for item in text.split():
        match = _ID.match(item)
        if match is None:
            raise InvalidInput(
                f"unknown facility identifier {item!r} (known: R D H<n> N<n> S<size>)"
            )
        if item == "R":
            relay = True
        elif item == "D":
            scope = SenderScope.DOMAIN
        elif match.group(2):
            hourly = int(match.group(2))
        elif match.group(3):
            recipients = int(match.group(3))
        else:
            size = ByteSize.parse(match.group(4))
    return SmtpFacilities(relay, scope, hourly, recipients, size)
