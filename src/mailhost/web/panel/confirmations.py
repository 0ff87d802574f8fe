"""What the confirmation pages of the customer and provider panels say: disabling and
removing a domain or a customer (both panels offer some of these)."""

from __future__ import annotations

from mailhost.model.records import CustomerRecord, DomainRecord, RemovalSummary
from mailhost.web.confirm import Confirmation

_HELD = (
    "Nothing is deleted, and Enable brings it all back; held mail then goes out with "
    "the delivery worker's next round."
)


def disabling_domain(domain: DomainRecord, base: str, back: str) -> Confirmation:
    name = domain.name.ascii
    logins = "Its domain manager and users cannot log in"
    return _disabling("domain", name, f"Mail to {name}", logins, base, back)


def disabling_customer(customer: CustomerRecord, base: str, back: str) -> Confirmation:
    logins = "Its own login, its domains' managers and users cannot log in"
    return _disabling("customer", customer.login, "Mail to all its domains", logins, base, back)


def _disabling(kind: str, name: str, mail: str, logins: str, base: str, back: str) -> Confirmation:
    return Confirmation(
        f"Disable {kind} {name}?",
        (
            f"{mail} waits at the sender's side (450 4.2.1, tried again later); "
            "its mail queued to go out is held.",
            f"{logins}, and its API tokens are refused.",
            _HELD,
        ),
        f"Disable {name}",
        f"{base}/enabled",
        back,
        fields=(("enabled", "no"),),
        deletes=False,
    )


def removing(summary: RemovalSummary, base: str, back: str) -> Confirmation:
    """Removing a domain or a customer: the figures of what goes with it."""
    what = "users" if summary.kind == "domain" else "domains with their users"
    return Confirmation(
        f"Remove {summary.kind} {summary.name}?",
        (
            f"{str(summary)[0].upper()}{str(summary)[1:]}.",
            f"Its {what}, POP3 mailboxes and SMTP accounts are deleted: their mail, logins, "
            "API tokens and mail still queued to go out.",
        ),
        f"Remove {summary.name} for good",
        f"{base}/remove",
        back,
    )
