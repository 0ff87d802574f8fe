"""Plans, customers and domains: the provider's and customer's rules, audited.

Every public method is one transaction: tenant check first, then the rule,
then the change and its audit entry, then commit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace

from mailhost.errors import (
    DomainExists,
    InvalidInput,
    LimitReached,
    NotPermitted,
    TemporaryFailure,
    UnknownDomain,
    UnknownPlan,
)
from mailhost.interfaces import (
    CertificateIssuer,
    DkimKeys,
    RemovalSweeper,
    TxtLookup,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.plans import PlanLimits
from mailhost.model.records import CustomerRecord, DomainRecord, PlanRecord, RemovalSummary
from mailhost.services import access, ownership, quotas
from mailhost.services.passwords import Passwords, check_strength
from mailhost.services.sessions import digest
from mailhost.services.subjects import end_other_access
from mailhost.services.usage import utc_now

_LOGIN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


def parse_login(raw: str) -> str:
    login = raw.strip().lower()
    if not _LOGIN.match(login) or ".." in login:
        raise InvalidInput(
            f"customer login {raw!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return login


def parse_plan_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 100:
        raise InvalidInput("a plan name must be 1 to 100 characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        # Control characters have no place in a name (and PostgreSQL refuses NUL in text).
        raise InvalidInput("a plan name must not contain control characters")
    return name


async def plan_named(uow: UnitOfWork, name: str) -> PlanRecord:
    plan = await uow.directory.plan_by_name(name)
    if plan is None:
        raise UnknownPlan(f"plan {name!r} does not exist")
    return plan


class AccountService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        passwords: Passwords,
        certificates: CertificateIssuer | None = None,
        dkim: DkimKeys | None = None,
        dns: TxtLookup | None = None,
        sweeper: RemovalSweeper | None = None,
    ) -> None:
        self._units = units
        self._passwords = passwords
        self._certificates = certificates
        self._dkim = dkim
        self._dns = dns
        self._sweeper = sweeper

    async def add_plan(self, actor: Actor, name: str, limits: PlanLimits) -> PlanRecord:
        access.require_provider(actor, "define plans")
        name = parse_plan_name(name)
        async with self._units() as uow:
            plan = await uow.directory.add_plan(name, limits)
            await uow.audit.record(str(actor), "plan.add", name, None, _limits_text(limits))
            await uow.commit()
        return plan

    async def plans(self, actor: Actor) -> Sequence[PlanRecord]:
        async with self._units() as uow:
            plans = await uow.directory.plans()
        if isinstance(actor, ProviderActor):
            return plans
        customer_id = access.audit_customer(actor)
        async with self._units() as uow:
            own = None if customer_id is None else await uow.directory.customer_by_id(customer_id)
        return [plan for plan in plans if own is not None and plan.id == own.plan.id]

    async def add_customer(
        self, actor: Actor, login: str, plan_name: str, contact_email: str, password: str
    ) -> CustomerRecord:
        access.require_provider(actor, "create customers")
        login = parse_login(login)
        contact = EmailAddress.parse(contact_email)
        check_strength(password, identity=login)
        password_hash = await self._passwords.hash(password)
        async with self._units() as uow:
            plan = await plan_named(uow, parse_plan_name(plan_name))
            customer = await uow.directory.add_customer(login, password_hash, str(contact), plan)
            await uow.audit.record(str(actor), "customer.add", login, customer.id, plan.name)
            await uow.commit()
        return customer

    async def customers(self, actor: Actor) -> Sequence[CustomerRecord]:
        async with self._units() as uow:
            customers = await uow.directory.customers()
        return [c for c in customers if access.may_see_customer(actor, c.id)]

    async def customer(self, actor: Actor, login: str) -> CustomerRecord:
        async with self._units() as uow:
            found = await uow.directory.customer_by_login(login.strip().lower())
        return access.visible_customer(actor, found, login)

    async def set_customer_enabled(self, actor: Actor, login: str, enabled: bool) -> CustomerRecord:
        """Disable (or enable again) a customer: its logins and mail stop, nothing is deleted."""
        access.require_provider(actor, "disable or enable customers")
        async with self._units() as uow:
            customer = access.visible_customer(
                actor, await uow.directory.customer_by_login(parse_login(login)), login
            )
            await uow.directory.set_customer_enabled(customer.id, enabled)
            action = "customer.enable" if enabled else "customer.disable"
            await uow.audit.record(str(actor), action, customer.login, customer.id)
            await uow.commit()
        return replace(customer, enabled=enabled)

    async def change_plan(self, actor: Actor, login: str, plan_name: str) -> CustomerRecord:
        """Move a customer to another plan; refused if it already uses more than the plan
        allows, its mailbox quotas included (services/quotas.py)."""
        access.require_provider(actor, "change plans")
        async with self._units() as uow:
            customer = access.visible_customer(
                actor, await uow.directory.customer_by_login(parse_login(login)), login
            )
            plan = await plan_named(uow, parse_plan_name(plan_name))
            await uow.directory.lock_customer(customer.id)
            await _check_plan_fits(uow, customer, plan)
            await uow.directory.set_customer_plan(customer.id, plan.id)
            await uow.audit.record(
                str(actor), "customer.plan", customer.login, customer.id, plan.name
            )
            await uow.commit()
        return replace(customer, plan=plan)

    async def set_contact(self, actor: Actor, login: str, email: EmailAddress) -> CustomerRecord:
        """Change the contact address a customer's notices and reset links go to; the
        customer itself or the provider may."""
        async with self._units() as uow:
            customer = access.visible_customer(
                actor, await uow.directory.customer_by_login(parse_login(login)), login
            )
            contact = str(email)
            if customer.contact_email == contact:
                return customer
            await uow.directory.set_customer_contact(customer.id, contact)
            await uow.audit.record(
                str(actor), "customer.contact", customer.login, customer.id, contact
            )
            await uow.commit()
        return replace(customer, contact_email=contact)

    async def set_domain_password(
        self,
        actor: Actor,
        name: DomainName,
        password: str,
        *,
        current_session: str | None = None,
    ) -> None:
        """Set the password of a domain's manager login (its Domain Name Level panel): the
        manager itself, the customer owning the domain or the provider. In the same
        transaction the manager's panel sessions end and its reset links are cancelled,
        except the session (cookie token) the manager made this change from."""
        check_strength(password, identity=name.ascii)
        password_hash = await self._passwords.hash(password)
        async with self._units() as uow:
            domain = access.managed_domain(actor, await uow.directory.domain_by_name(name), name)
            await uow.web_access.set_password("domain", domain.id, password_hash)
            own = isinstance(actor, DomainActor) and actor.domain_id == domain.id
            keep = digest(current_session) if own and current_session else None
            ended = await end_other_access(uow, "domain", domain.id, keep_session=keep)
            await uow.audit.record(
                str(actor), "domain.passwd", name.ascii, domain.customer_id, ended
            )
            await uow.commit()

    async def add_domain(
        self, actor: Actor, name: DomainName, customer_login: str, password: str
    ) -> DomainRecord:
        """A customer's domain is pending until its DNS proof is seen (verify_domain);
        the provider vouches for the domains it adds, so those are verified at once."""
        access.require_owner(actor, "add domains")
        check_strength(password, identity=name.ascii)
        password_hash = await self._passwords.hash(password)
        verified_at = utc_now() if isinstance(actor, ProviderActor) else None
        async with self._units() as uow:
            customer = access.visible_customer(
                actor,
                await uow.directory.customer_by_login(customer_login.strip().lower()),
                customer_login,
            )
            await uow.directory.lock_customer(customer.id)
            await _check_not_hosted(uow, name, customer)
            await _check_domain_limit(uow, customer)
            token = ownership.new_verification_token()
            domain = await uow.directory.add_domain(
                name, customer, password_hash, token, verified_at
            )
            await uow.audit.record(str(actor), "domain.add", name.ascii, customer.id)
            await uow.commit()
        if self._certificates is not None:
            # After the commit: a certificate without a domain is harmless, the reverse is not.
            await self._certificates.ensure_certificate(name.mail_host)
        if self._dkim is not None:
            # Likewise after the commit: the keys row refers to the domain's row.
            await self._dkim.ensure_keys(name)
        return domain

    async def domains(
        self, actor: Actor, customer_login: str | None = None
    ) -> Sequence[DomainRecord]:
        async with self._units() as uow:
            customer_id: int | None = None
            if customer_login is not None:
                customer = access.visible_customer(
                    actor,
                    await uow.directory.customer_by_login(customer_login.strip().lower()),
                    customer_login,
                )
                customer_id = customer.id
            elif isinstance(actor, CustomerActor):
                customer_id = actor.customer_id
            domains = await uow.directory.domains(customer_id)
        return [d for d in domains if access.may_see_domain(actor, d)]

    async def domain(self, actor: Actor, name: DomainName) -> DomainRecord:
        async with self._units() as uow:
            return access.visible_domain(actor, await uow.directory.domain_by_name(name), name)

    async def set_domain_enabled(
        self, actor: Actor, name: DomainName, enabled: bool
    ) -> DomainRecord:
        """Disable (or enable again) a domain: its mail waits at RCPT (4xx) and in the
        queue, its users and manager cannot log in; nothing is deleted."""
        async with self._units() as uow:
            domain = access.visible_domain(actor, await uow.directory.domain_by_name(name), name)
            if not access.may_see_customer(actor, domain.customer_id):
                raise NotPermitted(f"only the customer may disable or enable domain {name}")
            await uow.directory.set_domain_enabled(domain.id, enabled)
            action = "domain.enable" if enabled else "domain.disable"
            await uow.audit.record(str(actor), action, name.ascii, domain.customer_id)
            await uow.commit()
        return replace(domain, enabled=enabled)

    async def verify_domain(self, actor: Actor, name: DomainName) -> DomainRecord:
        """Look for the domain's TXT proof (services/ownership.py); verified once it is seen."""
        async with self._units() as uow:
            domain = access.managed_domain(actor, await uow.directory.domain_by_name(name), name)
        if domain.verified:
            return domain
        if self._dns is None:
            raise TemporaryFailure(f"cannot look up the DNS records of {name} here")
        await ownership.check_published(self._dns, domain)
        return await self._mark_verified(actor, domain, "domain.verify")

    async def trust_domain(self, actor: Actor, name: DomainName) -> DomainRecord:
        """The provider vouches for a domain without its DNS proof."""
        access.require_provider(actor, "mark a domain verified without its DNS proof")
        async with self._units() as uow:
            domain = access.visible_domain(actor, await uow.directory.domain_by_name(name), name)
        if domain.verified:
            return domain
        return await self._mark_verified(actor, domain, "domain.trust")

    async def _mark_verified(self, actor: Actor, domain: DomainRecord, action: str) -> DomainRecord:
        now = utc_now()
        async with self._units() as uow:
            # Only the row the proof was made for: removed and added again since, its
            # token is new and this proof is worth nothing.
            if not await uow.directory.mark_domain_verified(
                domain.id, domain.verification_token, now
            ):
                current = await uow.directory.domain_by_name(domain.name)
                found = access.visible_domain(actor, current, domain.name)
                if found.id != domain.id or not found.verified:
                    raise UnknownDomain(f"domain {domain.name} is not hosted here")
                return found  # verified meanwhile by another request
            await uow.audit.record(str(actor), action, domain.name.ascii, domain.customer_id)
            await uow.commit()
        return replace(domain, verified_at=now)

    async def domain_removal(self, actor: Actor, name: DomainName) -> RemovalSummary:
        """What removing the domain deletes: the figure the panel and the CLI confirm."""
        async with self._units() as uow:
            domain = access.removable_domain(actor, await uow.directory.domain_by_name(name), name)
            mailboxes, held = await uow.facilities.mail_held([domain.id])
        return RemovalSummary("domain", domain.name.ascii, 1, mailboxes, held)

    async def remove_domain(self, actor: Actor, name: DomainName) -> None:
        """Remove a domain with its users, mailboxes, SMTP accounts, credentials and queued
        mail in one transaction; its files (Maildirs, certificate, spool) go right after."""
        async with self._units() as uow:
            domain = access.removable_domain(actor, await uow.directory.domain_by_name(name), name)
            await _remove_domain_rows(uow, domain)
            await uow.audit.record(str(actor), "domain.remove", name.ascii, domain.customer_id)
            await uow.commit()
        await self._sweep()

    async def customer_removal(self, actor: Actor, login: str) -> RemovalSummary:
        """What removing the customer deletes (provider only; others: not found)."""
        async with self._units() as uow:
            found = await uow.directory.customer_by_login(login.strip().lower())
            customer = access.removable_customer(actor, found, login)
            domains = await uow.directory.domains(customer.id)
            mailboxes, held = await uow.facilities.mail_held([d.id for d in domains])
        return RemovalSummary("customer", customer.login, len(domains), mailboxes, held)

    async def remove_customer(self, actor: Actor, login: str) -> None:
        """Remove a customer and its domains (with their users, mailboxes, SMTP accounts,
        credentials, queued mail) in one transaction, then its files; provider only."""
        async with self._units() as uow:
            found = await uow.directory.customer_by_login(login.strip().lower())
            customer = access.removable_customer(actor, found, login)
            await uow.directory.lock_customer(customer.id)  # no domain added meanwhile
            domains = await uow.directory.domains(customer.id)
            for domain in domains:
                await _remove_domain_rows(uow, domain)
            await uow.directory.remove_customer(customer.id)
            names = ",".join(domain.name.ascii for domain in domains)
            detail = f"domains={names or 'none'}"
            await uow.audit.record(str(actor), "customer.remove", customer.login, None, detail)
            await uow.commit()
        await self._sweep()

    async def _sweep(self) -> None:
        # After the commit: the journal written with the rows says which files to delete.
        if self._sweeper is not None:
            await self._sweeper.sweep()


