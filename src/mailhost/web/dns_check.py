"""Live check of a domain's published DNS records (dnspython), bounded so a page never hangs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.resolver
from dns.rdata import Rdata
from dns.rdtypes.txtbase import TXTBase

from mailhost.services.dns_records import DnsRecord, RecordType

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


class DnsChecker:
    """Looks records up through the system's resolver, or through `nameservers` if given."""

    def __init__(
        self, nameservers: Sequence[str] | None = None, port: int = 53, timeout: float = 1.5
    ) -> None:
        self._nameservers = list(nameservers) if nameservers is not None else None
        self._port = port
        self._timeout = min(timeout, CHECK_SECONDS)
        self._resolver: dns.asyncresolver.Resolver | None = None

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
        if self._nameservers is None:
            resolver = dns.asyncresolver.Resolver()
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = list(self._nameservers)
            resolver.port = self._port
        resolver.lifetime = self._timeout
        resolver.timeout = self._timeout
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
