"""SqlAliases: aliases, their targets and domains' catch-alls, as frozen records."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.errors import AliasExists
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import AliasRecord, AliasTarget, CatchAllRecord
from mailhost.storage.database.directory import insert_unique
from mailhost.storage.database.tables import Alias, AliasTargetRow, CatchAll, Domain, DomainUser


class SqlAliases:
    """One instance per unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def of_address(self, address: EmailAddress) -> AliasRecord | None:
        found = await self._records(_at(address))
        return found[0] if found else None

    async def of_domain(self, domain_id: int) -> Sequence[AliasRecord]:
        return await self._records(Alias.domain_id == domain_id)

    async def targets_of(
        self, addresses: Collection[EmailAddress], customer_id: int
    ) -> Mapping[EmailAddress, tuple[AliasTarget, ...]]:
        """Those of `addresses` that are aliases of the customer's domains, with their
        targets; one query for the lot (one per step of a chain)."""
        if not addresses:
            return {}
        records = await self._records(
            or_(*(_at(address) for address in addresses)), Domain.customer_id == customer_id
        )
        return {record.address: record.targets for record in records}

    async def add(self, domain_id: int, local_part: str, targets: Sequence[AliasTarget]) -> None:
        """The alias with these targets added (made if new); a target it has stays once."""
        alias_id = await self._session.scalar(
            select(Alias.id).where(Alias.domain_id == domain_id, Alias.local_part == local_part)
        )
        if alias_id is None:
            row = Alias(domain_id=domain_id, local_part=local_part)
            await insert_unique(self._session, row, AliasExists(f"alias {local_part} exists"))
            alias_id = row.id
        have = set(
            await self._session.scalars(
                select(AliasTargetRow.address).where(AliasTargetRow.alias_id == alias_id)
            )
        )
        self._session.add_all(
            AliasTargetRow(alias_id=alias_id, address=str(t.address), external=t.external)
            for t in targets
            if str(t.address) not in have
        )
        await self._session.flush()

    async def remove(self, alias_id: int, targets: Collection[EmailAddress] | None) -> None:
        """The given targets, or with None the whole alias; an alias left without
        targets goes too."""
        if targets is not None:
            await self._session.execute(
                delete(AliasTargetRow).where(
                    AliasTargetRow.alias_id == alias_id,
                    AliasTargetRow.address.in_([str(t) for t in targets]),
                )
            )
            left = await self._session.scalar(
                select(func.count())
                .select_from(AliasTargetRow)
                .where(AliasTargetRow.alias_id == alias_id)
            )
            if left:
                return
        await self._session.execute(
            delete(AliasTargetRow).where(AliasTargetRow.alias_id == alias_id)
        )
        await self._session.execute(delete(Alias).where(Alias.id == alias_id))

    async def catch_all(self, name: DomainName) -> CatchAllRecord | None:
        """The catch-all of a hosted (verified) domain; None if the domain is not hosted."""
        query = (
            select(Domain.id, Domain.customer_id, Domain.name, DomainUser.username)
            .outerjoin(CatchAll, CatchAll.domain_id == Domain.id)
            .outerjoin(DomainUser, DomainUser.id == CatchAll.user_id)
            .where(Domain.name == name.ascii, Domain.verified_at.is_not(None))
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        domain_id, customer_id, _, username = row
        if username is None:
            return CatchAllRecord(domain_id, customer_id, None)
        target_domain = await self._session.scalar(
            select(Domain.name)
            .join(DomainUser, DomainUser.domain_id == Domain.id)
            .join(CatchAll, CatchAll.user_id == DomainUser.id)
            .where(CatchAll.domain_id == domain_id)
        )
        assert target_domain is not None  # joined a moment ago
        return CatchAllRecord(
            domain_id, customer_id, EmailAddress(username, DomainName(target_domain))
        )

    async def set_catch_all(self, domain_id: int, user_id: int | None) -> None:
        """Send the domain's unknown local parts to the user's mailbox; None: refuse them."""
        await self._session.execute(delete(CatchAll).where(CatchAll.domain_id == domain_id))
        if user_id is not None:
            self._session.add(CatchAll(domain_id=domain_id, user_id=user_id))
            await self._session.flush()

    async def _records(self, *conditions: ColumnElement[bool]) -> list[AliasRecord]:
        query = (
            select(Alias.id, Alias.domain_id, Domain.customer_id, Domain.name, Alias.local_part)
            .join(Domain, Alias.domain_id == Domain.id)
            .where(*conditions)
            .order_by(Domain.name, Alias.local_part)
        )
        aliases = (await self._session.execute(query)).all()
        if not aliases:
            return []
        rows = await self._session.execute(
            select(AliasTargetRow.alias_id, AliasTargetRow.address, AliasTargetRow.external)
            .where(AliasTargetRow.alias_id.in_([row[0] for row in aliases]))
            .order_by(AliasTargetRow.id)
        )
        targets: dict[int, list[AliasTarget]] = {}
        for alias_id, address, external in rows:
            targets.setdefault(alias_id, []).append(
                AliasTarget(EmailAddress.parse(address), bool(external))
            )
        return [
            AliasRecord(
                alias_id,
                domain_id,
                customer_id,
                EmailAddress(local, DomainName(name)),
                tuple(targets.get(alias_id, ())),
            )
            for alias_id, domain_id, customer_id, name, local in aliases
        ]


def _at(address: EmailAddress) -> ColumnElement[bool]:
    return and_(Domain.name == address.domain.ascii, Alias.local_part == address.local.lower())
