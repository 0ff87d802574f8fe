"""Migration 0007: the delivery log's entries learn their owners from the queue rows still
there; entries whose row is gone stay the provider's alone; ids are still never reused."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from mailhost.storage.database import migrations
from mailhost.storage.database.engine import create_engine
from mailhost.storage.database.migrations import migrate
from tests.storage.test_migrations import T0, _insert, _rows, empty_database

__all__ = ["empty_database"]  # the fixture, shared with test_migrations


def _upgrade_to_0006(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = connection
    command.upgrade(config, "0006")


def _downgrade_to_0006(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = connection
    command.downgrade(config, "0006")


def _log(delivery_id: int, recipient: str, status: str) -> dict[str, object]:
    return {
        "at": T0,
        "delivery_id": delivery_id,
        "message_id": "m1",
        "sender": "alice@a.example",
        "recipient": recipient,
        "status": status,
        "remote_reply": "451 later" if status == "deferred" else "250 ok",
    }


async def test_0007_fills_in_owners_from_queued_rows_and_leaves_the_rest_null(
    empty_database: str,
) -> None:
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to_0006)
            plan = (await connection.execute(sa.text("SELECT min(id) FROM plans"))).scalar_one()
            customer = await _insert(
                connection,
                "customers",
                login="acme",
                password_hash="x",
                contact_email="boss@a.example",
                plan_id=int(plan),
                enabled=True,
            )
            domain = await _insert(
                connection,
                "domains",
                name="a.example",
                customer_id=customer,
                password_hash="x",
                enabled=True,
                verification_token="t" * 32,
                verified_at=T0,
            )
            queued = await _insert(
                connection,
                "deliveries",
                message_id="m1",
                sender="alice@a.example",
                recipient="far@remote.test",
                customer_id=customer,
                domain_id=domain,
                size=10,
                status="queued",
                attempts=1,
                created_at=T0,
                next_attempt_at=T0,
                expires_at=T0,
                last_reply="451 later",
            )
            deferred = await _insert(
                connection, "delivery_log", **_log(queued, "far@remote.test", "deferred")
            )
            # Delivered: its queue row is gone, so nothing says whose it was.
            delivered = await _insert(
                connection, "delivery_log", **_log(queued + 1, "near@remote.test", "delivered")
            )
        await migrate(engine)
        rows = await _rows(engine, "SELECT id, customer_id, domain_id FROM delivery_log")
        assert sorted(rows) == [(deferred, customer, domain), (delivered, None, None)]
        if engine.dialect.name == "sqlite":  # the copy made to add foreign keys
            (ddl,) = await _rows(
                engine, "SELECT sql FROM sqlite_master WHERE name = 'delivery_log'"
            )
            assert "AUTOINCREMENT" in str(ddl[0])
        # The owner removed: its entries stay, as the provider's only.
        async with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                await connection.execute(sa.text("PRAGMA foreign_keys = ON"))
            await connection.execute(sa.text("DELETE FROM deliveries"))
            await connection.execute(sa.text("DELETE FROM domains"))
            await connection.execute(sa.text("DELETE FROM customers"))
        rows = await _rows(engine, "SELECT id, customer_id, domain_id FROM delivery_log")
        assert sorted(rows) == [(deferred, None, None), (delivered, None, None)]
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to_0006)
        assert await _rows(engine, "SELECT count(*) FROM delivery_log") == [(2,)]
    finally:
        await engine.dispose()
