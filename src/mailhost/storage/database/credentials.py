"""Which row a credential (panel session, API token, reset link) belongs to, in SQL terms.

A credential names its subject by exactly one foreign key, the one its kind calls
for, so that it is deleted with the subject's row (ON DELETE CASCADE); the
deletes here do the same explicitly in the transaction that removes the subject,
as a second line should a cascade not fire.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mailhost.interfaces import LoginKind
from mailhost.storage.database.tables import (
    ApiToken,
    AppPassword,
    DomainUser,
    PasswordReset,
    RecoveryCode,
    TwoFactorEnrolment,
    WebSession,
)

CredentialRow = WebSession | ApiToken | PasswordReset | TwoFactorEnrolment
CREDENTIAL_TABLES: tuple[type[CredentialRow], ...] = (
    WebSession,
    ApiToken,
    PasswordReset,
    TwoFactorEnrolment,
)
# The foreign-key column each kind of login is named by (tables._Subject).
SUBJECT_COLUMNS: dict[str, str] = {
    "provider": "admin_id",
    "customer": "customer_id",
    "domain": "domain_id",
    "user": "user_id",
}


def subject_key(table: type[CredentialRow], kind: LoginKind) -> InstrumentedAttribute[int | None]:
    column: InstrumentedAttribute[int | None] = getattr(table, SUBJECT_COLUMNS[kind])
    return column


def of_subject(table: type[CredentialRow], kind: LoginKind, subject_id: int) -> ColumnElement[bool]:
    """The credentials of one login: its kind and its foreign key both match."""
    return (table.kind == kind) & (subject_key(table, kind) == subject_id)


def subject_fields(kind: LoginKind, subject_id: int, subject: str) -> dict[str, object]:
    """The columns that bind a new credential to its login (the others stay NULL)."""
    return {"kind": kind, SUBJECT_COLUMNS[kind]: subject_id, "subject": subject}


def subject_id_of(row: CredentialRow) -> int | None:
    """The id in the column the row's kind calls for; None if the kind is unknown."""
    column = SUBJECT_COLUMNS.get(row.kind)
    if column is None:
        return None
    value = getattr(row, column)
    return value if isinstance(value, int) else None


async def delete_credentials(
    session: AsyncSession, kind: LoginKind, subject_ids: Select[int] | int
) -> None:
    """Delete every session, API token, reset link, two-factor enrolment (with its
    recovery codes) and app password of the logins named (an id, or a query of ids), in
    the caller's transaction."""
    for table in CREDENTIAL_TABLES:
        column = subject_key(table, kind)
        matches = (
            column.in_(subject_ids) if isinstance(subject_ids, Select) else column == subject_ids
        )
        if table is TwoFactorEnrolment:
            enrolments = select(TwoFactorEnrolment.id).where(matches)
            await session.execute(
                delete(RecoveryCode).where(RecoveryCode.enrolment_id.in_(enrolments))
            )
        await session.execute(delete(table).where(matches))
    if kind == "user":
        users = (
            AppPassword.user_id.in_(subject_ids)
            if isinstance(subject_ids, Select)
            else AppPassword.user_id == subject_ids
        )
        await session.execute(delete(AppPassword).where(users))


def users_of_domain(domain_id: int) -> Select[int]:
    return select(DomainUser.id).where(DomainUser.domain_id == domain_id)
