"""SqlUsageCounters on SQLite and PostgreSQL: a batch grows usage in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import select

from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.storage.database.tables import Mailbox, MonthlyUsage
from mailhost.storage.database.usage_counters import SqlUsageCounters

OP = ProviderActor("test")
PW = "correct horse battery"
MONTH = "2026-11"


@pytest.fixture
async def counters(runtime: Runtime) -> AsyncIterator[tuple[Runtime, dict[str, int]]]:
    """Customer acme with bob's and carol's mailboxes; their ids by name."""
    accounts, users = runtime.services.accounts, runtime.services.users
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "acme@contact.test", PW)
    await accounts.add_domain(OP, DomainName.parse("example.com"), "acme", PW)
    ids: dict[str, int] = {}
    for name in ("bob", "carol"):
        address = EmailAddress.hosted(f"{name}@example.com")
        await users.add_user(OP, address, PW)
        ids[name] = (await users.add_mailbox(OP, address, ByteSize.parse("100MB"))).id
    boxes = await users.mailboxes(OP, DomainName.parse("example.com"))
    ids["acme"] = boxes[0].customer_id
    yield runtime, ids


@asynccontextmanager
async def _counters(runtime: Runtime) -> AsyncIterator[SqlUsageCounters]:
    counters = SqlUsageCounters(runtime.engine)
    try:
        yield counters
    finally:
        counters.close()


async def _usage(runtime: Runtime) -> tuple[dict[int, int], dict[tuple[int, str], int]]:
    async with runtime.engine.connect() as connection:
        used = dict((await connection.execute(select(Mailbox.id, Mailbox.used_bytes))).all())
        rows = await connection.execute(
            select(MonthlyUsage.customer_id, MonthlyUsage.month, MonthlyUsage.transfer_bytes)
        )
        transfer = {(customer, month): nbytes for customer, month, nbytes in rows.all()}
    return {box: int(n) for box, n in used.items()}, transfer


async def test_a_batch_grows_mailboxes_and_the_month_and_adds_up_across_batches(
    counters: tuple[Runtime, dict[str, int]],
) -> None:
    runtime, ids = counters
    async with _counters(runtime) as added:
        await added.add({ids["bob"]: 100, ids["carol"]: 5}, {ids["acme"]: 105}, MONTH)
        await added.add({ids["bob"]: 20}, {ids["acme"]: 20}, MONTH)
        await added.add({}, {ids["acme"]: 1}, "2026-12")
    used, transfer = await _usage(runtime)
    assert used == {ids["bob"]: 120, ids["carol"]: 5}
    assert transfer == {(ids["acme"], MONTH): 125, (ids["acme"], "2026-12"): 1}


async def test_freed_bytes_never_take_a_mailbox_below_zero(
    counters: tuple[Runtime, dict[str, int]],
) -> None:
    runtime, ids = counters
    async with _counters(runtime) as added:
        await added.add({ids["bob"]: 50}, {}, MONTH)
        await added.add({ids["bob"]: -80, ids["carol"]: -1}, {}, MONTH)
    used, transfer = await _usage(runtime)
    assert used == {ids["bob"]: 0, ids["carol"]: 0}
    assert transfer == {}


async def test_a_batch_naming_a_missing_customer_changes_nothing(
    counters: tuple[Runtime, dict[str, int]],
) -> None:
    runtime, ids = counters
    async with _counters(runtime) as added:
        with pytest.raises(Exception, match="(?i)foreign key"):
            await added.add({ids["bob"]: 10}, {ids["acme"] + 999: 10}, MONTH)
    used, transfer = await _usage(runtime)
    assert used[ids["bob"]] == 0  # the mailbox's growth was rolled back with the rest
    assert transfer == {}
