"""Live checks of a domain's published DNS records (dnspython), bounded so nothing hangs.

The DNS page compares every record to publish with what is found; `txt` serves the
ownership proof (services/ownership.py). Both ask the servers of `[dns] nameservers`,
or the system's resolver when none are set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
from dns.rdata import Rdata
from dns.rdtypes.txtbase import TXTBase

from mailhost.errors import TemporaryFailure
from mailhost.services.dns_records import DnsRecord, RecordType
from mailhost.settings import DnsSettings

log = logging.getLogger("mailhost.web.dns")

# The whole page waits at most this long for all lookups together.
CHECK_SECONDS = 2.0


class Status(StrEnum):
    PUBLISHED = "published"
    DIFFERENT = "different"
    MISSING = "not found"
    UNKNOWN = "could not check"


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    record: DnsRecord
    status: Status
    found: tuple[str, ...] = ()


def configured_resolver(
    servers: Sequence[tuple[str, int]], timeout: float
) -> dns.asyncresolver.Resolver:
    """A resolver that asks exactly `servers` (address, port); no file is read."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [
        dns.nameserver.Do53Nameserver(address, port) for address, port in servers
    ]
    resolver.lifetime = resolver.timeout = timeout
    return resolver


class DnsChecker:
    """Looks records up through the system's resolver, or through `nameservers` if given
    (addresses asked at `port`, or (address, port) pairs)."""

    def __init__(
        self,
        nameservers: Sequence[str | tuple[str, int]] | None = None,
        port: int = 53,
        timeout: float = 1.5,
        *,
        proof_timeout: float = 5.0,
    ) -> None:
        self._servers = (
            None
            if nameservers is None
            else [(ns, port) if isinstance(ns, str) else ns for ns in nameservers]
        )
        self._timeout = min(timeout, CHECK_SECONDS)
        self._proof_timeout = proof_timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    @classmethod
    def from_settings(cls, settings: DnsSettings) -> DnsChecker:
        servers = [(server.address, server.port) for server in settings.nameservers]
        return cls(servers or None, proof_timeout=settings.timeout_seconds)

    async def txt(self, name: str) -> Sequence[str]:
        """The TXT records at `name` (TxtLookup); TemporaryFailure if no answer comes."""
        resolver = await self._get_resolver()
        unanswered = TemporaryFailure(
            f"could not look up the TXT records of {name}: no answer from DNS within "
            f"{self._proof_timeout:g} s; the domain stays pending, check again later"
        )
        if resolver is None:
            raise unanswered
        try:
            async with asyncio.timeout(self._proof_timeout):
                answer = await resolver.resolve(
                    name, "TXT", search=False, lifetime=self._proof_timeout
                )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (TimeoutError, dns.exception.DNSException, OSError) as exc:
            log.info("TXT lookup of %s failed: %s", name, exc)
            raise unanswered from None
        return [_text(rdata) for rdata in answer]

    async def check(self, records: Sequence[DnsRecord]) -> list[CheckedRecord]:
        resolver = await self._get_resolver()
        if resolver is None:
            return [CheckedRecord(record, Status.UNKNOWN) for record in records]
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                return list(await asyncio.gather(*(self._one(resolver, r) for r in records)))
        except TimeoutError:
            return [CheckedRecord(record, Status.UNKNOWN) for record in records]

    async def _get_resolver(self) -> dns.asyncresolver.Resolver | None:
        if self._resolver is None:
            try:
                # Reading /etc/resolv.conf is file I/O: off the loop.
                self._resolver = await asyncio.to_thread(self._make_resolver)
            except dns.resolver.NoResolverConfiguration as exc:
                log.warning("no DNS resolver configured: %s", exc)
                return None
        return self._resolver

    def _make_resolver(self) -> dns.asyncresolver.Resolver:
        if self._servers is not None:
            return configured_resolver(self._servers, self._timeout)
        resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = resolver.timeout = self._timeout
        return resolver

    async def _one(self, resolver: dns.asyncresolver.Resolver, record: DnsRecord) -> CheckedRecord:
        try:
            answer = await resolver.resolve(record.name, record.type.value, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return CheckedRecord(record, Status.MISSING)
        except (dns.exception.DNSException, OSError) as exc:
            log.info("DNS check of %s %s failed: %s", record.name, record.type, exc)
            return CheckedRecord(record, Status.UNKNOWN)
        found = tuple(_text(rdata) for rdata in answer)
        return CheckedRecord(record, _compare(record, found), found)


def _text(rdata: Rdata) -> str:
    if isinstance(rdata, TXTBase):
        # RFC 7208 §3.3: a TXT record's strings are joined without spaces.
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return rdata.to_text().rstrip(".")


def _normal(kind: RecordType, value: str) -> str:
    if kind is RecordType.TXT:
        return " ".join(value.replace(" ;", ";").split()).lower()
    return " ".join(part.rstrip(".") for part in value.lower().split())


def _compare(record: DnsRecord, found: Sequence[str]) -> Status:
    wanted = _normal(record.type, record.value)
    if any(_normal(record.type, value) == wanted for value in found):
        return Status.PUBLISHED
    if record.type is RecordType.TXT:
        # Only a record of the same kind (v=spf1, v=DMARC1, v=DKIM1) counts as "different".
        tag = wanted.split(";")[0].split()[0]
        same_kind = [v for v in found if _normal(record.type, v).startswith(tag)]
        return Status.DIFFERENT if same_kind else Status.MISSING
    return Status.DIFFERENT
