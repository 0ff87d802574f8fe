"""Postmaster and abuse: where each domain's postmaster@ (RFC 5321 §4.5.1) and abuse@
(RFC 2142) mail goes when no user of that name exists.

Existing domains get NULL (the customer's contact address) and abuse@ off, so an
upgrade changes nothing but accepting postmaster@ mail that was refused before.
Plain ADD COLUMNs: SQLite keeps the table (and its AUTOINCREMENT) as it is.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("domains", sa.Column("postmaster_address", sa.String(length=254), nullable=True))
    op.add_column(
        "domains",
        sa.Column("abuse_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("domains", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("abuse_enabled")
        batch.drop_column("postmaster_address")
