"""Who is asking: the four kinds of login, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

from mailhost.model.names import DomainName, EmailAddress


@dataclass(frozen=True, slots=True)
class ProviderActor:
    """The operator: CLI on the server, provider admin panel."""

    name: str = "provider"

    def __str__(self) -> str:
        return f"provider:{self.name}"


@dataclass(frozen=True, slots=True)
class CustomerActor:
    customer_id: int
    login: str

    def __str__(self) -> str:
        return f"customer:{self.login}"


@dataclass(frozen=True, slots=True)
class DomainActor:
    """A Domain Name Level login (or a customer who opened one of its domains)."""

    domain_id: int
    customer_id: int
    domain: DomainName

    def __str__(self) -> str:
        return f"domain:{self.domain}"


@dataclass(frozen=True, slots=True)
class UserActor:
    user_id: int
    domain_id: int
    customer_id: int
    address: EmailAddress

    def __str__(self) -> str:
        return f"user:{self.address}"


Actor = ProviderActor | CustomerActor | DomainActor | UserActor
