"""The Alembic migrations produce exactly the schema the tables declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from mailhost.storage.database.engine import create_engine
from mailhost.storage.database.migrations import migrate
from mailhost.storage.database.tables import Base


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
