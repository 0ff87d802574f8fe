"""Shared fixtures: a migrated database (SQLite file or PostgreSQL database) per test.

The `database_url` fixture is parametrised: every test that uses it runs on
SQLite and on PostgreSQL. A session migrates one template per backend, and each
test gets a copy, so tests never see each other's rows. Without a PostgreSQL
server the PostgreSQL half is skipped with the reason shown, except under
CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from mailhost.runtime import Runtime
from mailhost.services.passwords import Passwords
from mailhost.settings import Settings, load_settings
from mailhost.storage.database.engine import create_engine
from mailhost.storage.database.migrations import migrate
from tests.nameserver import Nameserver, running_nameserver

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_HOST_URL = PG_ADMIN_DSN.rsplit("/", 1)[0]


def cheap_passwords() -> Passwords:
    """argon2id with tiny costs: the algorithm is real, only the work factor is low."""
    return Passwords(time_cost=1, memory_cost=1024, parallelism=1)


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"mailhost_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {reason}")
        pytest.skip(reason)
    asyncio.run(_migrate(f"postgresql+asyncpg://{PG_HOST_URL.split('://', 1)[1]}/{name}"))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Databases:
    """Makes fresh migrated databases of one backend, each a copy of the template."""

    backend: str
    template: str
    scratch: Path
    made: list[str] = field(default_factory=list)

    def new(self) -> str:
        if self.backend == "sqlite":
            path = self.scratch / f"mailhost-{secrets.token_hex(4)}.db"
            shutil.copy(self.template, path)
            return f"sqlite+aiosqlite:///{path}"
        name = f"mailhost_t_{secrets.token_hex(6)}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.made.append(name)
        return f"postgresql+asyncpg://{PG_HOST_URL.split('://', 1)[1]}/{name}"

    def drop_all(self) -> None:
        for name in self.made:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    if request.param == "sqlite":
        template = str(request.getfixturevalue("sqlite_template"))
    else:
        template = request.getfixturevalue("postgres_template")
    made = Databases(request.param, template, tmp_path)
    yield made
    made.drop_all()


@pytest.fixture
def database_url(databases: Databases) -> str:
    return databases.new()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


# Login penalties double from 1 s; tests that fail logins on purpose wait this at most.
TEST_PENALTY_SECONDS = "0.2"


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_AUTH_PENALTY_MAX_SECONDS": TEST_PENALTY_SECONDS,
    }
    return load_settings(None, data_dir, environ)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with Runtime(settings, passwords=cheap_passwords()) as opened:
        yield opened


@pytest.fixture
def nameserver() -> Iterator[Nameserver]:
    """An authoritative DNS server on 127.0.0.1 that answers what a test publishes."""
    with running_nameserver() as running:
        yield running
