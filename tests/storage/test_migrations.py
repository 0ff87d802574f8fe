"""The Alembic migrations produce exactly the schema the tables declare, and upgrade live data.

The 0003 upgrade is fed rows as the code of revision 0002 wrote them (bare
`subject_id`s, ids reused on SQLite), including the attack of a token that
outlived its domain while another customer's domain took over the id; the 0004
upgrade a domain as 0003 wrote it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailhost.model.names import DomainName
from mailhost.model.records import PostmasterRecord
from mailhost.storage.database import migrations
from mailhost.storage.database.engine import create_engine, session_factory
from mailhost.storage.database.migrations import migrate
from mailhost.storage.database.postmasters import SqlPostmasters
from mailhost.storage.database.tables import Base
from tests.conftest import PG_ADMIN_DSN, PG_HOST_URL


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
        await migrate(engine)  # running again at head is a no-op
    finally:
        await engine.dispose()


T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
_TYPES: Mapping[type, sa.types.TypeEngine[Any]] = {
    bool: sa.Boolean(),
    int: sa.Integer(),
    str: sa.String(),
    datetime: sa.DateTime(timezone=True),
}


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables at all, so that it can be taken to any revision."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"mailhost_m_{secrets.token_hex(6)}"
    try:
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {reason}")
        pytest.skip(reason)
    yield f"postgresql+asyncpg://{PG_HOST_URL.split('://', 1)[1]}/{name}"
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _upgrade_to_0002(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = connection
    command.upgrade(config, "0002")


async def _insert(connection: AsyncConnection, table: str, **values: object) -> int:
    """One row as the old code wrote it (typed parameters, so times are stored alike)."""
    columns = [sa.column(name, _TYPES[type(value)]) for name, value in values.items()]
    target = sa.table(table, sa.column("id", sa.Integer()), *columns)
    result = await connection.execute(sa.insert(target).values(**values).returning(target.c.id))
    return int(result.scalar_one())


async def _delete(connection: AsyncConnection, table: str, row_id: int) -> None:
    await connection.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})


async def _audit(connection: AsyncConnection, action: str, target: str, at: datetime) -> None:
    await _insert(
        connection,
        "audit_log",
        at=at,
        actor="provider:ops",
        action=action,
        target=target,
        detail="",
    )


async def _token(
    connection: AsyncConnection, name: str, kind: str, subject_id: int, at: datetime
) -> None:
    await _insert(
        connection,
        "api_tokens",
        token_hash=secrets.token_hex(32),
        name=name,
        kind=kind,
        subject_id=subject_id,
        created_at=at,
    )


class Old:
    """The ids the 0002 data got."""

    acme = other = admin = a_domain = former = gone = alice = bob = zed = 0


async def _old_tenants(connection: AsyncConnection, old: Old) -> None:
    plan = int((await connection.execute(sa.text("SELECT min(id) FROM plans"))).scalar_one())
    for login in ("acme", "other"):
        customer = await _insert(
            connection,
            "customers",
            login=login,
            password_hash="x",
            contact_email=f"boss@{login}.example",
            plan_id=plan,
            enabled=True,
        )
        setattr(old, login, customer)
        await _audit(connection, "customer.add", login, T0)
    old.admin = await _insert(
        connection, "provider_admins", login="root", password_hash="x", email="r@ops.example"
    )
    for attr, name in (("a_domain", "a.example"), ("former", "former.example")):
        domain = await _insert(
            connection, "domains", name=name, customer_id=old.acme, password_hash="x", enabled=True
        )
        setattr(old, attr, domain)
        await _audit(connection, "domain.add", name, T0)
    old.gone = await _insert(
        connection,
        "domains",
        name="gone.example",
        customer_id=old.other,
        password_hash="x",
        enabled=True,
    )


async def _old_users(connection: AsyncConnection, old: Old) -> None:
    for attr in ("alice", "bob", "zed"):
        user = await _insert(
            connection,
            "domain_users",
            domain_id=old.a_domain,
            username=attr,
            password_hash="x",
            enabled=True,
        )
        setattr(old, attr, user)
    for user in (old.alice, old.bob):
        await _insert(connection, "mailboxes", user_id=user, used_bytes=0)


async def _old_credentials(connection: AsyncConnection, old: Old) -> None:
    later = T0 + timedelta(hours=1)
    await _token(connection, "customer token", "customer", old.acme, later)
    await _token(connection, "domain token", "domain", old.a_domain, later)
    await _token(connection, "admin token", "provider", old.admin, later)
    await _token(connection, "former token", "domain", old.former, later)
    await _token(connection, "gone token", "domain", old.gone, later)
    await _token(connection, "ghost token", "domain", 9999, later)
    for kind, subject in (("customer", old.acme), ("user", old.alice), ("user", old.zed)):
        await _insert(
            connection,
            "web_sessions",
            token_hash=secrets.token_hex(32),
            kind=kind,
            subject_id=subject,
            csrf_token="c",
            created_at=later,
            expires_at=later + timedelta(hours=8),
        )
        await _insert(
            connection,
            "password_resets",
            token_hash=secrets.token_hex(32),
            kind=kind,
            subject_id=subject,
            expires_at=later + timedelta(hours=1),
        )


async def _old_removals(connection: AsyncConnection, old: Old) -> None:
    """What 0002's code did on removal: rows gone, credentials left behind."""
    await _delete(connection, "domain_users", old.zed)  # the highest user id
    await _delete(connection, "domains", old.gone)  # the highest domain id
    await _audit(connection, "domain.remove", "gone.example", T0 + timedelta(hours=2))
    await _delete(connection, "domains", old.former)
    await _audit(connection, "domain.remove", "former.example", T0 + timedelta(hours=2))
    # SQLite (no AUTOINCREMENT) handed the free id to the next domain; here another
    # customer's, added after the token of the removed one was made.
    await _insert(
        connection,
        "domains",
        id=old.former,
        name="reused.example",
        customer_id=old.other,
        password_hash="x",
        enabled=True,
    )
    await _audit(connection, "domain.add", "reused.example", T0 + timedelta(hours=3))


