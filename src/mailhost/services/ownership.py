"""Proof of domain ownership: the DNS TXT record a customer publishes before a domain receives.

A domain a customer adds is pending until a TXT record `mailhost-verification=<token>`
is seen at the domain itself (the token is random, made when the domain is added,
and shown on its DNS page). Until then mailhost treats the domain as one it does
not host: the MX refuses its mail as relaying, and mail for it from every tenant,
mailhost's own reset links and notices included, goes out through the queue like
any external mail. Without the proof, anyone could add a domain they do not own
and read the mail other tenants (or mailhost itself) send to it.

The record sits at the domain itself rather than under an underscore name because
that is where every DNS provider's interface lets a customer add TXT records, and
it lives beside the SPF record they publish there anyway.
"""

from __future__ import annotations

import secrets

from mailhost.errors import OwnershipNotProven
from mailhost.interfaces import TxtLookup
from mailhost.model.records import DomainRecord

TXT_PREFIX = "mailhost-verification="


def new_verification_token() -> str:
    """Unguessable, so that nobody can publish a domain's proof before it is added."""
    return secrets.token_hex(16)


def verification_value(token: str) -> str:
    return f"{TXT_PREFIX}{token}"


async def check_published(lookup: TxtLookup, domain: DomainRecord) -> None:
    """Return if the domain's TXT proof is published; else raise OwnershipNotProven saying
    what was found. A lookup without an answer raises TemporaryFailure (from `lookup`)."""
    name = domain.name.ascii
    wanted = verification_value(domain.verification_token)
    found = [value.strip() for value in await lookup.txt(name)]
    if wanted in found:
        return
    others = [value for value in found if value.startswith(TXT_PREFIX)]
    if others:
        raise OwnershipNotProven(
            f"the TXT record at {name} is {others[0]}, not {wanted}; "
            "publish this domain's value and check again (DNS changes can take an hour)"
        )
    raise OwnershipNotProven(
        f"no TXT record {wanted} found at {name}; "
        "publish it and check again (DNS changes can take an hour)"
    )
