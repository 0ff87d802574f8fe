"""Who changed what: the audit log as each actor may read it."""

from __future__ import annotations

from collections.abc import Sequence

from mailhost.errors import NotPermitted
from mailhost.interfaces import UnitOfWorkFactory
from mailhost.model.actors import Actor, DomainActor, ProviderActor, UserActor
from mailhost.model.records import AuditRecord

MAX_ENTRIES = 500


class AuditService:
    def __init__(self, units: UnitOfWorkFactory) -> None:
        self._units = units

    async def entries(self, actor: Actor, limit: int = 100) -> Sequence[AuditRecord]:
        """Newest first: everything for the provider, a customer's own entries for the
        customer, and the entries about its own domain for a domain manager."""
        if isinstance(actor, UserActor):
            raise NotPermitted("domain users cannot read the audit log")
        limit = max(1, min(limit, MAX_ENTRIES))
        customer_id = None if isinstance(actor, ProviderActor) else actor.customer_id
        async with self._units() as uow:
            entries = await uow.audit.entries(customer_id, limit)
        if isinstance(actor, DomainActor):
            name = actor.domain.ascii
            return [e for e in entries if e.target == name or e.target.endswith("@" + name)]
        return entries
