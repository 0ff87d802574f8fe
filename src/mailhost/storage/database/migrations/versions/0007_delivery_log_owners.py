"""The delivery log learns whose mail it was: customer_id and domain_id, copied from the
deliveries row each entry logs, so customers and domain managers can read their own
(ON DELETE SET NULL: once the owner is gone its entries are the provider's alone), and
an index on `at` for reading it newest first.

Entries whose deliveries row is still queued (deferred attempts) are filled in from it;
older entries, whose row is gone, stay NULL: only the provider reads them, as before.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OWNERS = (("customer_id", "customers"), ("domain_id", "domains"))


def _batch() -> object:
    # SQLite cannot add a foreign key in place: the table is copied, and the copy keeps
    # AUTOINCREMENT (0003); PostgreSQL alters in place.
    sqlite = op.get_bind().dialect.name == "sqlite"
    return op.batch_alter_table(
        "delivery_log",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    )


def upgrade() -> None:
    with _batch() as batch:  # type: ignore[attr-defined]
        for column, table in _OWNERS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch.create_foreign_key(
                batch.f(f"fk_delivery_log_{column}_{table}"),
                table,
                [column],
                ["id"],
                ondelete="SET NULL",
            )
            batch.create_index(batch.f(f"ix_delivery_log_{column}"), [column], unique=False)
        batch.create_index(batch.f("ix_delivery_log_at"), ["at"], unique=False)
    for column, _table in _OWNERS:
        op.execute(
            f"UPDATE delivery_log SET {column} = (SELECT deliveries.{column}"  # noqa: S608
            " FROM deliveries WHERE deliveries.id = delivery_log.delivery_id)"
            " WHERE delivery_id IN (SELECT id FROM deliveries)"
        )


def downgrade() -> None:
    with _batch() as batch:  # type: ignore[attr-defined]
        batch.drop_index(batch.f("ix_delivery_log_at"))
        for column, table in reversed(_OWNERS):
            batch.drop_index(batch.f(f"ix_delivery_log_{column}"))
            batch.drop_constraint(batch.f(f"fk_delivery_log_{column}_{table}"), type_="foreignkey")
            batch.drop_column(column)
