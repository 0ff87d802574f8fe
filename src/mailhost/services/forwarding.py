"""Where the MX sends mail for an address without a user: an alias's targets, an SRS
bounce's original sender, or the domain's catch-all mailbox.

services/inbound_policy.py asks here once `lookup` found the domain hosted and
enabled but no user of that name. An alias expands at RCPT (model/aliases.py):
each hosted mailbox it reaches gets a copy, each address elsewhere a relayed copy
whose envelope sender delivery rewrites with SRS (model/srs.py). A bounce to one
of those SRS addresses comes back here and goes on to the sender it names;
a forged, altered or expired one is refused. The catch-all is asked last, after
the role addresses: only a local part nothing else takes goes there.

An alias never delivers into another customer's mailbox, and relays only to the
targets that were elsewhere when they were added (services/aliases.py): a hosted
target whose domain has gone since is skipped, not sent out to the Internet.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from mailhost.errors import (
    ExpiredSrsAddress,
    ForgedSrsAddress,
    InvalidAddress,
    InvalidSrsAddress,
)
from mailhost.interfaces import UnitOfWork, UnitOfWorkFactory
from mailhost.model.aliases import MAX_DEPTH, Resolved, resolve
from mailhost.model.envelope import Accept, Expand, Owner, Reason, Refuse, Relay, Verdict
from mailhost.model.names import EmailAddress
from mailhost.model.records import AliasRecord, AliasTarget, MailboxRecord
from mailhost.model.srs import SrsCodec, is_srs

Lookup = Callable[[EmailAddress], Awaitable[Accept | Refuse]]
# A target that no longer takes mail (its user or mailbox was removed): the alias's
# other targets still get the message.
_GONE = frozenset({Reason.UNKNOWN_USER, Reason.NO_MAILBOX})


async def alias_graph(
    uow: UnitOfWork, alias: AliasRecord
) -> Mapping[EmailAddress, tuple[AliasTarget, ...]]:
    """The alias and every alias of its customer it reaches, with their targets: one
    query per step of the chain, at most MAX_DEPTH + 1 (a longer chain is refused)."""
    graph: dict[EmailAddress, tuple[AliasTarget, ...]] = {alias.address: alias.targets}
    frontier = {t.address for t in alias.targets if not t.external}
    for _ in range(MAX_DEPTH + 1):
        found = await uow.aliases.targets_of(frontier, alias.customer_id)
        graph.update(found)
        reached = {t.address for ts in found.values() for t in ts if not t.external}
        frontier = reached - graph.keys()
        if not frontier:
            break
    return graph


class Forwarding:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        lookup: Lookup,
        srs: SrsCodec | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._units = units
        self._lookup = lookup
        self._srs = srs
        self._clock = clock

    async def route(self, address: EmailAddress) -> Verdict | None:
        """An SRS bounce or an alias at a hosted, enabled domain; None if neither."""
        if self._srs is not None and is_srs(address.local):
            return await self._bounce(self._srs, address)
        async with self._units() as uow:
            alias = await uow.aliases.of_address(address)
            if alias is None:
                return None
            graph = await alias_graph(uow, alias)
        return await self._expand(address, alias, graph)

    async def catch_all(self, address: EmailAddress) -> Verdict | None:
        """The domain's catch-all mailbox for an unknown local part; None if it has none
        (or the mailbox is gone), so the address is refused as unknown."""
        async with self._units() as uow:
            record = await uow.aliases.catch_all(address.domain)
        if record is None or record.mailbox is None:
            return None
        found = await self._lookup(record.mailbox)
        if isinstance(found, Accept):
            return found
        if found.reason in _GONE or found.reason is Reason.RELAY_DENIED:
            return None
        return Refuse(found.reason, str(address))

    async def _expand(
        self,
        address: EmailAddress,
        alias: AliasRecord,
        graph: Mapping[EmailAddress, tuple[AliasTarget, ...]],
    ) -> Verdict:
        resolution = resolve(alias.address, {a: [t.address for t in ts] for a, ts in graph.items()})
        if not isinstance(resolution, Resolved):
            return Refuse(Reason.ALIAS_LOOP, str(address))
        external = {t.address for ts in graph.values() for t in ts if t.external}
        mailboxes: list[MailboxRecord] = []
        forwards: list[EmailAddress] = []
        for target in resolution.targets:
            found = await self._lookup(target)
            if isinstance(found, Accept):
                if found.mailbox.customer_id == alias.customer_id or target in external:
                    mailboxes.append(found.mailbox)
            elif found.reason is Reason.RELAY_DENIED:
                if target in external:
                    forwards.append(target)
            elif found.reason not in _GONE:
                # Full or held: the whole message waits, none of the copies is lost.
                return Refuse(found.reason, str(address))
        if not mailboxes and not forwards:
            return Refuse(Reason.UNKNOWN_USER, str(address))
        owner = Owner(alias.customer_id, alias.domain_id)
        return Expand(tuple(mailboxes), tuple(forwards), alias.address.domain, owner)

    async def _bounce(self, srs: SrsCodec, address: EmailAddress) -> Verdict:
        """A bounce to an address our SRS made goes on to the sender it names."""
        try:
            original = EmailAddress.parse(srs.reverse(str(address), self._clock()))
        except ForgedSrsAddress:
            return Refuse(Reason.SRS_FORGED, str(address))
        except ExpiredSrsAddress:
            return Refuse(Reason.SRS_EXPIRED, str(address))
        except (InvalidSrsAddress, InvalidAddress):
            return Refuse(Reason.SRS_MALFORMED, str(address))
        async with self._units() as uow:
            domain = await uow.directory.domain_by_name(address.domain)
        if domain is None:  # removed this very moment
            return Refuse(Reason.RELAY_DENIED, str(address))
        found = await self._lookup(original)
        if isinstance(found, Accept):
            return found
        if found.reason is Reason.RELAY_DENIED:
            # Queued for the forwarding domain: held while it is disabled, counted
            # toward its customer's transfer like the forwarded mail it answers.
            return Relay(original, Owner(domain.customer_id, domain.id))
        return Refuse(found.reason, str(address))
