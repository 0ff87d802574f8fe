"""Any sequence of mailbox adds, quota changes, removals and plan changes keeps the
quotas within the plan's storage.

A tiny model predicts which operations succeed; the real services on a real database
must agree, and after every step a plan with a storage limit has a quota on every
mailbox and the quotas together fit in its storage.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.quantities import ByteSize
from mailhost.model.quotas import MIN_QUOTA
from mailhost.runtime import Runtime
from mailhost.settings import Settings, load_settings
from tests.conftest import Databases, cheap_passwords
from tests.services.test_rules_property import succeeds

OP = ProviderActor("property")
PW = "correct horse battery"
DOMAIN = DomainName.parse("example.test")
USERS = ["ann", "bob", "cid"]
PLANS = {"Ten": ByteSize.parse("10MB"), "Four": ByteSize.parse("4MB"), "Open": None}
QUOTAS = [None, *(ByteSize.parse(q) for q in ("500KB", "1MB", "2MB", "3MB", "6MB"))]

operation = st.one_of(
    st.tuples(st.sampled_from(["add", "set"]), st.sampled_from(USERS), st.sampled_from(QUOTAS)),
    st.tuples(st.just("remove"), st.sampled_from(USERS), st.none()),
    st.tuples(st.just("plan"), st.sampled_from(list(PLANS)), st.none()),
)
Step = tuple[str, str, ByteSize | None]


@dataclass
class Model:
    plan: str = "Ten"
    boxes: dict[str, ByteSize | None] = field(default_factory=dict)

    def fits(self, storage: ByteSize | None, quotas: list[ByteSize | None]) -> bool:
        if storage is None:
            return True
        return None not in quotas and sum(q.bytes for q in quotas if q) <= storage.bytes

    def apply(self, kind: str, name: str, quota: ByteSize | None) -> bool:
        if kind == "plan":
            ok = self.fits(PLANS[name], list(self.boxes.values()))
            if ok:
                self.plan = name
            return ok
        if kind == "remove":
            return self.boxes.pop(name, False) is not False
        if (kind == "add") == (name in self.boxes):  # add an existing one, set a missing one
            return False
        if kind == "set" and self.boxes[name] == quota:
            return True  # no change
        others = [q for user, q in self.boxes.items() if user != name]
        small = quota is not None and quota < MIN_QUOTA
        ok = not small and self.fits(PLANS[self.plan], [*others, quota])
        if ok:
            self.boxes[name] = quota
        return ok


async def _run(rt: Runtime, kind: str, name: str, quota: ByteSize | None) -> None:
    users = rt.services.users
    address = EmailAddress.hosted(f"{name}@{DOMAIN.ascii}")
    match kind:
        case "add":
            await users.add_mailbox(OP, address, quota)
        case "set":
            await users.set_mailbox_quota(OP, address, quota)
        case "remove":
            await users.remove_mailbox(OP, address)
        case "plan":
            await rt.services.accounts.change_plan(OP, "acme", name)


async def _check_invariants(rt: Runtime, model: Model) -> None:
    boxes = await rt.services.users.mailboxes(OP, DOMAIN)
    assert {b.address.local: b.quota for b in boxes} == model.boxes
    allocation = await rt.services.users.allocation(OP, DOMAIN)
    assert allocation.plan == model.plan
    storage = allocation.storage
    if storage is not None:
        assert allocation.without_quota == 0
        assert allocation.allocated <= storage.bytes
        assert allocation.allocated == sum(b.quota.bytes for b in boxes if b.quota)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(operation, min_size=1, max_size=14))
def test_quotas_never_exceed_the_plans_storage(
    databases: Databases, data_dir: Path, steps: list[Step]
) -> None:
    url = databases.new()
    settings_ = load_settings(None, data_dir, {"MAILHOST_DATABASE_URL": url})
    asyncio.run(_scenario(settings_, steps))


async def _scenario(config: Settings, steps: list[Step]) -> None:
    async with Runtime(config, passwords=cheap_passwords()) as rt:
        for name, storage in PLANS.items():
            await rt.services.accounts.add_plan(OP, name, PlanLimits(None, storage, None, None))
        await rt.services.accounts.add_customer(OP, "acme", "Ten", "boss@acme.test", PW)
        await rt.services.accounts.add_domain(OP, DOMAIN, "acme", PW)
        for name in USERS:
            await rt.services.users.add_user(OP, EmailAddress.hosted(f"{name}@example.test"), PW)
        model = Model()
        for kind, name, quota in steps:
            expected = model.apply(kind, name, quota)
            assert await succeeds(_run(rt, kind, name, quota)) == expected, (kind, name, quota)
            await _check_invariants(rt, model)