async def _build_0002(engine: AsyncEngine) -> Old:
    old = Old()
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_to_0002)
        await _old_tenants(connection, old)
        await _old_users(connection, old)
        await _old_credentials(connection, old)
        await _old_removals(connection, old)
    return old


async def _rows(engine: AsyncEngine, query: str) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(sa.text(query))]


async def test_upgrade_binds_credentials_and_never_reuses_ids(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        old = await _build_0002(engine)
        await migrate(engine)
        assert await _rows(engine, "SELECT count(*) FROM web_sessions") == [(0,)]
        assert await _rows(engine, "SELECT count(*) FROM password_resets") == [(0,)]
        tokens = await _rows(
            engine,
            "SELECT name, kind, admin_id, customer_id, domain_id, user_id, subject"
            " FROM api_tokens ORDER BY name",
        )
        assert tokens == [
            ("admin token", "provider", old.admin, None, None, None, "root"),
            ("customer token", "customer", None, old.acme, None, None, "acme"),
            ("domain token", "domain", None, None, old.a_domain, None, "a.example"),
        ]
        keys = await _rows(engine, "SELECT storage_key FROM mailboxes")
        assert len(keys) == 2 and len({key for (key,) in keys}) == 2
        assert all(isinstance(key, str) and len(key) == 32 for (key,) in keys)
        unverified = await _rows(engine, "SELECT name FROM domains WHERE verified_at IS NULL")
        assert unverified == []
        await _check_new_ids(engine, old)
    finally:
        await engine.dispose()


async def _check_new_ids(engine: AsyncEngine, old: Old) -> None:
    """New rows get ids never used before: not the removed highest ones either."""
    async with engine.begin() as connection:
        domain = await _insert(
            connection,
            "domains",
            name="new.example",
            customer_id=old.other,
            password_hash="x",
            enabled=True,
            verification_token="t" * 32,
        )
        user = await _insert(
            connection,
            "domain_users",
            domain_id=domain,
            username="zed",
            password_hash="x",
            enabled=True,
        )
    assert domain > old.gone and user > old.zed


def _upgrade_to_0003(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = connection
    command.upgrade(config, "0003")


async def test_0004_sends_existing_domains_postmaster_mail_to_the_contact_abuse_off(
    empty_database: str,
) -> None:
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to_0003)
            plan = (await connection.execute(sa.text("SELECT min(id) FROM plans"))).scalar_one()
            customer = await _insert(
                connection,
                "customers",
                login="acme",
                password_hash="x",
                contact_email="boss@acme.example",
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
        await migrate(engine)
        rows = await _rows(engine, "SELECT postmaster_address, abuse_enabled FROM domains")
        assert [(address, bool(abuse)) for address, abuse in rows] == [(None, False)]
        async with session_factory(engine)() as session:
            found = await SqlPostmasters(session).of_domain(DomainName.parse("a.example"))
        assert found == PostmasterRecord(domain, customer, "boss@acme.example", False)
        if engine.dialect.name == "sqlite":  # ADD COLUMN left the table AUTOINCREMENT
            (ddl,) = await _rows(engine, "SELECT sql FROM sqlite_master WHERE name = 'domains'")
            assert "AUTOINCREMENT" in str(ddl[0])
    finally:
        await engine.dispose()