async def _remove_domain_rows(uow: UnitOfWork, domain: DomainRecord) -> None:
    for user in await uow.directory.users(domain.id):
        await uow.directory.remove_user(user.id)
    await uow.directory.remove_domain(domain.id)


async def _check_not_hosted(uow: UnitOfWork, name: DomainName, customer: CustomerRecord) -> None:
    """One domain, one customer. The refusal never names the holder; a claim that was
    never proven is the provider's to release (`mailhost domain remove`), so a squatter
    cannot block the domain's real owner for longer than it takes to ask."""
    held = await uow.directory.domain_by_name(name)
    if held is None:
        return
    if held.customer_id == customer.id:
        raise DomainExists(f"domain {name} already exists")
    if held.verified:
        raise DomainExists(f"domain {name} is already hosted here by another account")
    raise DomainExists(
        f"domain {name} is already claimed here by another account but not verified; "
        "if it is yours, ask the provider to release the claim"
    )


async def _check_domain_limit(uow: UnitOfWork, customer: CustomerRecord) -> None:
    limit = customer.plan.limits.max_domains
    if limit is None:
        return
    count = await uow.directory.count_domains(customer.id)
    if count >= limit:
        raise LimitReached(
            f"plan {customer.plan.name} allows {limit} domains; "
            f"customer {customer.login} has {count}"
        )


async def _check_plan_fits(uow: UnitOfWork, customer: CustomerRecord, plan: PlanRecord) -> None:
    limits = plan.limits
    domains = await uow.directory.count_domains(customer.id)
    if limits.max_domains is not None and domains > limits.max_domains:
        raise LimitReached(
            f"plan {plan.name} allows {limits.max_domains} domains; "
            f"customer {customer.login} has {domains}"
        )
    accounts = await uow.facilities.count_accounts(customer.id)
    if limits.max_accounts is not None and accounts > limits.max_accounts:
        raise LimitReached(
            f"plan {plan.name} allows {limits.max_accounts} POP3/SMTP accounts; "
            f"customer {customer.login} has {accounts}"
        )
    await quotas.check_plan(uow, customer, plan)


def _limits_text(limits: PlanLimits) -> str:
    def show(value: object) -> str:
        return "unlimited" if value is None else str(value)

    return (
        f"domains={show(limits.max_domains)} storage={show(limits.storage)} "
        f"transfer={show(limits.transfer)} accounts={show(limits.max_accounts)}"
    )
