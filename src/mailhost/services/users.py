"""Domain Name Users and the facilities given to them: POP3 mailboxes and SMTP accounts.

The seed's rules live here: an SMTP account at most once per user, "available
users" are exactly those without one, and mailboxes plus SMTP accounts count
toward the plan's "POP3/SMTP accounts". Mailbox quotas are held against the plan's
storage in services/quotas.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mailhost.errors import (
    AliasExists,
    InvalidAddress,
    LimitReached,
    NoMailbox,
    NoSmtpAccount,
    SmtpAccountExists,
)
from mailhost.interfaces import RemovalSweeper, UnitOfWork, UnitOfWorkFactory
from mailhost.model.actors import Actor, UserActor
from mailhost.model.facilities import SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.quotas import Allocation
from mailhost.model.records import (
    DomainRecord,
    MailboxRecord,
    SmtpAccountRecord,
    UserRecord,
)
from mailhost.services import access, quotas
from mailhost.services.passwords import Passwords, check_strength
from mailhost.services.sessions import digest
from mailhost.services.subjects import end_other_access


async def _managed_domain(uow: UnitOfWork, actor: Actor, name: DomainName) -> DomainRecord:
    return access.managed_domain(actor, await uow.directory.domain_by_name(name), name)


async def _visible_domain(uow: UnitOfWork, actor: Actor, name: DomainName) -> DomainRecord:
    return access.visible_domain(actor, await uow.directory.domain_by_name(name), name)


async def _managed_user(uow: UnitOfWork, actor: Actor, address: EmailAddress) -> UserRecord:
    return access.managed_user(actor, await uow.directory.user_by_address(address), address)


async def _check_account_limit(uow: UnitOfWork, customer_id: int, adding: str) -> None:
    await uow.directory.lock_customer(customer_id)  # before reading the plan it holds to
    customer = await uow.directory.customer_by_id(customer_id)
    assert customer is not None  # a user's customer exists (foreign key)
    limit = customer.plan.limits.max_accounts
    if limit is None:
        return
    count = await uow.facilities.count_accounts(customer_id)
    if count >= limit:
        raise LimitReached(
            f"plan {customer.plan.name} allows {limit} POP3/SMTP accounts; "
            f"customer {customer.login} has {count}, so the {adding} cannot be added"
        )


@dataclass(frozen=True, slots=True)
class DomainMailboxes:
    """A domain's POP3 mailboxes as its manager sees them, read in one transaction."""

    domain: DomainRecord
    mailboxes: Sequence[MailboxRecord]
    without_mailbox: Sequence[UserRecord]  # the users that can still be given one
    allocation: Allocation  # the customer's plan storage, over all its domains


