"""Aliases and catch-alls: who may make them, where they may send, checked and audited.

An alias is an address of a hosted domain with no user of its own, whose mail
goes to one or more targets: mailboxes and aliases of the same customer, or
addresses elsewhere. A catch-all sends a domain's unknown local parts to one
mailbox of the same customer. The MX follows both (services/forwarding.py).

The rules, each checked here and nowhere else:
- Only the domain's manager, its customer or the provider makes or removes them;
  another tenant's alias answers like a missing one.
- A hosted target (a domain hosted here and proven) must be a mailbox or an alias
  in a domain the one making the alias manages, of the alias's own customer: a
  tenant can never send mail into another tenant's mailbox. A domain manager's
  hosted targets are therefore in its own domain; a customer's in any of its own.
- One address is a user or an alias, never both (checked both ways).
- An alias that would lead back to itself, or chain deeper than MAX_DEPTH, is
  refused when it is made.
- A domain's aliases send to at most `[delivery] max_external_forwards_per_domain`
  addresses elsewhere, so forwarding cannot become an open relay.
- Aliases are not POP3/SMTP accounts: they hold no mail and log in nowhere, so
  the plan's account limit does not count them (as cPanel's forwarders).
"""

from __future__ import annotations

from collections.abc import Sequence

from mailhost.errors import (
    AliasLoop,
    ForwardLimitReached,
    InvalidAddress,
    InvalidInput,
    NoMailbox,
    NotPermitted,
    UnknownAlias,
    UserExists,
)
from mailhost.interfaces import UnitOfWork, UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.model.aliases import (
    MAX_DEPTH,
    MAX_TARGETS,
    Looped,
    TooDeep,
    TooMany,
    describe,
    resolve,
)
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.records import AliasRecord, AliasTarget, CatchAllRecord, DomainRecord
from mailhost.model.srs import is_srs
from mailhost.services import access
from mailhost.services.forwarding import alias_graph

DEFAULT_MAX_EXTERNAL_FORWARDS = 50


class AliasService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        *,
        max_external_forwards: int = DEFAULT_MAX_EXTERNAL_FORWARDS,
    ) -> None:
        self._units = units
        self._max_external = max_external_forwards

    async def add_alias(
        self, actor: Actor, address: EmailAddress, targets: Sequence[EmailAddress]
    ) -> AliasRecord:
        """Make the alias, or add targets to it; targets it has already are kept once."""
        address = EmailAddress.hosted(str(address))
        if not targets:
            raise InvalidInput(f"alias {address} needs at least one target")
        if is_srs(address.local):  # the MX takes such a local part for a bounce
            raise InvalidAddress(
                f"{address} looks like an SRS bounce address (SRS0=… or SRS1=…): "
                "give the alias another name"
            )
        async with self._units() as uow:
            domain = await _managed_domain(uow, actor, address.domain)
            if await uow.directory.user_by_address(address) is not None:
                raise UserExists(
                    f"{address} is a user: an alias cannot take a user's address "
                    "(remove the user first, or give the alias another name)"
                )
            await uow.directory.lock_customer(domain.customer_id)  # one change at a time
            existing = await uow.aliases.of_address(address)
            checked = [await _checked_target(uow, actor, domain, address, t) for t in targets]
            merged = _merged(() if existing is None else existing.targets, checked)
            await self._check_external_cap(uow, domain, address, merged)
            proposed = AliasRecord(
                0 if existing is None else existing.id,
                domain.id,
                domain.customer_id,
                address,
                merged,
            )
            await _check_resolution(uow, proposed)
            await uow.aliases.add(domain.id, address.local, merged)
            detail = "to=" + ",".join(str(t.address) for t in checked)
            await uow.audit.record(
                str(actor), "alias.add", str(address), domain.customer_id, detail
            )
            made = await uow.aliases.of_address(address)
            assert made is not None  # added in this transaction a moment ago
            await uow.commit()
        return made

    async def aliases(self, actor: Actor, name: DomainName) -> Sequence[AliasRecord]:
        async with self._units() as uow:
            domain = await _managed_domain(uow, actor, name)
            return await uow.aliases.of_domain(domain.id)

    async def alias(self, actor: Actor, address: EmailAddress) -> AliasRecord:
        async with self._units() as uow:
            return await _managed_alias(uow, actor, address)

    async def remove_alias(
        self,
        actor: Actor,
        address: EmailAddress,
        targets: Sequence[EmailAddress] | None = None,
    ) -> None:
        """Remove the alias, or only the given targets (the alias goes with its last)."""
        async with self._units() as uow:
            alias = await _managed_alias(uow, actor, address)
            removing = None
            if targets:
                removing = [_target_of(alias, target) for target in targets]
            await uow.aliases.remove(alias.id, removing)
            detail = "" if removing is None else "targets=" + ",".join(str(t) for t in removing)
            await uow.audit.record(
                str(actor), "alias.remove", str(alias.address), alias.customer_id, detail
            )
            await uow.commit()

    async def catch_all(self, actor: Actor, name: DomainName) -> CatchAllRecord:
        async with self._units() as uow:
            domain = await _managed_domain(uow, actor, name)
            found = await uow.aliases.catch_all(domain.name)
        return found or CatchAllRecord(domain.id, domain.customer_id, None)

    async def set_catch_all(
        self, actor: Actor, name: DomainName, mailbox: EmailAddress
    ) -> CatchAllRecord:
        """Send the domain's unknown local parts to `mailbox`, one of the actor's own."""
        async with self._units() as uow:
            domain = await _managed_domain(uow, actor, name)
            user_id, address = await _own_mailbox(uow, actor, domain, mailbox)
            await uow.aliases.set_catch_all(domain.id, user_id)
            await uow.audit.record(
                str(actor), "catchall.set", domain.name.ascii, domain.customer_id, f"to={address}"
            )
            await uow.commit()
        return CatchAllRecord(domain.id, domain.customer_id, address)

    async def clear_catch_all(self, actor: Actor, name: DomainName) -> None:
        """Refuse the domain's unknown local parts again (the default)."""
        async with self._units() as uow:
            domain = await _managed_domain(uow, actor, name)
            await uow.aliases.set_catch_all(domain.id, None)
            await uow.audit.record(
                str(actor), "catchall.clear", domain.name.ascii, domain.customer_id
            )
            await uow.commit()

    async def _check_external_cap(
        self,
        uow: UnitOfWork,
        domain: DomainRecord,
        address: EmailAddress,
        merged: Sequence[AliasTarget],
    ) -> None:
        others = {
            t.address
            for alias in await uow.aliases.of_domain(domain.id)
            if alias.address != address
            for t in alias.targets
            if t.external
        }
        wanted = others | {t.address for t in merged if t.external}
        if len(wanted) > self._max_external:
            raise ForwardLimitReached(
                f"domain {domain.name} may forward to {self._max_external} addresses elsewhere "
                f"([delivery] max_external_forwards_per_domain); with alias {address} as asked "
                f"it would forward to {len(wanted)}"
            )


