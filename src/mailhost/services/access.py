"""Tenant checks: which actor may see which customer, domain or user.

A refusal uses the same error and message as "not found", so a tenant cannot
probe for the existence of another tenant's objects.
"""

from __future__ import annotations

from mailhost.errors import NotPermitted, UnknownCustomer, UnknownDomain, UnknownUser
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import CustomerRecord, DomainRecord, UserRecord


def require_provider(actor: Actor, what: str) -> None:
    if not isinstance(actor, ProviderActor):
        raise NotPermitted(f"only the provider may {what}")


def require_owner(actor: Actor, what: str) -> None:
    """Domains belong to customers: only a customer (or the provider for one) adds them,
    never a domain's manager or user, whatever the domain or customer named."""
    if not isinstance(actor, ProviderActor | CustomerActor):
        raise NotPermitted(f"only a customer or the provider may {what}")


def may_see_customer(actor: Actor, customer_id: int) -> bool:
    if isinstance(actor, ProviderActor):
        return True
    if isinstance(actor, CustomerActor):
        return actor.customer_id == customer_id
    return False


def visible_customer(actor: Actor, customer: CustomerRecord | None, login: str) -> CustomerRecord:
    if customer is None or not may_see_customer(actor, customer.id):
        raise UnknownCustomer(f"customer {login!r} does not exist")
    return customer


def removable_customer(actor: Actor, customer: CustomerRecord | None, login: str) -> CustomerRecord:
    """Only the provider removes customers; to anyone else every customer is missing."""
    if not isinstance(actor, ProviderActor):
        customer = None
    return visible_customer(actor, customer, login)


def removable_domain(actor: Actor, domain: DomainRecord | None, name: DomainName) -> DomainRecord:
    """A domain's manager may not remove it: its customer or the provider may."""
    found = visible_domain(actor, domain, name)
    if not may_see_customer(actor, found.customer_id):
        raise NotPermitted(f"only the customer may remove domain {name}")
    return found


def may_see_domain(actor: Actor, domain: DomainRecord) -> bool:
    if isinstance(actor, DomainActor | UserActor):
        return actor.domain_id == domain.id
    return may_see_customer(actor, domain.customer_id)


def visible_domain(actor: Actor, domain: DomainRecord | None, name: DomainName) -> DomainRecord:
    if domain is None or not may_see_domain(actor, domain):
        raise UnknownDomain(f"domain {name} is not hosted here")
    return domain


def may_manage_domain(actor: Actor, domain: DomainRecord) -> bool:
    """Domain users see their own domain but may not manage it."""
    return not isinstance(actor, UserActor) and may_see_domain(actor, domain)


def managed_domain(actor: Actor, domain: DomainRecord | None, name: DomainName) -> DomainRecord:
    found = visible_domain(actor, domain, name)
    if not may_manage_domain(actor, found):
        raise NotPermitted(f"only the domain's manager may change domain {name}")
    return found


def visible_user(actor: Actor, user: UserRecord | None, address: EmailAddress) -> UserRecord:
    if user is None:
        raise UnknownUser(f"user {address} does not exist")
    if isinstance(actor, UserActor):
        allowed = actor.user_id == user.id
    elif isinstance(actor, DomainActor):
        allowed = actor.domain_id == user.domain_id
    else:
        allowed = may_see_customer(actor, user.customer_id)
    if not allowed:
        raise UnknownUser(f"user {address} does not exist")
    return user


def managed_user(actor: Actor, user: UserRecord | None, address: EmailAddress) -> UserRecord:
    found = visible_user(actor, user, address)
    if isinstance(actor, UserActor):
        raise NotPermitted(f"only the domain's manager may change user {address}")
    return found


def audit_customer(actor: Actor) -> int | None:
    """The customer whose audit log an actor's change belongs to."""
    return None if isinstance(actor, ProviderActor) else actor.customer_id
