"""Tenant trust: credentials tied to their subject by foreign keys, ids never reused,
Maildirs named by a storage key, domain ownership proofs, queued mail owned by its
customer and domain, and the journal of files still to remove.

Sessions and reset links made before this revision are dropped (their owners log in
again); API tokens are kept when their subject still exists and was not created after
the token (a token older than its domain was made for an earlier domain of that id).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_AUTOINCREMENT = {"sqlite_autoincrement": True}
_CREDENTIALS = ("web_sessions", "api_tokens", "password_resets")
_SUBJECTS = (
    ("provider", "admin_id", "provider_admins"),
    ("customer", "customer_id", "customers"),
    ("domain", "domain_id", "domains"),
    ("user", "user_id", "domain_users"),
)
_SUBJECT_NAMES = {
    "admin_id": "SELECT login FROM provider_admins WHERE provider_admins.id = {t}.admin_id",
    "customer_id": "SELECT login FROM customers WHERE customers.id = {t}.customer_id",
    "domain_id": "SELECT name FROM domains WHERE domains.id = {t}.domain_id",
    "user_id": (
        "SELECT domain_users.username || '@' || domains.name FROM domain_users"
        " JOIN domains ON domains.id = domain_users.domain_id"
        " WHERE domain_users.id = {t}.user_id"
    ),
}
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
_UNCHANGED = (
    "plans",
    "customers",
    "audit_log",
    "domain_users",
    "smtp_accounts",
    "monthly_usage",
    "delivery_log",
    "send_counters",
    "dkim_keys",
    "usage_notices",
    "provider_admins",
)


def _batch(table: str) -> object:
    # On SQLite every batch copies the table, and the copy is made AUTOINCREMENT;
    # PostgreSQL alters in place.
    sqlite = op.get_bind().dialect.name == "sqlite"
    return op.batch_alter_table(
        table, recreate="always" if sqlite else "auto", table_kwargs=_AUTOINCREMENT
    )


def upgrade() -> None:
    named = _ids_named_by_credentials()
    for table in _CREDENTIALS:
        _bind_credentials(table)
    _domains()
    _mailboxes()
    _deliveries()
    op.create_table(
        "pending_removals",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_removals")),
        **_AUTOINCREMENT,
    )
    op.create_index("ix_pending_removals_undone", "pending_removals", ["done_at"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for table in _UNCHANGED:
            with _batch(table):  # type: ignore[attr-defined]
                pass
        _skip_named_ids(named)
    else:
        for table in (*_UNCHANGED, *_CREDENTIALS, "domains", "mailboxes", "deliveries"):
            _serial_to_identity(table)


def _bind_credentials(table: str) -> None:
    with _batch(table) as batch:  # type: ignore[attr-defined]
        for _kind, column, _parent in _SUBJECTS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
        batch.add_column(sa.Column("subject", sa.String(length=320), nullable=True))
    for kind, column, parent in _SUBJECTS:
        op.execute(
            f"UPDATE {table} SET {column} = subject_id WHERE kind = '{kind}'"  # noqa: S608
            f" AND subject_id IN (SELECT id FROM {parent})"
        )
        op.execute(
            f"UPDATE {table} SET subject = ({_SUBJECT_NAMES[column].format(t=table)})"  # noqa: S608
            f" WHERE {column} IS NOT NULL"
        )
    if table == "api_tokens":
        _drop_tokens_older_than_their_subject()
    else:
        op.execute(f"DELETE FROM {table}")  # noqa: S608
    op.execute(f"DELETE FROM {table} WHERE subject IS NULL")  # noqa: S608
    with _batch(table) as batch:  # type: ignore[attr-defined]
        if table == "web_sessions":
            batch.drop_index("ix_web_sessions_subject")
        batch.drop_column("subject_id")
        batch.alter_column("subject", existing_type=sa.String(length=320), nullable=False)
        for _kind, column, parent in _SUBJECTS:
            batch.create_foreign_key(
                op.f(f"fk_{table}_{column}_{parent}"),
                parent,
                [column],
                ["id"],
                ondelete="CASCADE",
            )
            batch.create_index(op.f(f"ix_{table}_{column}"), [column], unique=False)
        batch.create_check_constraint(op.f(f"ck_{table}_one_subject"), _ONE_SUBJECT)


def _ids_named_by_credentials() -> dict[str, int]:
    """Per login table, the highest id an old credential names, its row removed or not."""
    named: dict[str, int] = {}
    for kind, _column, parent in _SUBJECTS:
        for table in _CREDENTIALS:
            highest = op.get_bind().scalar(
                sa.text(f"SELECT max(subject_id) FROM {table} WHERE kind = :kind"),  # noqa: S608
                {"kind": kind},
            )
            if highest is not None:
                named[parent] = max(named.get(parent, 0), int(highest))
    return named


def _skip_named_ids(named: dict[str, int]) -> None:
    """SQLite: AUTOINCREMENT starts after the highest id left in the copied table, which
    is below a removed row's id if that was the highest; the ids old credentials named
    are skipped too (PostgreSQL's sequences never went back)."""
    bind = op.get_bind()
    for table, highest in named.items():
        values = {"name": table, "seq": highest}
        bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name AND seq < :seq"),
            values,
        )
        bind.execute(
            sa.text(
                "INSERT INTO sqlite_sequence (name, seq) SELECT :name, :seq"
                " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :name)"
            ),
            values,
        )