async def _managed_domain(uow: UnitOfWork, actor: Actor, name: DomainName) -> DomainRecord:
    return access.managed_domain(actor, await uow.directory.domain_by_name(name), name)


async def _managed_alias(uow: UnitOfWork, actor: Actor, address: EmailAddress) -> AliasRecord:
    """The alias if the actor manages its domain; another tenant's is "missing"."""
    alias = await uow.aliases.of_address(address)
    domain = await uow.directory.domain_by_name(address.domain)
    if alias is None or domain is None or not access.may_see_domain(actor, domain):
        raise UnknownAlias(f"alias {address} does not exist")
    access.managed_domain(actor, domain, domain.name)
    return alias


async def _checked_target(
    uow: UnitOfWork,
    actor: Actor,
    domain: DomainRecord,
    alias: EmailAddress,
    target: EmailAddress,
) -> AliasTarget:
    """A hosted target as its mailbox or alias is named, or an address elsewhere."""
    hosting = await uow.directory.domain_by_name(target.domain)
    if hosting is None or not hosting.verified:
        return AliasTarget(target, external=True)  # relayed with an SRS sender
    if hosting.customer_id != domain.customer_id or not access.may_manage_domain(actor, hosting):
        raise NotPermitted(
            f"{target} is not an address you manage: an alias of {domain.name} can send to "
            "the mailboxes and aliases of your own domains, or to addresses outside this server"
        )
    canonical = EmailAddress(target.local.lower(), target.domain)
    if canonical == alias:
        raise AliasLoop(f"alias {alias} cannot send its mail to itself")
    user = await uow.directory.user_by_address(canonical)
    if user is not None and user.has_mailbox:
        return AliasTarget(canonical, external=False)
    if user is None and await uow.aliases.of_address(canonical) is not None:
        return AliasTarget(canonical, external=False)
    raise NoMailbox(f"{target} has no POP3 mailbox and is no alias: add one of them first")


def _merged(have: Sequence[AliasTarget], adding: Sequence[AliasTarget]) -> tuple[AliasTarget, ...]:
    targets = {t.address: t for t in have}
    for target in adding:
        targets.setdefault(target.address, target)
    return tuple(targets.values())


async def _check_resolution(uow: UnitOfWork, proposed: AliasRecord) -> None:
    """Refuse the alias as proposed if its chain loops, runs too deep, or fans out too far."""
    graph = await alias_graph(uow, proposed)
    found = resolve(proposed.address, {a: [t.address for t in ts] for a, ts in graph.items()})
    if isinstance(found, Looped):
        raise AliasLoop(f"{describe(found.path)}: an alias cannot lead back to itself")
    if isinstance(found, TooDeep):
        raise AliasLoop(f"{describe(found.path)}: aliases may follow each other {MAX_DEPTH} deep")
    if isinstance(found, TooMany):
        raise AliasLoop(
            f"alias {proposed.address} would reach more than {MAX_TARGETS} addresses in all"
        )


def _target_of(alias: AliasRecord, target: EmailAddress) -> EmailAddress:
    for have in alias.targets:
        if have.address in (target, EmailAddress(target.local.lower(), target.domain)):
            return have.address
    raise UnknownAlias(f"{target} is not a target of alias {alias.address}")


async def _own_mailbox(
    uow: UnitOfWork, actor: Actor, domain: DomainRecord, mailbox: EmailAddress
) -> tuple[int, EmailAddress]:
    """The user id and address of a mailbox the actor manages, of the domain's customer."""
    hosting = await uow.directory.domain_by_name(mailbox.domain)
    if (
        hosting is None
        or hosting.customer_id != domain.customer_id
        or not access.may_manage_domain(actor, hosting)
    ):
        raise NotPermitted(
            f"{mailbox} is not a mailbox you manage: the catch-all of {domain.name} must be "
            "a mailbox of your own domains"
        )
    user = await uow.directory.user_by_address(EmailAddress(mailbox.local.lower(), mailbox.domain))
    if user is None or not user.has_mailbox:
        raise NoMailbox(f"{mailbox} has no POP3 mailbox: the catch-all of {domain.name} needs one")
    return user.id, user.address
