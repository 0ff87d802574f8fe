"""Login attempts: the memory of the login penalties (which replace the in-process
lockout) and each login's history; users choose whether a login from a new address
after failures is mailed to their recovery address (on for everyone at first).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SUBJECTS = (
    ("admin_id", "provider_admins"),
    ("customer_id", "customers"),
    ("domain_id", "domains"),
    ("user_id", "domain_users"),
)


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=330), nullable=False),
        *(sa.Column(column, sa.Integer(), nullable=True) for column, _ in _SUBJECTS),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("app_password_name", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.String(length=100), nullable=False),
        sa.Column("notice_due", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "(admin_id IS NULL OR kind = 'provider') AND (customer_id IS NULL OR kind = 'customer')"
            " AND (domain_id IS NULL OR kind = 'domain') AND (user_id IS NULL OR kind = 'user')",
            name=op.f("ck_login_attempts_subject_of_kind"),
        ),
        *(
            sa.ForeignKeyConstraint(
                [column],
                [f"{table}.id"],
                name=op.f(f"fk_login_attempts_{column}_{table}"),
                ondelete="CASCADE",
            )
            for column, table in _SUBJECTS
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
        sqlite_autoincrement=True,
    )
    for column, _ in _SUBJECTS:
        op.create_index(
            op.f(f"ix_login_attempts_{column}"), "login_attempts", [column], unique=False
        )
    op.create_index("ix_login_attempts_client_at", "login_attempts", ["client", "at"])
    op.create_index("ix_login_attempts_account_at", "login_attempts", ["account", "at"])
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.create_index(
        "ix_login_attempts_notice_due",
        "login_attempts",
        ["id"],
        sqlite_where=sa.text("notice_due"),
        postgresql_where=sa.text("notice_due"),
    )
    op.add_column(
        "domain_users",
        sa.Column("login_notices", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("domain_users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("login_notices")
    op.drop_table("login_attempts")
