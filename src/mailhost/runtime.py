"""Composition root: build storage and services from Settings; start and stop servers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Protocol

import dns.asyncresolver
from sqlalchemy.ext.asyncio import AsyncEngine

from mailhost.model.records import LoginRecord
from mailhost.model.srs import SrsCodec
from mailhost.outbound.dkim import DkimKeyring
from mailhost.outbound.routing import Router
from mailhost.outbound.transport import SmtpTransport
from mailhost.outbound.worker import DeliveryWorker, WorkerConfig
from mailhost.pop3.listeners import Pop3Dependencies, start_pop3_server
from mailhost.services.accounts import AccountService
from mailhost.services.aliases import AliasService
from mailhost.services.authentication import AuthenticationService
from mailhost.services.delivery import DeliveryService
from mailhost.services.dns_records import ServicePorts
from mailhost.services.inbound_policy import InboundPolicy
from mailhost.services.mail_queue import MailQueueService
from mailhost.services.mailbox_usage import MailboxUsageService
from mailhost.services.passwords import Passwords
from mailhost.services.postmaster import PostmasterService
from mailhost.services.submission_policy import SubmissionPolicy
from mailhost.services.throttle import Penalties
from mailhost.services.transfer_notices import TransferNotices
from mailhost.services.usage import UsageService
from mailhost.services.users import UserService
from mailhost.services.web_access import build_web_access
from mailhost.settings import Settings, SmtpListener
from mailhost.smtp.admission import Admission, SessionLimits
from mailhost.smtp.listeners import (
    SessionDependencies,
    start_mx_server,
    start_submission_server,
)
from mailhost.storage.database.dkim_keys import SqlDkimKeys
from mailhost.storage.database.engine import create_engine, session_factory
from mailhost.storage.database.login_attempts import SqlLoginAttempts
from mailhost.storage.database.queue import SqlDeliveryQueue
from mailhost.storage.database.removals import SqlRemovalJournal
from mailhost.storage.database.submission_counters import SqlSubmissionCounters
from mailhost.storage.database.unit_of_work import SqlLoginDirectory, SqlUnitsOfWork
from mailhost.storage.database.usage_counters import SqlUsageCounters
from mailhost.storage.maildir import MaildirStore
from mailhost.storage.spool import SpoolDirectory
from mailhost.storage.srs_secret import load_or_create_srs_secret
from mailhost.storage.sweeper import FileSweeper
from mailhost.tls.authority import CertificateAuthority
from mailhost.tls.contexts import CertificateStore
from mailhost.tls.issuer import LocalIssuer
from mailhost.web.dns_check import DnsChecker, configured_resolver

log = logging.getLogger("mailhost")
IO_THREADS = 64
GC_FIRST_GENERATION = 50_000  # allocations between collections; Python's default is 700
RECIPIENT_CACHE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Services:
    accounts: AccountService
    users: UserService
    usage: UsageService
    passwords: Passwords
    authentication: AuthenticationService
    inbound: InboundPolicy
    delivery: DeliveryService
    mail_queue: MailQueueService
    mailbox_usage: MailboxUsageService
    postmaster: PostmasterService
    aliases: AliasService


class ListeningServer(Protocol):
    """An asyncio.Server, or the web panel's uvicorn server made to look like one."""

    @property
    def sockets(self) -> Sequence[socket.socket]: ...
    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Listening:
    name: str
    server: ListeningServer
    security: str
    url: str | None = None
    sessions: Admission | None = None  # SMTP listeners: their live sessions, for the stop

    @property
    def address(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"


class Runtime:
    """Everything one process needs; `async with Runtime(settings) as rt:` opens it."""

    def __init__(self, settings: Settings, passwords: Passwords | None = None) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings.database.url)
        self.units = SqlUnitsOfWork(session_factory(self.engine))
        self.store = MaildirStore(settings.mail.maildir_root, settings.mail.sync)
        self.counters = SqlUsageCounters(self.engine)
        self.certificates = CertificateStore(settings.tls.certs_dir, settings.server.hostname)
        hasher = passwords or Passwords()
        usage = UsageService(self.units)
        self.spool = SpoolDirectory(settings.server.data_dir / "spool")
        self.queue = SqlDeliveryQueue(session_factory(self.engine))
        self.dkim = DkimKeyring(SqlDkimKeys(session_factory(self.engine)))
        issuer = LocalIssuer(settings.tls.ca_dir, self.certificates, settings.tls.certs_dir)
        # Deletes what removals leave on disk: after their commits, at start, periodically.
        self.sweeper = FileSweeper(
            SqlRemovalJournal(session_factory(self.engine)),
            settings.mail.maildir_root,
            self.spool,
            issuer,
        )
        self.dns = DnsChecker.from_settings(settings.dns)  # ownership proofs and the DNS page
        delivery = settings.delivery
        srs = SrsCodec(
            load_or_create_srs_secret(delivery.srs_secret_file), delivery.srs_max_age_days
        )
        inbound = InboundPolicy(
            self.units,
            cache_seconds=RECIPIENT_CACHE_SECONDS,
            hostname=settings.server.hostname,
            srs=srs,
        )
        auth = settings.auth
        # Shared by every login path and, through the database, by every node.
        self.penalties = penalties = Penalties(
            SqlLoginAttempts(session_factory(self.engine)),
            max_seconds=auth.penalty_max_seconds,
            window_seconds=auth.penalty_window_seconds,
        )
        self.services = Services(
            accounts=AccountService(
                self.units,
                hasher,
                issuer,
                dkim=self.dkim,
                dns=self.dns,
                sweeper=self.sweeper,
            ),
            users=UserService(self.units, hasher, self.sweeper),
            usage=usage,
            passwords=hasher,
            authentication=AuthenticationService(
                SqlLoginDirectory(self.units), hasher, penalties, cache_seconds=auth.cache_seconds
            ),
            inbound=inbound,
            delivery=DeliveryService(
                self.store,
                usage,
                inbound,
                self.counters,
                self.spool,
                self.queue,
                queue_lifetime=timedelta(hours=settings.delivery.queue_lifetime_hours),
            ),
            mail_queue=MailQueueService(self.queue, self.spool, self.units),
            mailbox_usage=MailboxUsageService(self.units, self.store),
            postmaster=PostmasterService(self.units),
            aliases=AliasService(
                self.units, max_external_forwards=delivery.max_external_forwards_per_domain
            ),
        )
        counters = SqlSubmissionCounters(session_factory(self.engine))
        notices = TransferNotices(
            counters, self.services.delivery, f"postmaster@{settings.server.hostname}"
        )
        self.submission = SubmissionPolicy(self.units, counters, inbound, notices)
        self.notices = notices
        self.worker = self._delivery_worker()
        self.web_access = build_web_access(
            self.units,
            hasher,
            penalties,  # the panel's logins and the mail servers' pay for the same failures
            self.services.delivery,
            self.services.authentication,
            settings.server.hostname,
            _client_ports(settings),
            require_two_factor=auth.require_two_factor,
        )
        self._worker_task: asyncio.Task[None] | None = None
        self._notice_task: asyncio.Task[None] | None = None
        self._tidy_task: asyncio.Task[None] | None = None
        self._logins_task: asyncio.Task[None] | None = None

    def _delivery_worker(self) -> DeliveryWorker:
        delivery = self.settings.delivery
        hostname = self.settings.server.hostname
        return DeliveryWorker(
            queue=self.queue,
            spool=self.spool,
            router=Router(
                delivery.smarthost,
                delivery.routes,
                resolver=_resolver(self.settings),
                smarthost_auth=(delivery.smarthost_username, delivery.smarthost_password)
                if delivery.smarthost_username
                else None,
            ),
            transport=SmtpTransport(hostname),
            outbox=self.services.delivery,
            usage=self.services.usage,
            config=WorkerConfig(hostname, timedelta(seconds=delivery.retry_base_seconds)),
            signer=self.dkim if delivery.dkim else None,
        )

    def start_worker(self) -> None:
        """Deliver queued mail, watch transfer usage, tidy files, send login notices and
        forget old login attempts until stop_worker()."""
        if self._worker_task is None or self._worker_task.done():
            self._worker_task = asyncio.create_task(self.worker.run(), name="delivery worker")
        if self._notice_task is None or self._notice_task.done():
            watch = self.notices.watch(self.services.accounts, self.services.usage)
            self._notice_task = asyncio.create_task(watch, name="transfer notices")
        if self._tidy_task is None or self._tidy_task.done():
            self._tidy_task = asyncio.create_task(self.sweeper.run(), name="file sweeper")
        if self._logins_task is None or self._logins_task.done():
            watch_logins = self.web_access.history.watch()
            self._logins_task = asyncio.create_task(watch_logins, name="login history")

    async def stop_worker(self) -> None:
        tasks = (self._worker_task, self._notice_task, self._tidy_task, self._logins_task)
        self._worker_task = self._notice_task = self._tidy_task = self._logins_task = None
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def migrate(self) -> None:
        """The schema, then the files (`init` and `serve`): Maildirs of the legacy layout
        move to their storage keys, and removals a killed process left are finished."""
        # Alembic is imported here, not at the top: most CLI commands never migrate, and
        # every one of them pays for what the module imports at start.
        from mailhost.storage.database.migrations import migrate

        await migrate(self.engine)
        await self.sweeper.start_up()

    async def prepare_tls(self) -> None:
        """The local CA and this host's certificate; created once, kept after."""
        await asyncio.to_thread(self._prepare_tls)

    def _prepare_tls(self) -> None:
        tls = self.settings.tls
        authority = CertificateAuthority.load_or_create(tls.ca_dir)
        hostname = self.settings.server.hostname
        if self.certificates.files_for(hostname) is None:
            authority.issue([hostname], tls.certs_dir)

    async def start(self) -> list[Listening]:
        """Start every enabled listener; port 0 in the settings picks a free port."""
        await self.prepare_tls()
        context = await asyncio.to_thread(self.certificates.server_context)
        started: list[Listening] = []
        s = self.settings
        if s.mx.enabled:
            mx = SessionDependencies(
                service="MX",
                policy=self.services.inbound,
                delivery=self.services.delivery,
                hostname=s.server.hostname,
                ssl_context=context,
                max_message_size=s.mx.max_message_size.bytes,
            )
            sessions = Admission(_session_limits(s.mx))
            server = await start_mx_server(s.mx.host, s.mx.port, mx, admission=sessions)
            started.append(Listening("MX (SMTP)", server, "STARTTLS", sessions=sessions))
        started += await self._start_submission(context)
        pop3 = self._pop3_dependencies()
        if s.pop3.enabled:
            server = await start_pop3_server(
                s.pop3.host, s.pop3.port, implicit_tls=False, ssl_context=context, deps=pop3
            )
            started.append(Listening("POP3", server, "STLS"))
        if s.pop3s.enabled:
            server = await start_pop3_server(
                s.pop3s.host, s.pop3s.port, implicit_tls=True, ssl_context=context, deps=pop3
            )
            started.append(Listening("POP3S", server, "implicit TLS"))
        if s.web.enabled:
            # Imported here so the CLI, which never serves the panel, does not load FastAPI.
            from mailhost.web.app import create_web_app
            from mailhost.web.server import start_web_server

            # Reads the templates from disk, hence the thread.
            app = await asyncio.to_thread(lambda: create_web_app(self, dns_checker=self.dns))
            web = await start_web_server(app, s.web.host, s.web.port)
            # The address people are told is the configured one, not the socket's.
            started.append(Listening("Web panel", web, "HTTP", url=f"{s.web.public_url}/"))
        self.start_worker()
        return started

    async def _start_submission(self, context: ssl.SSLContext) -> list[Listening]:
        """587-style (STARTTLS) and 465-style (implicit TLS) submission, both AUTH only."""
        s = self.settings
        deps = SessionDependencies(
            service="submission",
            policy=self.submission,
            authenticator=self.services.authentication,
            delivery=self.services.delivery,
            hostname=s.server.hostname,
            ssl_context=context,
            max_message_size=s.mx.max_message_size.bytes,  # one message size limit for all
        )
        started: list[Listening] = []
        for name, listener, implicit, security in (
            ("Submission", s.submission, False, "STARTTLS, AUTH"),
            ("Submissions", s.submissions, True, "implicit TLS, AUTH"),
        ):
            if listener.enabled:
                sessions = Admission(_session_limits(listener))
                server = await start_submission_server(
                    listener.host, listener.port, deps, implicit_tls=implicit, admission=sessions
                )
                started.append(Listening(name, server, security, sessions=sessions))
        return started

    def _pop3_dependencies(self) -> Pop3Dependencies:
        usage = self.services.usage

        async def retrieved(login: LoginRecord, nbytes: int) -> None:
            await usage.add_transfer(login.customer_id, nbytes)

        return Pop3Dependencies(
            store=self.store,
            authenticator=self.services.authentication,
            hostname=self.settings.server.hostname,
            allow_plaintext_auth=self.settings.pop3.allow_plaintext_auth,
            idle_timeout=self.settings.pop3.idle_timeout,
            on_retrieved=retrieved,
            on_expunged=self.services.mailbox_usage.expunged,
        )

    async def serve(self) -> None:
        """Run every enabled server until SIGINT/SIGTERM."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # argon2, spool fsyncs, usage commits and POP3 file reads run in threads; the
        # default pool (cores + 4) would make busy connections queue behind a few of them.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="mailhost-io")
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        listening = await self.start()
        _tune_garbage_collector()
        print(f"mailhost {self.settings.server.hostname}: serving", flush=True)
        for item in listening:
            print(f"  {item.name:<12} {item.address:<22} {item.security}", flush=True)
        for item in listening:
            if item.url is not None:
                print(f"  {item.name} at {item.url}", flush=True)
        print(f"  CA certificate: {self.settings.tls.ca_dir / 'ca.pem'}", flush=True)
        try:
            await stop.wait()
        finally:
            await self._stop_listening(listening)
            await self.stop_worker()

    async def _stop_listening(self, listening: Sequence[Listening]) -> None:
        """Accept nothing more; SMTP sessions in the middle of a command (a message in
        DATA) get `[server] stop_grace_seconds` to finish, idle ones get 421 4.3.2 now.
        A message whose 250 went out is durable already; one cut off got no 250."""
        for item in listening:
            item.server.close()
        grace = self.settings.server.stop_grace_seconds
        await asyncio.gather(
            *(item.sessions.stop(grace) for item in listening if item.sessions is not None)
        )
        for item in listening:
            await item.server.wait_closed()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.web_access.resets.close()  # pending reset mails go out before the store closes
        await self.stop_worker()
        await self.store.close()
        self.counters.close()
        await self.engine.dispose()


def _tune_garbage_collector() -> None:
    """Once started: the objects made so far (SQLAlchemy, FastAPI, pydantic, settings)
    live as long as the process, so they are frozen out of the collector's walks; and a
    full first generation is let grow larger, since every SMTP command makes a few
    hundred short-lived objects. Together a fifth more MX deliveries per second (bench/)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION, *gc.get_threshold()[1:])


def _resolver(settings: Settings) -> dns.asyncresolver.Resolver | None:
    """The servers of `[dns] nameservers`, or None: the router then reads the system's."""
    servers = [(server.address, server.port) for server in settings.dns.nameservers]
    return configured_resolver(servers, settings.dns.timeout_seconds) if servers else None


def _session_limits(listener: SmtpListener) -> SessionLimits:
    return SessionLimits(
        max_connections=listener.max_connections,
        max_connections_per_client=listener.max_connections_per_client,
        soft_error_limit=listener.soft_error_limit,
        hard_error_limit=listener.hard_error_limit,
        error_sleep_seconds=listener.error_sleep_seconds,
    )


def _client_ports(settings: Settings) -> ServicePorts:
    """The ports mail clients are told about (help pages, DNS SRV records)."""
    return ServicePorts(
        submission=settings.submission.port if settings.submission.enabled else None,
        submissions=settings.submissions.port if settings.submissions.enabled else None,
        pop3=settings.pop3.port if settings.pop3.enabled else None,
        pop3s=settings.pop3s.port if settings.pop3s.enabled else None,
    )
