"""SqlPostmasters: where postmaster@ and abuse@ mail goes, per domain and for the server."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import PostmasterRecord
from mailhost.storage.database.tables import Customer, Domain, ProviderAdmin


class SqlPostmasters:
    """One instance per unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def of_domain(self, name: DomainName) -> PostmasterRecord | None:
        """Where a hosted (verified) domain's postmaster mail goes; None if not hosted."""
        query = (
            select(
                Domain.id,
                Domain.customer_id,
                Domain.postmaster_address,
                Customer.contact_email,
                Domain.abuse_enabled,
            )
            .join(Customer, Domain.customer_id == Customer.id)
            .where(Domain.name == name.ascii, Domain.verified_at.is_not(None))
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        domain_id, customer_id, chosen, contact, abuse = row
        return PostmasterRecord(domain_id, customer_id, chosen or contact, bool(abuse))

    async def of_server(self) -> str | None:
        """The server's own postmaster: the email of the oldest provider admin (the one
        `init --demo` or the first `admin add` made), as root's is in /etc/aliases."""
        return await self._session.scalar(
            select(ProviderAdmin.email).order_by(ProviderAdmin.id).limit(1)
        )

    async def set(
        self,
        domain_id: int,
        *,
        address: EmailAddress | Literal["keep"] | None = "keep",
        abuse_enabled: bool | None = None,
    ) -> None:
        """Only what is given changes, so two changes at once do not undo each other.
        `address` None: back to the customer's contact address."""
        values: dict[str, object] = {}
        if address != "keep":
            values["postmaster_address"] = None if address is None else str(address)
        if abuse_enabled is not None:
            values["abuse_enabled"] = abuse_enabled
        if values:
            await self._session.execute(
                update(Domain).where(Domain.id == domain_id).values(**values)
            )
