"""The DNS records a hosted domain publishes so that mail and mail clients find this server.

Targets of MX and SRV records are this server's own host name, never an alias:
RFC 2181 §10.3 forbids an MX pointing at a CNAME and RFC 2782 an SRV target.
The mail.<domain> name clients type (the seed's "mail.yourdomain.tld") and the
autoconfig/autodiscover names may be aliases of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from mailhost.interfaces import UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.model.names import DomainName
from mailhost.model.records import DomainRecord
from mailhost.services import access, ownership


class RecordType(StrEnum):
    MX = "MX"
    TXT = "TXT"
    CNAME = "CNAME"
    SRV = "SRV"


@dataclass(frozen=True, slots=True)
class ServicePorts:
    """Ports clients use; None for a service that is switched off."""

    submission: int | None  # STARTTLS, RFC 6409
    submissions: int | None  # implicit TLS, RFC 8314
    pop3: int | None  # STLS, RFC 2595
    pop3s: int | None  # implicit TLS, RFC 8314


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str
    type: RecordType
    value: str
    purpose: str


# Names that never resolve on the Internet, or only for someone else: RFC 2606 and
# RFC 6761 (test, example, invalid, localhost, example.com/.net/.org), RFC 6762
# (local: multicast DNS), RFC 8375 (home.arpa), ICANN's private-use "internal", and
# "localdomain", which /etc/hosts files add to the machine's own name.
_NOT_PUBLIC_SUFFIXES = {
    "localhost": "is this machine's own name everywhere",
    "test": "is reserved for testing (RFC 6761) and never resolves on the Internet",
    "example": "is reserved for examples (RFC 6761) and never resolves on the Internet",
    "invalid": "is reserved as never valid (RFC 6761)",
    "local": "is multicast DNS (RFC 6762): only the local network sees it",
    "localdomain": "is a local name from /etc/hosts, not a DNS name",
    "internal": "is reserved for private networks",
    "home.arpa": "is reserved for home networks (RFC 8375)",
    "example.com": "is reserved for examples (RFC 2606)",
    "example.net": "is reserved for examples (RFC 2606)",
    "example.org": "is reserved for examples (RFC 2606)",
}


def public_name_problem(server: str) -> str | None:
    """Why the server's host name cannot be an MX or SRV target other servers reach
    (those records name a host, and only a public DNS name works), or None."""
    name = server.strip().lower().removesuffix(".")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        return "an IP address, and MX and SRV records must name a host"
    if "." not in name:
        return "a single label, not a name in the DNS"
    labels = name.split(".")
    for length in (2, 1):
        suffix = ".".join(labels[-length:])
        if suffix in _NOT_PUBLIC_SUFFIXES:
            return f"{'.' if suffix != name else ''}{suffix} {_NOT_PUBLIC_SUFFIXES[suffix]}"
    return None


def records_to_publish(
    domain: DomainName,
    server: str,
    ports: ServicePorts,
    dkim: Sequence[tuple[str, str]] = (),
) -> list[DnsRecord]:
    """In the order an operator would add them; `dkim` holds (selector, TXT value) pairs."""
    name = domain.ascii
    records = [
        DnsRecord(name, RecordType.MX, f"10 {server}", "mail for the domain comes here"),
        DnsRecord(
            name,
            RecordType.TXT,
            f"v=spf1 mx a:{server} -all",
            "SPF (RFC 7208): only this server sends mail for the domain",
        ),
    ]
    for selector, value in dkim:
        records.append(
            DnsRecord(
                f"{selector}._domainkey.{name}",
                RecordType.TXT,
                value,
                "DKIM (RFC 6376): the public key that checks this server's signatures",
            )
        )
    records += [
        DnsRecord(
            f"_dmarc.{name}",
            RecordType.TXT,
            f"v=DMARC1; p=none; rua=mailto:postmaster@{name}",
            "DMARC (RFC 7489): reports on mail claiming to be from the domain",
        ),
        DnsRecord(f"mail.{name}", RecordType.CNAME, server, "the server name mail clients use"),
        DnsRecord(f"autoconfig.{name}", RecordType.CNAME, server, "Thunderbird automatic set-up"),
        DnsRecord(f"autodiscover.{name}", RecordType.CNAME, server, "Outlook automatic set-up"),
    ]
    records += _srv_records(name, server, ports)
    return records


def ownership_record(domain: DomainRecord) -> DnsRecord:
    """The proof a pending domain publishes (services/ownership.py)."""
    return DnsRecord(
        domain.name.ascii,
        RecordType.TXT,
        ownership.verification_value(domain.verification_token),
        "proves the domain is yours: mailhost accepts its mail once this record is seen",
    )


def _srv_records(name: str, server: str, ports: ServicePorts) -> list[DnsRecord]:
    # RFC 6186 §3 (_submission, _pop3, _pop3s) and RFC 8314 §5.1 (_submissions).
    services = (
        ("_submissions", ports.submissions, 0, "sending mail, implicit TLS"),
        ("_submission", ports.submission, 5, "sending mail, STARTTLS"),
        ("_pop3s", ports.pop3s, 0, "reading mail, implicit TLS"),
        ("_pop3", ports.pop3, 5, "reading mail, STLS"),
    )
    return [
        DnsRecord(
            f"{service}._tcp.{name}",
            RecordType.SRV,
            f"{priority} 1 {port} {server}",
            f"RFC 6186 client set-up: {purpose}",
        )
        for service, port, priority, purpose in services
        if port is not None
    ]


class DnsService:
    """The records a domain's manager (or its customer, or the provider) should publish."""

    def __init__(self, units: UnitOfWorkFactory, server: str, ports: ServicePorts) -> None:
        self._units = units
        self._server = server
        self._ports = ports

    @property
    def server(self) -> str:
        """The host name the MX, SPF, CNAME and SRV records point at."""
        return self._server

    @property
    def server_problem(self) -> str | None:
        """Why those records cannot work for other servers (public_name_problem)."""
        return public_name_problem(self._server)

    async def records(self, actor: Actor, name: DomainName) -> list[DnsRecord]:
        async with self._units() as uow:
            domain = access.visible_domain(actor, await uow.directory.domain_by_name(name), name)
            # DKIM rows appear once outbound signing has made a key for the domain.
            dkim = await uow.web_access.dkim_records(domain.id)
        records = records_to_publish(domain.name, self._server, self._ports, dkim)
        # Only while pending: once verified, the proof has done its work.
        return records if domain.verified else [ownership_record(domain), *records]
