"""Aliases and catch-alls: addresses of a hosted domain that send their mail on.

`aliases` holds the address (domain and lower-cased local part), `alias_targets`
where its mail goes (a hosted address or one elsewhere, marked `external` to hold
the per-domain cap), `catch_alls` the one mailbox a domain's unknown local parts
go to. New tables only: nothing existing changes, and no domain has a catch-all,
so unknown local parts are refused as before.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("local_part", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_aliases_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("domain_id", "local_part", name=op.f("uq_aliases_domain_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "alias_targets",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("alias_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alias_id"],
            ["aliases.id"],
            name=op.f("fk_alias_targets_alias_id_aliases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_targets")),
        sa.UniqueConstraint("alias_id", "address", name=op.f("uq_alias_targets_alias_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "catch_alls",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_catch_alls_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["domain_users.id"],
            name=op.f("fk_catch_alls_user_id_domain_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catch_alls")),
        sa.UniqueConstraint("domain_id", name=op.f("uq_catch_alls_domain_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_catch_alls_user_id"), "catch_alls", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_catch_alls_user_id"), table_name="catch_alls")
    op.drop_table("catch_alls")
    op.drop_table("alias_targets")
    op.drop_table("aliases")
