"""Mail client auto-configuration: Thunderbird autoconfig, Outlook Autodiscover (POX) and
Apple configuration profiles, all pointing at mail.<domain> with password authentication
over TLS ("my server requires authentication", never Secure Password Authentication).
"""

from __future__ import annotations

import plistlib
import re
import uuid
from dataclasses import dataclass
from typing import Annotated
from xml.etree.ElementTree import Element, SubElement, tostring

from fastapi import APIRouter, Query, Request, Response

from mailhost.errors import InvalidInput, UnknownDomain
from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.settings import Settings
from mailhost.web.dependencies import Ctx

router = APIRouter()
# Looking up whether a domain is hosted is public knowledge (its MX says so anyway).
_LOOKUP = ProviderActor("autoconfig")
_MAX_BODY = 64 * 1024
_EMAIL = re.compile(rb"<EMailAddress>\s*([^<\s]{1,254})\s*</EMailAddress>", re.IGNORECASE)
_AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
_OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


@dataclass(frozen=True, slots=True)
class Endpoint:
    protocol: str  # pop3 | smtp
    port: int
    implicit_tls: bool


def endpoints(settings: Settings) -> list[Endpoint]:
    """Enabled client-facing listeners, preferred first (implicit TLS, RFC 8314 §3)."""
    found = [
        Endpoint("pop3", settings.pop3s.port, True) if settings.pop3s.enabled else None,
        Endpoint("pop3", settings.pop3.port, False) if settings.pop3.enabled else None,
        Endpoint("smtp", settings.submissions.port, True) if settings.submissions.enabled else None,
        Endpoint("smtp", settings.submission.port, False) if settings.submission.enabled else None,
    ]
    return [endpoint for endpoint in found if endpoint is not None]


def thunderbird_config(domain: DomainName, settings: Settings) -> bytes:
    """https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat"""
    root = Element("clientConfig", version="1.1")
    provider = SubElement(root, "emailProvider", id=domain.ascii)
    SubElement(provider, "domain").text = domain.ascii
    SubElement(provider, "displayName").text = f"{domain.unicode} mail"
    SubElement(provider, "displayShortName").text = domain.unicode
    for endpoint in endpoints(settings):
        tag = "incomingServer" if endpoint.protocol == "pop3" else "outgoingServer"
        server = SubElement(provider, tag, type=endpoint.protocol)
        SubElement(server, "hostname").text = domain.mail_host
        SubElement(server, "port").text = str(endpoint.port)
        SubElement(server, "socketType").text = "SSL" if endpoint.implicit_tls else "STARTTLS"
        SubElement(server, "username").text = "%EMAILADDRESS%"
        SubElement(server, "authentication").text = "password-cleartext"
    return bytes(tostring(root, encoding="utf-8", xml_declaration=True))


def outlook_config(address: EmailAddress, settings: Settings) -> bytes:
    """Autodiscover POX response ([MS-OXDSCLI] §2.2.4), POP3 and SMTP with SPA off."""
    root = Element("Autodiscover", xmlns=_AUTODISCOVER_NS)
    response = SubElement(root, "Response", xmlns=_OUTLOOK_NS)
    account = SubElement(response, "Account")
    SubElement(account, "AccountType").text = "email"
    SubElement(account, "Action").text = "settings"
    chosen: dict[str, Endpoint] = {}
    for endpoint in endpoints(settings):
        chosen.setdefault(endpoint.protocol, endpoint)
    for endpoint in chosen.values():
        protocol = SubElement(account, "Protocol")
        SubElement(protocol, "Type").text = endpoint.protocol.upper()
        SubElement(protocol, "Server").text = address.domain.mail_host
        SubElement(protocol, "Port").text = str(endpoint.port)
        SubElement(protocol, "LoginName").text = str(address)
        SubElement(protocol, "DomainRequired").text = "off"
        SubElement(protocol, "SPA").text = "off"
        SubElement(protocol, "SSL").text = "on"
        if not endpoint.implicit_tls:
            SubElement(protocol, "Encryption").text = "TLS"
        SubElement(protocol, "AuthRequired").text = "on"
        if endpoint.protocol == "smtp":
            SubElement(protocol, "UsePOPAuth").text = "on"
    return bytes(tostring(root, encoding="utf-8", xml_declaration=True))


def apple_profile(address: EmailAddress, settings: Settings) -> bytes:
    """A .mobileconfig with one com.apple.mail.managed payload (no password inside)."""
    pop3 = next((e for e in endpoints(settings) if e.protocol == "pop3"), None)
    smtp = next((e for e in endpoints(settings) if e.protocol == "smtp"), None)
    if pop3 is None or smtp is None:
        raise InvalidInput("POP3 or SMTP submission is switched off on this server")
    host = address.domain.mail_host
    # Stable identifiers: downloading the profile again replaces the installed one.
    account_id = uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{address}")
    profile_id = uuid.uuid5(uuid.NAMESPACE_URL, f"mailhost-profile:{address}")
    reverse = ".".join(reversed(settings.server.hostname.split(".")))
    mail = {
        "EmailAccountDescription": f"{address} ({host})",
        "EmailAccountName": str(address),
        "EmailAccountType": "EmailTypePOP",
        "EmailAddress": str(address),
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": host,
        "IncomingMailServerPortNumber": pop3.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": str(address),
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": host,
        "OutgoingMailServerPortNumber": smtp.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": str(address),
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PayloadDisplayName": f"Mail: {address}",
        "PayloadIdentifier": f"{reverse}.mail.{account_id}",
        "PayloadType": "com.apple.mail.managed",
        "PayloadUUID": str(account_id).upper(),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [mail],
        "PayloadDisplayName": f"{address.domain.unicode} mail",
        "PayloadIdentifier": f"{reverse}.profile.{profile_id}",
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": str(profile_id).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile)


async def _hosted(ctx: Ctx, name: DomainName) -> DomainName:
    found = await ctx.accounts.domain(_LOOKUP, name)
    # A pending domain is not hosted yet: its users could not log in with the settings.
    if found.status != "verified":
        raise UnknownDomain(f"domain {name} is not hosted here")
    return found.name


def _domain_of_request(request: Request, emailaddress: str | None) -> DomainName:
    if emailaddress:
        return EmailAddress.parse(emailaddress).domain
    # Thunderbird asks http://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=...
    host = (request.url.hostname or "").removeprefix("autoconfig.")
    return DomainName.parse(host)


EmailQuery = Annotated[str | None, Query(max_length=254)]


@router.get("/.well-known/autoconfig/mail/config-v1.1.xml")
@router.get("/mail/config-v1.1.xml")
async def thunderbird(ctx: Ctx, request: Request, emailaddress: EmailQuery = None) -> Response:
    domain = await _hosted(ctx, _domain_of_request(request, emailaddress))
    return Response(thunderbird_config(domain, ctx.settings), media_type="application/xml")


@router.post("/autodiscover/autodiscover.xml")
@router.post("/Autodiscover/Autodiscover.xml")
async def outlook(ctx: Ctx, request: Request) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise InvalidInput("the Autodiscover request is too large")
    match = _EMAIL.search(body)
    if match is None:
        raise InvalidInput("the Autodiscover request names no EMailAddress")
    address = EmailAddress.parse(match.group(1).decode("ascii", "replace"))
    await _hosted(ctx, address.domain)
    return Response(outlook_config(address, ctx.settings), media_type="application/xml")
