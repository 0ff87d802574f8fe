"""Provider admin accounts: the operator's logins for the provider panel and its API tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailhost.interfaces import Credential, UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.model.names import EmailAddress
from mailhost.services import access
from mailhost.services.accounts import parse_login
from mailhost.services.passwords import Passwords, check_strength


class ProviderAdminService:
    def __init__(self, units: UnitOfWorkFactory, passwords: Passwords) -> None:
        self._units = units
        self._passwords = passwords

    async def add(self, actor: Actor, login: str, email: str, password: str) -> Credential:
        access.require_provider(actor, "add provider admins")
        login = parse_login(login)
        contact = EmailAddress.parse(email)
        check_strength(password, identity=login)
        password_hash = await self._passwords.hash(password)
        async with self._units() as uow:
            admin = await uow.web_access.add_admin(login, password_hash, str(contact))
            await uow.audit.record(str(actor), "admin.add", login, None)
            await uow.commit()
        return admin

    async def admins(self, actor: Actor) -> Sequence[Credential]:
        access.require_provider(actor, "list provider admins")
        async with self._units() as uow:
            return await uow.web_access.admins()

    async def queue_counts(self, actor: Actor) -> Mapping[str, int]:
        """Outbound deliveries by status (queued, delivered, failed) for the overview."""
        access.require_provider(actor, "see the mail queue")
        async with self._units() as uow:
            return await uow.web_access.queue_counts()
