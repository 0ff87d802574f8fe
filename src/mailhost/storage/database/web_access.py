"""SqlWebAccess: panel credentials, sessions, API tokens and reset links, as frozen records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailhost.errors import AlreadyExists
from mailhost.interfaces import (
    ApiTokenRecord,
    Credential,
    LoginKind,
    ResetRecord,
    SessionRecord,
)
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.storage.database.credentials import of_subject, subject_fields, subject_id_of
from mailhost.storage.database.directory import insert_unique
from mailhost.storage.database.tables import (
    ApiToken,
    Customer,
    Delivery,
    DkimKey,
    Domain,
    DomainUser,
    PasswordReset,
    ProviderAdmin,
    WebSession,
)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _maybe(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def _token(row: ApiToken) -> ApiTokenRecord | None:
    subject_id = subject_id_of(row)
    if subject_id is None:
        return None
    return ApiTokenRecord(
        row.id,
        row.name,
        _kind(row.kind),
        subject_id,
        row.subject,
        aware(row.created_at),
        _maybe(row.last_used_at),
        _maybe(row.revoked_at),
    )


def _kind(value: str) -> LoginKind:
    if value == "provider":
        return "provider"
    if value == "customer":
        return "customer"
    if value == "domain":
        return "domain"
    return "user"


class SqlWebAccess:
    """One instance per unit of work; the tables are web_sessions, api_tokens and friends."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def credential(self, kind: LoginKind, login: str) -> Credential | None:
        if kind == "provider":
            return await self._admin(ProviderAdmin.login == login)
        if kind == "customer":
            row = await self._session.scalar(select(Customer).where(Customer.login == login))
            return None if row is None else self._customer(row)
        if kind == "domain":
            return await self._domain(Domain.name == login)
        address = EmailAddress.hosted(login)
        return await self._user(
            Domain.name == address.domain.ascii, DomainUser.username == address.local
        )

    async def credential_by_id(self, kind: LoginKind, subject_id: int) -> Credential | None:
        if kind == "provider":
            return await self._admin(ProviderAdmin.id == subject_id)
        if kind == "customer":
            row = await self._session.get(Customer, subject_id)
            return None if row is None else self._customer(row)
        if kind == "domain":
            return await self._domain(Domain.id == subject_id)
        return await self._user(DomainUser.id == subject_id)

    async def _admin(self, condition: ColumnElement[bool]) -> Credential | None:
        row = await self._session.scalar(select(ProviderAdmin).where(condition))
        if row is None:
            return None
        return Credential("provider", row.id, row.login, row.password_hash, True, row.email)

    @staticmethod
    def _customer(row: Customer) -> Credential:
        return Credential(
            "customer", row.id, row.login, row.password_hash, row.enabled, row.contact_email
        )

    async def _domain(self, condition: ColumnElement[bool]) -> Credential | None:
        query = (
            select(Domain, Customer)
            .join(Customer, Domain.customer_id == Customer.id)
            .where(condition)
        )
        found = (await self._session.execute(query)).first()
        if found is None:
            return None
        domain, customer = found
        # A domain's reset links go to the customer who owns it: the contact on file.
        enabled = domain.enabled and customer.enabled
        return Credential(
            "domain", domain.id, domain.name, domain.password_hash, enabled, customer.contact_email
        )

    async def _user(self, *conditions: ColumnElement[bool]) -> Credential | None:
        query = (
            select(DomainUser, Domain, Customer.enabled)
            .join(Domain, DomainUser.domain_id == Domain.id)
            .join(Customer, Domain.customer_id == Customer.id)
            .where(*conditions)
        )
        found = (await self._session.execute(query)).first()
        if found is None:
            return None
        user, domain, customer_enabled = found
        enabled = user.enabled and domain.enabled and bool(customer_enabled)
        login = f"{user.username}@{domain.name}"
        return Credential("user", user.id, login, user.password_hash, enabled, user.recovery_email)

    async def set_password(self, kind: LoginKind, subject_id: int, password_hash: str) -> None:
        if kind == "provider":
            query = update(ProviderAdmin).where(ProviderAdmin.id == subject_id)
        elif kind == "customer":
            query = update(Customer).where(Customer.id == subject_id)
        elif kind == "domain":
            query = update(Domain).where(Domain.id == subject_id)
        else:
            query = update(DomainUser).where(DomainUser.id == subject_id)
        await self._session.execute(query.values(password_hash=password_hash))

    async def actor_for(self, kind: LoginKind, subject_id: int) -> Actor | None:
        if kind == "provider":
            admin = await self._session.get(ProviderAdmin, subject_id)
            return None if admin is None else ProviderActor(admin.login)
        if kind == "customer":
            customer = await self._session.get(Customer, subject_id)
            if customer is None or not customer.enabled:
                return None
            return CustomerActor(customer.id, customer.login)
        if kind == "domain":
            query = select(Domain, Customer.enabled).join(
                Customer, Domain.customer_id == Customer.id
            )
            found = (await self._session.execute(query.where(Domain.id == subject_id))).first()
            if found is None or not (found[0].enabled and found[1]):
                return None
            domain = found[0]
            return DomainActor(domain.id, domain.customer_id, DomainName(domain.name))
        return await self._user_actor(subject_id)

    async def _user_actor(self, user_id: int) -> UserActor | None:
        query = (
            select(DomainUser, Domain, Customer.enabled)
            .join(Domain, DomainUser.domain_id == Domain.id)
            .join(Customer, Domain.customer_id == Customer.id)
            .where(DomainUser.id == user_id)
        )
        found = (await self._session.execute(query)).first()
        if found is None:
            return None
        user, domain, customer_enabled = found
        if not (user.enabled and domain.enabled and customer_enabled):
            return None
        address = EmailAddress(user.username, DomainName(domain.name))
        return UserActor(user.id, domain.id, domain.customer_id, address)

    async def add_admin(self, login: str, password_hash: str, email: str) -> Credential:
        row = ProviderAdmin(login=login, password_hash=password_hash, email=email)
        await insert_unique(
            self._session, row, AlreadyExists(f"provider admin {login!r} already exists")
        )
        return Credential("provider", row.id, login, password_hash, True, email)

    async def admins(self) -> Sequence[Credential]:
        rows = await self._session.scalars(select(ProviderAdmin).order_by(ProviderAdmin.login))
        return [Credential("provider", r.id, r.login, r.password_hash, True, r.email) for r in rows]

    async def add_session(
        self,
        token_hash: str,
        kind: LoginKind,
        subject_id: int,
        subject: str,
        csrf: str,
        expires: datetime,
    ) -> None:
        self._session.add(
            WebSession(
                token_hash=token_hash,
                **subject_fields(kind, subject_id, subject),
                csrf_token=csrf,
                created_at=datetime.now(UTC),
                expires_at=expires,
            )
        )
        await self._session.flush()

    async def session(self, token_hash: str) -> SessionRecord | None:
        row = await self._session.scalar(
            select(WebSession).where(WebSession.token_hash == token_hash)
        )
        subject_id = None if row is None else subject_id_of(row)
        if row is None or subject_id is None:
            return None
        return SessionRecord(
            _kind(row.kind), subject_id, row.subject, row.csrf_token, aware(row.expires_at)
        )

    async def remove_session(self, token_hash: str) -> None:
        await self._session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))

    async def remove_sessions(
        self, kind: LoginKind, subject_id: int, keep: str | None = None
    ) -> int:
        """End the login's sessions, all but the one whose hash is `keep`; how many ended."""
        query = delete(WebSession).where(of_subject(WebSession, kind, subject_id))
        if keep is not None:
            query = query.where(WebSession.token_hash != keep)
        result = await self._session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def remove_expired_sessions(self, now: datetime) -> None:
        await self._session.execute(delete(WebSession).where(WebSession.expires_at < now))

    async def add_api_token(
        self,
        token_hash: str,
        name: str,
        kind: LoginKind,
        subject_id: int,
        subject: str,
        now: datetime,
    ) -> ApiTokenRecord:
        row = ApiToken(
            token_hash=token_hash,
            name=name,
            **subject_fields(kind, subject_id, subject),
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return ApiTokenRecord(row.id, name, kind, subject_id, subject, now, None, None)

    async def api_tokens(self, kind: LoginKind, subject_id: int) -> Sequence[ApiTokenRecord]:
        rows = await self._session.scalars(
            select(ApiToken).where(of_subject(ApiToken, kind, subject_id)).order_by(ApiToken.id)
        )
        return [token for token in map(_token, rows) if token is not None]

    async def api_token(self, token_hash: str) -> ApiTokenRecord | None:
        row = await self._session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
        return None if row is None else _token(row)

    async def remove_api_token(self, token_id: int) -> None:
        await self._session.execute(delete(ApiToken).where(ApiToken.id == token_id))

    async def revoke_api_token(self, token_id: int, now: datetime) -> None:
        await self._session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def touch_api_token(self, token_id: int, now: datetime) -> None:
        await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
        )

    async def add_reset(
        self, token_hash: str, kind: LoginKind, subject_id: int, subject: str, expires: datetime
    ) -> None:
        self._session.add(
            PasswordReset(
                token_hash=token_hash,
                **subject_fields(kind, subject_id, subject),
                expires_at=expires,
            )
        )
        await self._session.flush()

    async def reset(self, token_hash: str) -> ResetRecord | None:
        row = await self._session.scalar(
            select(PasswordReset).where(PasswordReset.token_hash == token_hash)
        )
        subject_id = None if row is None else subject_id_of(row)
        if row is None or subject_id is None:
            return None
        return ResetRecord(
            row.id,
            _kind(row.kind),
            subject_id,
            row.subject,
            aware(row.expires_at),
            _maybe(row.used_at),
        )

    async def remove_reset(self, reset_id: int) -> None:
        await self._session.execute(delete(PasswordReset).where(PasswordReset.id == reset_id))

    async def remove_resets(self, kind: LoginKind, subject_id: int, keep: int | None = None) -> int:
        """Cancel the login's reset links, all but `keep`; how many were deleted."""
        query = delete(PasswordReset).where(of_subject(PasswordReset, kind, subject_id))
        if keep is not None:
            query = query.where(PasswordReset.id != keep)
        result = await self._session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def use_reset(self, reset_id: int, now: datetime) -> bool:
        """Mark the link used; False if another request used it first (single use)."""
        result = await self._session.execute(
            update(PasswordReset)
            .where(PasswordReset.id == reset_id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def dkim_records(self, domain_id: int) -> Sequence[tuple[str, str]]:
        """(selector, TXT value) per DKIM key of the domain (RFC 6376 §3.6.1)."""
        rows = await self._session.execute(
            select(DkimKey.selector, DkimKey.algorithm, DkimKey.public_key)
            .where(DkimKey.domain_id == domain_id)
            .order_by(DkimKey.selector)
        )
        return [
            (selector, f"v=DKIM1; k={'ed25519' if algorithm == 'ed25519' else 'rsa'}; p={key}")
            for selector, algorithm, key in rows
        ]

    async def queue_counts(self) -> Mapping[str, int]:
        rows = await self._session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        )
        return {status: int(count) for status, count in rows}
