"""Two-factor logins and app passwords: a TOTP enrolment per login (any kind) with its
single-use recovery codes, and domain users' named app passwords for POP3 and
submission. All die with their login (ON DELETE CASCADE); an upgrade changes nothing
for existing logins, which have neither.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SUBJECTS = (
    ("admin_id", "provider_admins"),
    ("customer_id", "customers"),
    ("domain_id", "domains"),
    ("user_id", "domain_users"),
)
_ONE_SUBJECT = (
    "(kind = 'provider' AND admin_id IS NOT NULL AND customer_id IS NULL"
    " AND domain_id IS NULL AND user_id IS NULL)"
    " OR (kind = 'customer' AND customer_id IS NOT NULL AND admin_id IS NULL"
    " AND domain_id IS NULL AND user_id IS NULL)"
    " OR (kind = 'domain' AND domain_id IS NOT NULL AND admin_id IS NULL"
    " AND customer_id IS NULL AND user_id IS NULL)"
    " OR (kind = 'user' AND user_id IS NOT NULL AND admin_id IS NULL"
    " AND customer_id IS NULL AND domain_id IS NULL)"
)


def upgrade() -> None:
    _enrolments = "two_factor_enrolments"
    op.create_table(
        _enrolments,
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        *(sa.Column(column, sa.Integer(), nullable=True) for column, _ in _SUBJECTS),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.CheckConstraint(_ONE_SUBJECT, name=op.f(f"ck_{_enrolments}_one_subject")),
        *(
            sa.ForeignKeyConstraint(
                [column],
                [f"{table}.id"],
                name=op.f(f"fk_{_enrolments}_{column}_{table}"),
                ondelete="CASCADE",
            )
            for column, table in _SUBJECTS
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_enrolments}")),
        *(
            sa.UniqueConstraint(column, name=op.f(f"uq_{_enrolments}_{column}"))
            for column, _ in _SUBJECTS
        ),
        sqlite_autoincrement=True,
    )
    for column, _ in _SUBJECTS:
        op.create_index(op.f(f"ix_{_enrolments}_{column}"), _enrolments, [column], unique=False)
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            [f"{_enrolments}.id"],
            name=op.f(f"fk_recovery_codes_enrolment_id_{_enrolments}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("enrolment_id", "digest", name=op.f("uq_recovery_codes_enrolment_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["domain_users.id"],
            name=op.f("fk_app_passwords_user_id_domain_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_passwords")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_app_passwords_user_id")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("app_passwords")
    op.drop_table("recovery_codes")
    op.drop_table("two_factor_enrolments")
