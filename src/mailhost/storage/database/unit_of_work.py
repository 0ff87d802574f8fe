"""One transaction per service call: repositories share a session; commit or roll back."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhost.model.names import EmailAddress
from mailhost.model.records import LoginRecord, MailSecrets
from mailhost.storage.database.aliases import SqlAliases
from mailhost.storage.database.app_passwords import SqlAppPasswords
from mailhost.storage.database.directory import SqlDirectory
from mailhost.storage.database.facilities import SqlFacilities
from mailhost.storage.database.postmasters import SqlPostmasters
from mailhost.storage.database.two_factor import SqlTwoFactor
from mailhost.storage.database.usage import SqlAuditLog, SqlUsage
from mailhost.storage.database.web_access import SqlWebAccess


class SqlUnitOfWork:
    """`async with uow:` opens the transaction; leaving without commit() rolls it back."""

    directory: SqlDirectory
    facilities: SqlFacilities
    usage: SqlUsage
    audit: SqlAuditLog
    web_access: SqlWebAccess
    postmasters: SqlPostmasters
    two_factor: SqlTwoFactor
    app_passwords: SqlAppPasswords
    aliases: SqlAliases

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        session = self._sessions()
        await session.begin()
        self._session = session
        self.directory = SqlDirectory(session)
        self.facilities = SqlFacilities(session)
        self.usage = SqlUsage(session)
        self.audit = SqlAuditLog(session)
        self.web_access = SqlWebAccess(session)
        self.postmasters = SqlPostmasters(session)
        self.two_factor = SqlTwoFactor(session)
        self.app_passwords = SqlAppPasswords(session)
        self.aliases = SqlAliases(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        self._session = None
        if session is not None:
            # close() rolls back whatever was not committed (the pool resets the connection).
            await session.close()

    async def commit(self) -> None:
        assert self._session is not None, "commit() outside `async with`"
        await self._session.commit()


class SqlUnitsOfWork:
    """Factory handed to the services: each call is a fresh transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)


class SqlLoginDirectory:
    """The Directory the mail servers consult: one short transaction per lookup."""

    def __init__(self, units: SqlUnitsOfWork) -> None:
        self._units = units

    async def find_login(self, address: EmailAddress) -> LoginRecord | None:
        async with self._units() as uow:
            return await uow.directory.find_login(address)

    async def mail_secrets(self, user_id: int, prefix: str | None) -> MailSecrets:
        async with self._units() as uow:
            enrolment = await uow.two_factor.of_login("user", user_id)
            found = () if prefix is None else await uow.app_passwords.secrets(user_id, prefix)
        return MailSecrets(enrolment is not None and enrolment.enabled, found)

    async def app_password_used(self, app_password_id: int, at: datetime, client: str) -> None:
        async with self._units() as uow:
            await uow.app_passwords.touch(app_password_id, at, client)
            await uow.commit()
