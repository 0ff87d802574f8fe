"""DKIM signing keys per hosted domain, in the `dkim_keys` table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhost.model.names import DomainName
from mailhost.storage.database.tables import DkimKey, Domain


@dataclass(frozen=True, slots=True)
class StoredDkimKey:
    selector: str
    algorithm: str  # ed25519 | rsa
    private_key: str  # PEM (PKCS #8)
    public_key: str  # base64, as the p= tag publishes it


class SqlDkimKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def keys_for(self, domain: DomainName) -> Sequence[StoredDkimKey]:
        """The domain's keys by selector; empty for a domain we do not host."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DkimKey)
                .join(Domain, Domain.id == DkimKey.domain_id)
                .where(Domain.name == domain.ascii)
                .order_by(DkimKey.selector)
            )
            return [
                StoredDkimKey(row.selector, row.algorithm, row.private_key, row.public_key)
                for row in rows
            ]

    async def add(self, domain: DomainName, key: StoredDkimKey) -> bool:
        """Store a key; False if the domain is not hosted or the selector is taken."""
        try:
            async with self._sessions.begin() as session:
                domain_id = await session.scalar(
                    select(Domain.id).where(Domain.name == domain.ascii)
                )
                if domain_id is None:
                    return False
                session.add(
                    DkimKey(
                        domain_id=domain_id,
                        selector=key.selector,
                        algorithm=key.algorithm,
                        private_key=key.private_key,
                        public_key=key.public_key,
                    )
                )
        except IntegrityError:
            # Another process made this selector's key first; the caller reads theirs.
            return False
        return True
