"""Composition root: build storage and services from Settings; start and stop them."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine

from mailhost.services.accounts import AccountService
from mailhost.services.passwords import Passwords
from mailhost.services.usage import UsageService
from mailhost.services.users import UserService
from mailhost.settings import Settings
from mailhost.storage.database.engine import create_engine, session_factory
from mailhost.storage.database.migrations import migrate
from mailhost.storage.database.unit_of_work import SqlUnitsOfWork
from mailhost.tls.authority import CertificateAuthority
from mailhost.tls.contexts import CertificateStore


@dataclass(frozen=True, slots=True)
class Services:
    accounts: AccountService
    users: UserService
    usage: UsageService
    passwords: Passwords


class Runtime:
    """Everything one process needs; `async with Runtime(settings) as rt:` opens it."""

    def __init__(self, settings: Settings, passwords: Passwords | None = None) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings.database.url)
        self.units = SqlUnitsOfWork(session_factory(self.engine))
        hasher = passwords or Passwords()
        self.services = Services(
            accounts=AccountService(self.units, hasher),
            users=UserService(self.units, hasher),
            usage=UsageService(self.units),
            passwords=hasher,
        )

    async def migrate(self) -> None:
        await migrate(self.engine)

    async def prepare_tls(self) -> None:
        """The local CA and this host's certificate; created once, kept after."""
        await asyncio.to_thread(self._prepare_tls)

    def _prepare_tls(self) -> None:
        tls = self.settings.tls
        authority = CertificateAuthority.load_or_create(tls.ca_dir)
        hostname = self.settings.server.hostname
        if CertificateStore(tls.certs_dir, hostname).files_for(hostname) is None:
            authority.issue([hostname], tls.certs_dir)

    async def serve(self) -> None:
        """Run every enabled server until SIGINT/SIGTERM."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"mailhost serving from {self.settings.server.data_dir}", flush=True)
        await stop.wait()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.engine.dispose()
