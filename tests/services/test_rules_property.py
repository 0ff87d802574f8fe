"""Any sequence of add/remove operations keeps the seed's rules true.

A tiny model predicts which operations succeed; the real services on a real
database must agree, and the invariants (one SMTP account per user, plan
limits) must hold after every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhost.errors import MailhostError
from mailhost.model.actors import ProviderActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from tests.conftest import Databases, cheap_passwords

OP = ProviderActor("property")
PW = "correct horse battery"
MAX_DOMAINS, MAX_ACCOUNTS = 2, 3
DOMAINS = ["a.test", "b.test", "c.test"]
USERS = ["ann", "bob"]

operation = st.tuples(
    st.sampled_from(["domain", "user", "unuser", "mailbox", "unmailbox", "smtp", "unsmtp"]),
    st.sampled_from(DOMAINS),
    st.sampled_from(USERS),
)


@dataclass
class Model:
    domains: set[str] = field(default_factory=set)
    users: set[tuple[str, str]] = field(default_factory=set)
    mailboxes: set[tuple[str, str]] = field(default_factory=set)
    smtp: set[tuple[str, str]] = field(default_factory=set)

    def accounts(self) -> int:
        return len(self.mailboxes) + len(self.smtp)

    def apply(self, kind: str, domain: str, user: str) -> bool:
        key = (domain, user)
        if kind == "domain":
            ok = domain not in self.domains and len(self.domains) < MAX_DOMAINS
            if ok:
                self.domains.add(domain)
            return ok
        if kind == "user":
            ok = domain in self.domains and key not in self.users
            if ok:
                self.users.add(key)
            return ok
        if kind == "unuser":
            ok = key in self.users
            self.users.discard(key)
            self.mailboxes.discard(key)
            self.smtp.discard(key)
            return ok
        facility = self.mailboxes if kind in ("mailbox", "unmailbox") else self.smtp
        if kind in ("mailbox", "smtp"):
            ok = key in self.users and key not in facility and self.accounts() < MAX_ACCOUNTS
            if ok:
                facility.add(key)
            return ok
        ok = key in facility
        facility.discard(key)
        return ok


async def _run(rt: Runtime, kind: str, domain: str, user: str) -> None:
    address = EmailAddress.hosted(f"{user}@{domain}")
    users = rt.services.users
    match kind:
        case "domain":
            await rt.services.accounts.add_domain(OP, DomainName.parse(domain), "acme", PW)
        case "user":
            await users.add_user(OP, address, PW)
        case "unuser":
            await users.remove_user(OP, address)
        case "mailbox":
            await users.add_mailbox(OP, address, None)
        case "unmailbox":
            await users.remove_mailbox(OP, address)
        case "smtp":
            await users.add_smtp_account(OP, address, SmtpFacilities())
        case "unsmtp":
            await users.remove_smtp_account(OP, address)


async def _check_invariants(rt: Runtime, model: Model) -> None:
    [usage] = await rt.services.usage.report(OP, "acme")
    assert usage.domains == len(model.domains) <= MAX_DOMAINS
    assert usage.accounts == model.accounts() <= MAX_ACCOUNTS
    for domain in model.domains:
        name = DomainName.parse(domain)
        accounts = await rt.services.users.smtp_accounts(OP, name)
        owners = [a.user_id for a in accounts]
        assert len(owners) == len(set(owners))  # at most one per user
        assert {(domain, a.address.local) for a in accounts} == {
            k for k in model.smtp if k[0] == domain
        }
        free = await rt.services.users.available_users(OP, name)
        assert {(domain, u.address.local) for u in free} == {
            k for k in model.users if k[0] == domain and k not in model.smtp
        }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(operation, min_size=1, max_size=14))
def test_rules_hold_for_any_sequence(
    databases: Databases, data_dir: Path, steps: list[tuple[str, str, str]]
) -> None:
    url = databases.new()
    settings_ = load_settings(None, data_dir, {"MAILHOST_DATABASE_URL": url})
    asyncio.run(_scenario(settings_, steps))


async def _scenario(config: Settings, steps: list[tuple[str, str, str]]) -> None:
    async with Runtime(config, passwords=cheap_passwords()) as rt:
        await rt.services.accounts.add_plan(
            OP, "Small", PlanLimits(MAX_DOMAINS, None, None, MAX_ACCOUNTS)
        )
        await rt.services.accounts.add_customer(OP, "acme", "Small", "boss@acme.test", PW)
        model = Model()
        for kind, domain, user in steps:
            expected = model.apply(kind, domain, user)
            assert await succeeds(_run(rt, kind, domain, user)) == expected, (kind, domain, user)
            await _check_invariants(rt, model)


async def succeeds(call: Awaitable[None]) -> bool:
    """Did the service call go through? (A refusal is a MailhostError.)"""
    try:
        await call
    except MailhostError:
        return False
    return True
