"""Async engine and session factory for SQLite (WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mailhost.errors import ConfigError

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalise_url(raw: str) -> URL:
    """Accept the plain scheme an operator would write and pick the async driver."""
    try:
        url = make_url(raw)
    except Exception as exc:  # SQLAlchemy raises ArgumentError for junk
        raise ConfigError(f"[database] url: not a database URL: {raw!r}") from exc
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(
            f"[database] url: unsupported database {url.drivername!r}; "
            "use sqlite:///path or postgresql://user@host/db"
        )
    return url.set(drivername=driver)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the mail servers read while the panel writes; FULL sync because an
    # acknowledged change must survive a crash; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def sqlite_path(raw_url: str) -> Path | None:
    """The SQLite database file of `raw_url`; None for PostgreSQL or an in-memory database."""
    url = normalise_url(raw_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).absolute()


def sqlite_files(raw_url: str) -> list[Path]:
    """The SQLite database file with its WAL, shared-memory and journal files; [] otherwise."""
    path = sqlite_path(raw_url)
    if path is None:
        return []
    return [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))]


def _create_private(path: Path) -> None:
    """Create an empty database file 0600: SQLite gives its -wal and -shm files the
    database file's mode, and would otherwise make it 0644 (less the umask)."""
    # There already, or not creatable: SQLite opens it, or says why it cannot.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def create_engine(raw_url: str) -> AsyncEngine:
    url = normalise_url(raw_url)
    if url.drivername.startswith("sqlite"):
        path = sqlite_path(raw_url)
        if path is not None:
            _create_private(path)
        engine = create_async_engine(url, pool_pre_ping=False)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def sync_sqlite_engine(engine: AsyncEngine) -> Engine | None:
    """A blocking engine on the same SQLite file (same pragmas), for work done in a thread;
    None for PostgreSQL."""
    if not is_sqlite(engine):
        return None
    sync = create_sync_engine(engine.url.set(drivername="sqlite"))
    event.listen(sync, "connect", _sqlite_pragmas)
    return sync


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
