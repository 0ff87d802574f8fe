"""Two tenants, random lives: no credential ever reaches another subject, no mailbox shows
mail it was not sent.

A hypothesis state machine adds and removes customers, domains, users, mailboxes and
SMTP accounts from two customers that share the same pool of names (so one removes
what the other then adds), makes panel sessions, API tokens and reset links, changes
passwords and delivers mail. After every step each credential ever made either
resolves to exactly the subject it was made for (same row, same name), or, if that
subject is gone or its password changed since, to nothing; and each live mailbox holds
exactly the messages delivered to it since it was made.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from mailhost.errors import NotFound
from mailhost.interfaces import LoginKind
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.records import MailboxRecord
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login, digest, new_token
from mailhost.services.usage import utc_now
from mailhost.settings import load_settings
from tests.conftest import Databases, cheap_passwords

PASSWORD = "tenant-trust-password-1"
OTHER_PASSWORD = "tenant-trust-password-2"
TENANTS = ("alpha", "beta")
DOMAINS = ("shared-one.test", "shared-two.test")
LOCALS = ("zed", "amy")
PROVIDER = ProviderActor()
T = TypeVar("T")


@dataclass(frozen=True)
class Subject:
    """One life of a login: removed and made again is another Subject."""

    kind: LoginKind
    name: str
    row_id: int
    actor: Actor
    life: int


@dataclass
class Made:
    """A credential and the subject it was made for; `dead` once a password change or a
    removal must have ended it."""

    what: str  # session | token | reset
    secret: str
    subject: Subject
    dead: bool = False


class TenantLives(RuleBasedStateMachine):
    databases: Databases

    def __init__(self) -> None:
        super().__init__()
        self._runner = asyncio.Runner()
        self._dir = tempfile.TemporaryDirectory()
        data = Path(self._dir.name)
        url = self.databases.new()
        self.rt = Runtime(
            load_settings(None, data, {"MAILHOST_DATABASE_URL": url}),
            passwords=cheap_passwords(),
        )
        self.lives = 0
        self.live: dict[tuple[str, str], Subject] = {}
        self.owner: dict[str, str] = {}  # domain → tenant
        self.mailboxes: dict[str, int] = {}  # address → the life of its mailbox
        self.mail: dict[int, set[str]] = {}  # mailbox life → markers delivered to it
        self.made: list[Made] = []
        self.run(self._setup())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def teardown(self) -> None:
        self.run(self.rt.__aexit__(None, None, None))
        self._runner.close()
        self._dir.cleanup()

    def _life(self) -> int:
        self.lives += 1
        return self.lives

    async def _setup(self) -> None:
        await self.rt.services.accounts.add_plan(
            PROVIDER, "Open", PlanLimits(None, None, None, None)
        )
        for tenant in TENANTS:
            await self._add_customer(tenant)

    async def _add_customer(self, tenant: str) -> None:
        record = await self.rt.services.accounts.add_customer(
            PROVIDER, tenant, "Open", f"{tenant}@contact.example", PASSWORD
        )
        actor = CustomerActor(record.id, record.login)
        self.live[("customer", tenant)] = Subject(
            "customer", tenant, record.id, actor, self._life()
        )

    def _forget(self, kind: str, name: str) -> None:
        self.live.pop((kind, name), None)
        if kind == "user":
            life = self.mailboxes.pop(name, None)
            if life is not None:
                self.mail.pop(life, None)

    def _forget_domain(self, domain: str) -> None:
        self._forget("domain", domain)
        for local in LOCALS:
            self._forget("user", f"{local}@{domain}")
        self.owner.pop(domain, None)

    @rule(tenant=st.sampled_from(TENANTS))
    def remove_and_add_customer(self, tenant: str) -> None:
        self.run(self.rt.services.accounts.remove_customer(PROVIDER, tenant))
        self._forget("customer", tenant)
        for domain, holder in list(self.owner.items()):
            if holder == tenant:
                self._forget_domain(domain)
        self.run(self._add_customer(tenant))

    @rule(tenant=st.sampled_from(TENANTS), domain=st.sampled_from(DOMAINS))
    def add_domain(self, tenant: str, domain: str) -> None:
        if domain in self.owner:
            return
        name = DomainName.parse(domain)
        record = self.run(self.rt.services.accounts.add_domain(PROVIDER, name, tenant, PASSWORD))
        self.owner[domain] = tenant
        actor = DomainActor(record.id, record.customer_id, name)
        self.live[("domain", domain)] = Subject("domain", domain, record.id, actor, self._life())

    @rule(domain=st.sampled_from(DOMAINS))
    def remove_domain(self, domain: str) -> None:
        if domain not in self.owner:
            return
        customer = self.live[("customer", self.owner[domain])].actor
        self.run(self.rt.services.accounts.remove_domain(customer, DomainName.parse(domain)))
        self._forget_domain(domain)

    @rule(domain=st.sampled_from(DOMAINS), local=st.sampled_from(LOCALS))
    def add_user(self, domain: str, local: str) -> None:
        address = f"{local}@{domain}"
        if domain not in self.owner or ("user", address) in self.live:
            return
        manager = self.live[("domain", domain)].actor
        record = self.run(
            self.rt.services.users.add_user(manager, EmailAddress.parse(address), PASSWORD)
        )
        actor = UserActor(record.id, record.domain_id, record.customer_id, record.address)
        self.live[("user", address)] = Subject("user", address, record.id, actor, self._life())

    def _user(self, domain: str, local: str) -> Subject | None:
        return self.live.get(("user", f"{local}@{domain}"))

    @rule(domain=st.sampled_from(DOMAINS), local=st.sampled_from(LOCALS))
    def remove_user(self, domain: str, local: str) -> None:
        user = self._user(domain, local)
        if user is None:
            return
        manager = self.live[("domain", domain)].actor
        self.run(self.rt.services.users.remove_user(manager, EmailAddress.parse(user.name)))
        self._forget("user", user.name)

    @rule(domain=st.sampled_from(DOMAINS), local=st.sampled_from(LOCALS), keep=st.booleans())
    def toggle_mailbox_and_smtp(self, domain: str, local: str, keep: bool) -> None:
        user = self._user(domain, local)
        if user is None:
            return
        users = self.rt.services.users
        manager = self.live[("domain", domain)].actor
        address = EmailAddress.parse(user.name)
        if user.name not in self.mailboxes:
            self.run(users.add_mailbox(manager, address, None))
            self.mailboxes[user.name] = life = self._life()
            self.mail[life] = set()
            self.run(users.add_smtp_account(manager, address, SmtpFacilities()))
        elif not keep:
            self.run(users.remove_mailbox(manager, address))
            self.mail.pop(self.mailboxes.pop(user.name))
            self.run(users.remove_smtp_account(manager, address))

    @rule(domain=st.sampled_from(DOMAINS), local=st.sampled_from(LOCALS))
    def deliver(self, domain: str, local: str) -> None:
        address = f"{local}@{domain}"
        if address not in self.mailboxes:
            return
        marker = secrets.token_hex(8)
        box = self.run(self._mailbox(address))
        message = f"Subject: {marker}\r\n\r\n{marker}\r\n".encode()
        self.run(self.rt.services.delivery.deliver_local([box], message))
        self.mail[self.mailboxes[address]].add(marker)

    async def _mailbox(self, address: str) -> MailboxRecord:
        parsed = EmailAddress.parse(address)
        boxes = await self.rt.services.users.mailboxes(PROVIDER, parsed.domain)
        return next(box for box in boxes if str(box.address) == address)

    def _pick(self, kinds: tuple[str, ...], index: int) -> Subject | None:
        subjects = sorted(
            (s for s in self.live.values() if s.kind in kinds), key=lambda s: (s.kind, s.name)
        )
        return subjects[index % len(subjects)] if subjects else None

    @rule(index=st.integers(0, 20))
    def open_session(self, index: int) -> None:
        subject = self._pick(("customer", "domain", "user"), index)
        if subject is None:
            return
        login = Login(subject.kind, subject.row_id, subject.actor)
        token, _ = self.run(self.rt.web_access.sessions.open(login))
        self.made.append(Made("session", token, subject))

    @rule(index=st.integers(0, 20))
    def make_api_token(self, index: int) -> None:
        subject = self._pick(("customer", "domain"), index)
        if subject is None:
            return
        name = f"token {len(self.made)}"
        _, secret = self.run(self.rt.web_access.api_tokens.create(subject.actor, name))
        self.made.append(Made("token", secret, subject))

    @rule(index=st.integers(0, 20))
    def make_reset_link(self, index: int) -> None:
        subject = self._pick(("customer", "domain", "user"), index)
        if subject is None:
            return
        token = new_token()
        self.run(self._add_reset(token, subject))
        self.made.append(Made("reset", token, subject))

    async def _add_reset(self, token: str, subject: Subject) -> None:
        # What PasswordResetService.request stores before it mails the link.
        async with self.rt.units() as uow:
            expires = utc_now() + timedelta(hours=1)
            await uow.web_access.add_reset(
                digest(token), subject.kind, subject.row_id, subject.name, expires
            )
            await uow.commit()

    @rule(domain=st.sampled_from(DOMAINS), local=st.sampled_from(LOCALS))
    def manager_changes_password(self, domain: str, local: str) -> None:
        user = self._user(domain, local)
        if user is None:
            return
        manager = self.live[("domain", domain)].actor
        address = EmailAddress.parse(user.name)
        self.run(self.rt.services.users.change_password(manager, address, OTHER_PASSWORD))
        for made in self.made:
            if made.subject == user and made.what in ("session", "reset"):
                made.dead = True

    def _alive(self, made: Made) -> bool:
        current = self.live.get((made.subject.kind, made.subject.name))
        return current == made.subject and not made.dead

    async def _resolves_to(self, made: Made) -> tuple[str, int] | None:
        access = self.rt.web_access
        if made.what == "session":
            session = await access.sessions.resolve(made.secret)
            return None if session is None else (session.login.kind, session.login.subject_id)
        if made.what == "token":
            actor = await access.api_tokens.authenticate(made.secret)
            if actor is None:
                return None
            if isinstance(actor, DomainActor):
                return ("domain", actor.domain_id)
            if isinstance(actor, CustomerActor):
                return ("customer", actor.customer_id)
            return ("other", -1)
        try:
            credential = await access.resets.check(made.secret)
        except NotFound:
            return None
        return (credential.kind, credential.subject_id)

    @invariant()
    def credentials_reach_only_their_subject(self) -> None:
        for made in self.made:
            found = self.run(self._resolves_to(made))
            if self._alive(made):
                assert found == (made.subject.kind, made.subject.row_id), made
            else:
                assert found is None, made

    @invariant()
    def mailboxes_hold_only_their_own_mail(self) -> None:
        for address, life in self.mailboxes.items():
            box = self.run(self._mailbox(address))
            assert self.run(self._markers(box)) == self.mail[life], address

    async def _markers(self, box: MailboxRecord) -> set[str]:
        found: set[str] = set()
        for stored in await self.rt.store.list(box.ref):
            chunks = [chunk async for chunk in self.rt.store.read(box.ref, stored.uid)]
            found.add(b"".join(chunks).split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode())
        return found


@pytest.mark.timeout(600)
def test_credentials_and_mail_never_cross_tenants(databases: Databases) -> None:
    TenantLives.databases = databases
    run_state_machine_as_test(
        TenantLives,
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
