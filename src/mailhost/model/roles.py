"""Role addresses every hosted domain answers without a user of that name: postmaster@
(RFC 5321 §4.5.1) and, where its owner turns it on, abuse@ (RFC 2142 §2)."""

from __future__ import annotations

from enum import StrEnum

from mailhost.model.names import DomainName, EmailAddress


class Role(StrEnum):
    POSTMASTER = "postmaster"
    ABUSE = "abuse"


def role_of(address: EmailAddress) -> Role | None:
    """The role `address` names, if any; RFC 5321 §4.5.1: matched case-insensitively."""
    local = address.local.lower()
    for role in Role:
        if local == role.value:
            return role
    return None


def forward_path(raw: str, hostname: str) -> EmailAddress:
    """RCPT TO's address as aiosmtpd hands it over.

    RFC 5321 §4.1.1.3: `<Postmaster>` without a domain (in any case) names this
    server's postmaster, so it becomes postmaster@<the server's host name>; the
    host name was checked by settings.py, and may be a single label.
    """
    if raw.strip().removeprefix("<").removesuffix(">").lower() == Role.POSTMASTER.value:
        return EmailAddress(Role.POSTMASTER.value, DomainName(hostname))
    return EmailAddress.parse(raw)
