"""Mail client auto-configuration: Thunderbird, Outlook Autodiscover and Apple profiles."""

from __future__ import annotations

import plistlib
from xml.etree import ElementTree

import httpx

from mailhost.runtime import Runtime
from tests.web.conftest import World, logged_in

OUTLOOK = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
REQUEST = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@a.example</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


def servers(document: ElementTree.Element, tag: str) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            server.get("type", ""),
            server.findtext("hostname", ""),
            server.findtext("port", ""),
            server.findtext("socketType", ""),
            server.findtext("authentication", ""),
        )
        for server in document.iter(tag)
    ]


async def test_thunderbird_autoconfig_points_at_mail_domain_with_tls(
    world: World, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    s = runtime.settings
    answer = await client.get(
        "/.well-known/autoconfig/mail/config-v1.1.xml", params={"emailaddress": "alice@a.example"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    document = ElementTree.fromstring(answer.content)
    assert document.tag == "clientConfig" and document.get("version") == "1.1"
    assert document.findtext("emailProvider/domain") == "a.example"
    assert servers(document, "incomingServer") == [
        ("pop3", "mail.a.example", str(s.pop3s.port), "SSL", "password-cleartext"),
        ("pop3", "mail.a.example", str(s.pop3.port), "STARTTLS", "password-cleartext"),
    ]
    assert servers(document, "outgoingServer") == [
        ("smtp", "mail.a.example", str(s.submissions.port), "SSL", "password-cleartext"),
        ("smtp", "mail.a.example", str(s.submission.port), "STARTTLS", "password-cleartext"),
    ]
    assert {u.text for u in document.iter("username")} == {"%EMAILADDRESS%"}


async def test_thunderbird_asks_the_autoconfig_host_without_an_address(
    world: World, client: httpx.AsyncClient
) -> None:
    answer = await client.get("/mail/config-v1.1.xml", headers={"Host": "autoconfig.a.example"})
    assert answer.status_code == 200
    assert b"<hostname>mail.a.example</hostname>" in answer.content


async def test_autoconfig_for_a_domain_not_hosted_here_is_not_found(
    world: World, client: httpx.AsyncClient
) -> None:
    answer = await client.get(
        "/mail/config-v1.1.xml", params={"emailaddress": "someone@elsewhere.example"}
    )
    assert answer.status_code == 404


async def test_outlook_autodiscover_answers_pop3_and_smtp_without_spa(
    world: World, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    answer = await client.post("/autodiscover/autodiscover.xml", content=REQUEST)
    assert answer.status_code == 200
    document = ElementTree.fromstring(answer.content)
    protocols = {p.findtext(f"{OUTLOOK}Type"): p for p in document.iter(f"{OUTLOOK}Protocol")}
    assert set(protocols) == {"POP3", "SMTP"}
    for kind, port in (
        ("POP3", runtime.settings.pop3s.port),
        ("SMTP", runtime.settings.submissions.port),
    ):
        protocol = protocols[kind]
        assert protocol.findtext(f"{OUTLOOK}Server") == "mail.a.example"
        assert protocol.findtext(f"{OUTLOOK}Port") == str(port)
        assert protocol.findtext(f"{OUTLOOK}LoginName") == "alice@a.example"
        assert protocol.findtext(f"{OUTLOOK}SPA") == "off"
        assert protocol.findtext(f"{OUTLOOK}SSL") == "on"
        assert protocol.findtext(f"{OUTLOOK}AuthRequired") == "on"


async def test_outlook_request_without_an_address_is_refused(
    world: World, client: httpx.AsyncClient
) -> None:
    answer = await client.post("/autodiscover/autodiscover.xml", content=b"<Autodiscover/>")
    assert answer.status_code == 422
    assert "names no EMailAddress" in answer.text


async def test_self_service_page_offers_an_apple_profile_for_the_user(
    world: World, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    panel = await logged_in(client, "user", "alice@a.example")
    page = await panel.get("/user/")
    assert 'href="/user/mail.mobileconfig"' in page.text
    answer = await panel.get("/user/mail.mobileconfig")
    assert answer.headers["content-type"] == "application/x-apple-aspen-config"
    assert "alice-a.example.mobileconfig" in answer.headers["content-disposition"]
    profile = plistlib.loads(answer.content)
    assert profile["PayloadType"] == "Configuration"
    (mail,) = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert (mail["EmailAccountType"], mail["EmailAddress"]) == ("EmailTypePOP", "alice@a.example")
    assert (
        mail["IncomingMailServerHostName"] == mail["OutgoingMailServerHostName"] == "mail.a.example"
    )
    assert mail["IncomingMailServerPortNumber"] == runtime.settings.pop3s.port
    assert mail["OutgoingMailServerPortNumber"] == runtime.settings.submissions.port
    assert mail["IncomingMailServerUseSSL"] is mail["OutgoingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    again = plistlib.loads((await panel.get("/user/mail.mobileconfig")).content)
    assert again["PayloadUUID"] == profile["PayloadUUID"]  # re-installing replaces, not adds


async def test_help_pages_are_filled_in_with_the_readers_domain(
    world: World, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    page = await client.get("/help/smtp", params={"domain": "a.example"})
    assert page.status_code == 200
    assert "<code>mail.a.example</code>" in page.text
    assert "My server requires authentication" in page.text
    assert "Secure Password Authentication" in page.text
    assert f"<td>{runtime.settings.submissions.port}</td>" in page.text
    generic = await client.get("/help/clients")
    assert "mail.yourdomain.tld" in generic.text
    panel = await logged_in(client, "domain", "a.example")
    own = await panel.get("/help/pop3")
    assert "<code>mail.a.example</code>" in own.text
    assert (await client.get("/help/nonsense")).status_code == 404
