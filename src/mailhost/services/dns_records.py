"""The DNS records a hosted domain publishes so that mail and mail clients find this server.

Targets of MX and SRV records are this server's own host name, never an alias:
RFC 2181 §10.3 forbids an MX pointing at a CNAME and RFC 2782 an SRV target.
The mail.<domain> name clients type (the seed's "mail.yourdomain.tld") and the
autoconfig/autodiscover names may be aliases of it.
"""

from __future__ import annotations

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

    async def records(self, actor: Actor, name: DomainName) -> list[DnsRecord]:
        async with self._units() as uow:
            domain = access.visible_domain(actor, await uow.directory.domain_by_name(name), name)
            # DKIM rows appear once outbound signing has made a key for the domain.
            dkim = await uow.web_access.dkim_records(domain.id)
        records = records_to_publish(domain.name, self._server, self._ports, dkim)
        # Only while pending: once verified, the proof has done its work.
        return records if domain.verified else [ownership_record(domain), *records]