def _drop_tokens_older_than_their_subject() -> None:
    for kind, action in (("domain", "domain.add"), ("customer", "customer.add")):
        op.get_bind().execute(
            sa.text(
                "DELETE FROM api_tokens WHERE kind = :kind AND EXISTS ("
                "SELECT 1 FROM audit_log WHERE audit_log.action = :action"
                " AND audit_log.target = api_tokens.subject"
                " AND audit_log.at > api_tokens.created_at)"
            ),
            {"kind": kind, "action": action},
        )


def _fill_randomly(table: str, column: str, nbytes: int) -> None:
    bind = op.get_bind()
    ids = bind.execute(sa.text(f"SELECT id FROM {table}")).scalars().all()  # noqa: S608
    for row_id in ids:
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),  # noqa: S608
            {"value": secrets.token_hex(nbytes), "id": row_id},
        )


def _domains() -> None:
    with _batch("domains") as batch:  # type: ignore[attr-defined]
        batch.add_column(sa.Column("verification_token", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    _fill_randomly("domains", "verification_token", 16)
    # Domains hosted before ownership proofs existed were added by the provider's own
    # customers under the old rules; they keep receiving (the README's upgrade note).
    op.execute("UPDATE domains SET verified_at = CURRENT_TIMESTAMP")
    with _batch("domains") as batch:  # type: ignore[attr-defined]
        batch.alter_column("verification_token", existing_type=sa.String(length=64), nullable=False)


def _mailboxes() -> None:
    with _batch("mailboxes") as batch:  # type: ignore[attr-defined]
        batch.add_column(sa.Column("storage_key", sa.String(length=32), nullable=True))
    _fill_randomly("mailboxes", "storage_key", 16)
    with _batch("mailboxes") as batch:  # type: ignore[attr-defined]
        batch.alter_column("storage_key", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint(op.f("uq_mailboxes_storage_key"), ["storage_key"])


def _deliveries() -> None:
    with _batch("deliveries") as batch:  # type: ignore[attr-defined]
        batch.drop_constraint("fk_deliveries_customer_id_customers", type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_deliveries_customer_id_customers"),
            "customers",
            ["customer_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.add_column(sa.Column("domain_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_deliveries_domain_id_domains"),
            "domains",
            ["domain_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_deliveries_customer_id"), ["customer_id"], unique=False)
        batch.create_index(op.f("ix_deliveries_domain_id"), ["domain_id"], unique=False)


def _serial_to_identity(table: str) -> None:
    """PostgreSQL: the SERIAL id becomes an identity column that goes on where the
    sequence stopped (not at max(id), which would hand out removed rows' ids again)."""
    bind = op.get_bind()
    sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
    if sequence is None:
        return
    last, called = bind.execute(sa.text(f"SELECT last_value, is_called FROM {sequence}")).one()  # noqa: S608
    following = int(last) + 1 if called else int(last)
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP DEFAULT")
    op.execute(f"DROP SEQUENCE {sequence}")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH {following}")


def downgrade() -> None:
    raise NotImplementedError("0003 binds credentials to their subjects; there is no way back")