class UserService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        passwords: Passwords,
        sweeper: RemovalSweeper | None = None,
    ) -> None:
        self._units = units
        self._passwords = passwords
        self._sweeper = sweeper

    async def add_user(
        self, actor: Actor, address: EmailAddress, password: str, recovery: str | None = None
    ) -> UserRecord:
        address = EmailAddress.hosted(str(address))
        recovery_address = None if recovery is None else str(EmailAddress.parse(recovery))
        if recovery is not None:
            _check_recovery(EmailAddress.parse(recovery), address)
        check_strength(password, identity=address.local)
        password_hash = await self._passwords.hash(password)
        async with self._units() as uow:
            domain = await _managed_domain(uow, actor, address.domain)
            if await uow.aliases.of_address(address) is not None:
                raise AliasExists(
                    f"{address} is an alias: a user cannot take an alias's address "
                    "(remove the alias first, or give the user another name)"
                )
            user = await uow.directory.add_user(
                domain, address.local, password_hash, recovery_address
            )
            await uow.audit.record(str(actor), "user.add", str(address), domain.customer_id)
            await uow.commit()
        return user

    async def change_password(
        self,
        actor: Actor,
        address: EmailAddress,
        password: str,
        *,
        current_session: str | None = None,
    ) -> None:
        """Set the user's password; in the same transaction the user's panel sessions end
        and its reset links are cancelled, except the session (cookie token) the user
        made this change from."""
        check_strength(password, identity=address.local)
        password_hash = await self._passwords.hash(password)
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            await uow.directory.set_user_password(user.id, password_hash)
            own = isinstance(actor, UserActor) and actor.user_id == user.id
            keep = digest(current_session) if own and current_session else None
            ended = await end_other_access(uow, "user", user.id, keep_session=keep)
            await uow.audit.record(str(actor), "user.passwd", str(address), user.customer_id, ended)
            await uow.commit()

    async def user(self, actor: Actor, address: EmailAddress) -> UserRecord:
        async with self._units() as uow:
            return access.visible_user(actor, await uow.directory.user_by_address(address), address)

    async def users(self, actor: Actor, domain: DomainName) -> Sequence[UserRecord]:
        async with self._units() as uow:
            found = await _managed_domain(uow, actor, domain)
            return await uow.directory.users(found.id)

    async def remove_user(self, actor: Actor, address: EmailAddress) -> None:
        """Removes the user, its mailbox and its SMTP account in one transaction; the
        mailbox's mail right after it."""
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            await uow.directory.remove_user(user.id)
            await uow.audit.record(str(actor), "user.remove", str(address), user.customer_id)
            await uow.commit()
        await self._sweep()

    async def add_mailbox(
        self, actor: Actor, address: EmailAddress, quota: ByteSize | None
    ) -> MailboxRecord:
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            await quotas.hold(uow, user.customer_id, address, quota)
            await _check_account_limit(uow, user.customer_id, f"mailbox for {address}")
            mailbox = await uow.facilities.add_mailbox(user, quota)
            await uow.audit.record(
                str(actor), "mailbox.add", str(address), user.customer_id, _quota_detail(quota)
            )
            await uow.commit()
        return mailbox

    async def set_mailbox_quota(
        self, actor: Actor, address: EmailAddress, quota: ByteSize | None
    ) -> MailboxRecord:
        """Change a mailbox's quota (None: no quota), held against the plan's storage;
        the mail in it stays, even above a smaller quota (new mail is refused)."""
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            mailbox = await uow.facilities.mailbox_of(user.id)
            if mailbox is None:
                raise NoMailbox(f"user {address} has no POP3 mailbox")
            if mailbox.quota == quota:
                return mailbox
            await quotas.hold(uow, user.customer_id, address, quota, mailbox_id=mailbox.id)
            await uow.facilities.set_mailbox_quota(mailbox.id, quota)
            await uow.audit.record(
                str(actor), "mailbox.quota", str(address), user.customer_id, _quota_detail(quota)
            )
            await uow.commit()
        return replace(mailbox, quota=quota)

    async def allocation(self, actor: Actor, domain: DomainName) -> Allocation:
        """The plan storage of the domain's customer, what its mailboxes' quotas take of it
        (all its domains together) and what is left to give; for the domain's manager."""
        async with self._units() as uow:
            found = await _managed_domain(uow, actor, domain)
            customer = await uow.directory.customer_by_id(found.customer_id)
            assert customer is not None  # a domain's customer exists (foreign key)
            return await quotas.allocation(uow, customer)

    async def domain_mailboxes(self, actor: Actor, domain: DomainName) -> DomainMailboxes:
        """The domain's mailboxes, its users without one and what the plan's storage has
        left to give, for the domain's manager: `mailboxes`, `users` and `allocation` in
        one unit of work. The customer's mailboxes are read once, for both the
        allocation and the domain's list."""
        async with self._units() as uow:
            found = await _managed_domain(uow, actor, domain)
            customer = await uow.directory.customer_by_id(found.customer_id)
            assert customer is not None  # a domain's customer exists (foreign key)
            boxes = await uow.facilities.customer_mailboxes(customer.id)
            users = await uow.directory.users(found.id)
        here = {user.id for user in users}
        return DomainMailboxes(
            found,
            [box for box in boxes if box.user_id in here],
            [user for user in users if not user.has_mailbox],
            quotas.allocation_of(customer, boxes),
        )

    async def mailboxes(self, actor: Actor, domain: DomainName) -> Sequence[MailboxRecord]:
        async with self._units() as uow:
            found = await _visible_domain(uow, actor, domain)
            boxes = await uow.facilities.mailboxes(found.id)
        return [box for box in boxes if _own_or_managed(actor, box.user_id)]

    async def mailbox(self, actor: Actor, address: EmailAddress) -> MailboxRecord:
        """One user's mailbox: for its manager, or for the user itself (as `mailboxes`)."""
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            found = await uow.facilities.mailbox_of(user.id)
        if found is None:
            raise NoMailbox(f"user {address} has no POP3 mailbox")
        return found

    async def remove_mailbox(self, actor: Actor, address: EmailAddress) -> None:
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            if not user.has_mailbox:
                raise NoMailbox(f"user {address} has no POP3 mailbox")
            await uow.facilities.remove_mailbox(user.id)
            await uow.audit.record(str(actor), "mailbox.remove", str(address), user.customer_id)
            await uow.commit()
        await self._sweep()

    async def add_smtp_account(
        self, actor: Actor, address: EmailAddress, facilities: SmtpFacilities
    ) -> SmtpAccountRecord:
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            if user.has_smtp_account:
                raise SmtpAccountExists(f"user {address} already has an SMTP account")
            await _check_account_limit(uow, user.customer_id, f"SMTP account for {address}")
            account = await uow.facilities.add_smtp_account(user, facilities)
            await uow.audit.record(
                str(actor), "smtp.add", str(address), user.customer_id, facilities.label
            )
            await uow.commit()
        return account

    async def set_smtp_facilities(
        self, actor: Actor, address: EmailAddress, facilities: SmtpFacilities
    ) -> SmtpAccountRecord:
        """Replace the facilities of a user's SMTP account. A new submission session
        holds to them at once, one already open within SUBMITTER_SECONDS
        (services/submission_policy.py)."""
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            account = await uow.facilities.smtp_account_of(user.id)
            if account is None:
                raise NoSmtpAccount(f"user {address} has no SMTP account")
            if account.facilities == facilities:
                return account
            await uow.facilities.set_smtp_facilities(account.id, facilities)
            await uow.audit.record(
                str(actor), "smtp.change", str(address), user.customer_id, facilities.label
            )
            await uow.commit()
        return replace(account, facilities=facilities)

    async def smtp_accounts(self, actor: Actor, domain: DomainName) -> Sequence[SmtpAccountRecord]:
        async with self._units() as uow:
            found = await _managed_domain(uow, actor, domain)
            return await uow.facilities.smtp_accounts(found.id)

    async def smtp_account(self, actor: Actor, address: EmailAddress) -> SmtpAccountRecord:
        """One user's SMTP account, for its domain's manager (as `smtp_accounts`)."""
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            found = await uow.facilities.smtp_account_of(user.id)
        if found is None:
            raise NoSmtpAccount(f"user {address} has no SMTP account")
        return found

    async def available_users(self, actor: Actor, domain: DomainName) -> Sequence[UserRecord]:
        """Users of the domain that can still be given an SMTP account."""
        return [u for u in await self.users(actor, domain) if not u.has_smtp_account]

    async def remove_smtp_account(self, actor: Actor, address: EmailAddress) -> None:
        async with self._units() as uow:
            user = await _managed_user(uow, actor, address)
            if not user.has_smtp_account:
                raise NoSmtpAccount(f"user {address} has no SMTP account")
            await uow.facilities.remove_smtp_account(user.id)
            await uow.audit.record(str(actor), "smtp.remove", str(address), user.customer_id)
            await uow.commit()

    async def set_recovery(
        self, actor: Actor, address: EmailAddress, recovery: EmailAddress | None
    ) -> UserRecord:
        """Set (None: clear) the address a user's reset links and new-address login notices
        go to; its domain's manager, customer or provider, or the user itself may."""
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            if recovery is not None:
                _check_recovery(recovery, address)
            wanted = None if recovery is None else str(recovery)
            if user.recovery_email == wanted:
                return user
            await uow.directory.set_user_recovery(user.id, wanted)
            await uow.audit.record(
                str(actor), "user.recovery", str(address), user.customer_id, wanted or "none"
            )
            await uow.commit()
        return replace(user, recovery_email=wanted)

    async def _sweep(self) -> None:
        # After the commit: the journal written with the rows names the Maildir to delete.
        if self._sweeper is not None:
            await self._sweeper.sweep()


def _check_recovery(recovery: EmailAddress, address: EmailAddress) -> None:
    if _same_address(recovery, address):
        raise InvalidAddress(
            f"the recovery address must be another address than {address} itself: "
            "a reset link sent there cannot be read by someone locked out of it"
        )


def _quota_detail(quota: ByteSize | None) -> str:
    return "quota=unlimited" if quota is None else f"quota={quota}"


def _own_or_managed(actor: Actor, user_id: int) -> bool:
    return not isinstance(actor, UserActor) or actor.user_id == user_id


def _same_address(one: EmailAddress, other: EmailAddress) -> bool:
    # Usernames are unique case-insensitively, so ALICE@ is alice@ here.
    return one.domain == other.domain and one.local.lower() == other.local.lower()
