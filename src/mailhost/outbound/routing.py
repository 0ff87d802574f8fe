"""Where mail for a domain goes: a static route, the smarthost, or its MX hosts (RFC 5321 §5.1).

Precedence: a per-domain static route, then the smarthost, then DNS. MX hosts
are tried in preference order (equal preferences shuffled, §5.1), each at all
of its A then AAAA addresses. A domain without MX records is its own mail host
(the "implicit MX", §5.1). A null MX (a lone "0 .", RFC 7505) means the domain
accepts no mail: a permanent failure, never a retry.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from mailhost.settings import Smarthost

SMTP_PORT = 25
MAX_HOPS = 10  # addresses tried per attempt; more only delays the retry
_PERMANENT_DNS = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)


@dataclass(frozen=True, slots=True)
class Hop:
    """One address to try: `host` is the name (TLS SNI, logs, DSN), `address` what to dial."""

    host: str
    address: str
    port: int
    # (username, password) to AUTH with: the smarthost's, never an MX's.
    auth: tuple[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Route:
    domain: str
    via: str  # route | smarthost | mx
    hops: tuple[Hop, ...]  # recipients whose routes have the same hops share a transaction


class RoutingError(Exception):
    """No hop to try: `reply` is what the log and the bounce say."""

    def __init__(self, reply: str, *, permanent: bool) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


class Router:
    def __init__(
        self,
        smarthost: Smarthost | None,
        routes: Mapping[str, Smarthost],
        resolver: dns.asyncresolver.Resolver | None = None,
        mx_port: int = SMTP_PORT,
        timeout: float = 30.0,
        smarthost_auth: tuple[str, str] | None = None,
    ) -> None:
        self._smarthost = smarthost
        self._smarthost_auth = smarthost_auth
        self._routes = dict(routes)
        self._resolver = resolver
        self._mx_port = mx_port
        self._timeout = timeout

    async def route(self, domain: str) -> Route:
        domain = domain.lower().removesuffix(".")
        static = self._routes.get(domain)
        if static is not None:
            return Route(domain, "route", (_configured(static),))
        if self._smarthost is not None:
            hop = _configured(self._smarthost)
            return Route(domain, "smarthost", (replace(hop, auth=self._smarthost_auth),))
        hosts, implicit = await self._mail_hosts(domain)
        hops: list[Hop] = []
        unsure = False
        for host in hosts:
            try:
                addresses = await self._addresses(host)
            except RoutingError:
                unsure = True
                continue
            hops += [Hop(host, address, self._mx_port) for address in addresses]
        if not hops:
            raise _no_address(domain, implicit=implicit, unsure=unsure)
        return Route(domain, "mx", tuple(hops[:MAX_HOPS]))

    async def _mail_hosts(self, domain: str) -> tuple[list[str], bool]:
        """MX host names in the order to try; (the domain itself, True) if it has no MX."""
        try:
            answer = await self._lookup(domain, "MX")
        except dns.resolver.NXDOMAIN:
            raise RoutingError(
                f"550 5.1.2 domain {domain} does not exist (DNS NXDOMAIN)", permanent=True
            ) from None
        except dns.resolver.NoAnswer:
            return [domain], True
        records = [(int(r.preference), r.exchange) for r in answer]
        real = [(pref, name) for pref, name in records if name != dns.name.root]
        if not real:
            # RFC 7505 §3: "0 ." says the domain accepts no mail; §4.2 gives the code.
            raise RoutingError(
                f"556 5.1.10 domain {domain} accepts no mail (null MX, RFC 7505)", permanent=True
            )
        return _by_preference(real), False

    async def _addresses(self, host: str) -> list[str]:
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._lookup(host, rdtype)
            except _PERMANENT_DNS:
                continue
            addresses += [r.to_text() for r in answer]
        return addresses

    async def _lookup(self, name: str, rdtype: str) -> dns.resolver.Answer:
        resolver = self._resolver
        if resolver is None:
            # Reading /etc/resolv.conf is file I/O: once, off the loop.
            resolver = self._resolver = await asyncio.to_thread(dns.asyncresolver.Resolver)
        try:
            return await resolver.resolve(name, rdtype, lifetime=self._timeout, search=False)
        except _PERMANENT_DNS:
            raise
        except (dns.exception.DNSException, OSError) as exc:
            raise RoutingError(
                f"451 4.4.3 DNS lookup of {rdtype} {name} failed: {exc}", permanent=False
            ) from None


def _configured(target: Smarthost) -> Hop:
    # Configured hops are dialled by name, so /etc/hosts and the system resolver apply.
    return Hop(target.host, target.host, target.port)


def _by_preference(records: Sequence[tuple[int, dns.name.Name]]) -> list[str]:
    shuffled = list(records)
    random.shuffle(shuffled)  # load spreading among equal preferences, not secrecy
    ordered = sorted(shuffled, key=lambda record: record[0])
    names: list[str] = []
    for _, name in ordered:
        text = name.to_text(omit_final_dot=True).lower()
        if text not in names:
            names.append(text)
    return names


def _no_address(domain: str, *, implicit: bool, unsure: bool) -> RoutingError:
    if unsure:
        return RoutingError(
            f"451 4.4.3 cannot resolve the mail hosts of {domain} now", permanent=False
        )
    if implicit:
        return RoutingError(
            f"550 5.1.2 domain {domain} has no MX and no address records", permanent=True
        )
    # Published MX hosts without addresses are usually a DNS change in progress.
    return RoutingError(f"451 4.4.4 the MX hosts of {domain} have no addresses", permanent=False)
