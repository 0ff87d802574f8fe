"""Where a domain's postmaster@ and abuse@ mail goes: its owner's choice, checked and audited.

RFC 5321 §4.5.1 requires postmaster@ at every domain the server receives for;
RFC 2142 §2 asks for abuse@. Without a mailbox of that name the MX gives such
mail to the address the domain's owner chose here (services/inbound_policy.py),
by default the customer's contact address. abuse@ is off until turned on, as
in Postfix and mailcow, where it is an alias someone adds: abuse@ draws spam,
and a domain may want it as a user of its own.

The choice is the domain's manager's, its customer's or the provider's. A hosted
address must be a mailbox the one choosing manages: a tenant can never send its
role mail into another tenant's mailbox. Any address elsewhere may be chosen:
the MX relays that mail to it, as mail for a remote address.
"""

from __future__ import annotations

from typing import Literal

from mailhost.errors import NoMailbox, NotPermitted
from mailhost.interfaces import UnitOfWork, UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import DomainRecord
from mailhost.services import access

# The customer's contact address, chosen by no address of its own.
DEFAULT: Literal["default"] = "default"


class PostmasterService:
    def __init__(self, units: UnitOfWorkFactory) -> None:
        self._units = units

    async def set_postmaster(
        self,
        actor: Actor,
        name: DomainName,
        *,
        to: EmailAddress | Literal["default"] | None = None,
        abuse: bool | None = None,
    ) -> DomainRecord:
        """Send the domain's postmaster@ (and abuse@, when on) mail `to` an address, or
        to the customer's contact address (DEFAULT); None and None change nothing."""
        async with self._units() as uow:
            domain = access.managed_domain(actor, await uow.directory.domain_by_name(name), name)
            address = None if to == DEFAULT else to
            if address is not None:
                address = await _checked_target(uow, actor, domain, address)
            await uow.postmasters.set(
                domain.id, address="keep" if to is None else address, abuse_enabled=abuse
            )
            changed = await uow.directory.domain_by_name(name)
            assert changed is not None  # read in this transaction a moment ago
            await uow.audit.record(
                str(actor), "domain.postmaster", name.ascii, domain.customer_id, _detail(changed)
            )
            await uow.commit()
        return changed


async def _checked_target(
    uow: UnitOfWork, actor: Actor, domain: DomainRecord, target: EmailAddress
) -> EmailAddress:
    """A hosted target is a mailbox the actor manages, of the domain's own customer
    (returned as its mailbox is named); an address elsewhere is kept as written."""
    hosting = await uow.directory.domain_by_name(target.domain)
    if hosting is None or not hosting.verified:
        return target  # an address elsewhere (a pending domain is not hosted): relayed to it
    if hosting.customer_id != domain.customer_id or not access.may_manage_domain(actor, hosting):
        raise NotPermitted(
            f"{target} is not a mailbox you manage: postmaster mail of {domain.name} can go "
            "to a mailbox of your own or to an address outside this server"
        )
    found = await uow.directory.find_recipient(target)
    if found is None or found.mailbox is None:
        raise NoMailbox(f"{target} has no POP3 mailbox: postmaster mail of {domain.name} needs one")
    return found.mailbox.address


def _detail(domain: DomainRecord) -> str:
    to = "contact" if domain.postmaster_address is None else str(domain.postmaster_address)
    return f"postmaster={to} abuse={'on' if domain.abuse_enabled else 'off'}"
