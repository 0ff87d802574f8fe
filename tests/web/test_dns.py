"""The DNS page: records to publish, checked live against a real DNS server on loopback."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import httpx
import pytest

from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from mailhost.services.dns_records import (
    RecordType,
    ServicePorts,
    public_name_problem,
    records_to_publish,
)
from mailhost.settings import load_settings
from mailhost.web.app import create_web_app
from mailhost.web.dns_check import DnsChecker
from tests.conftest import cheap_passwords
from tests.web.conftest import HOSTNAME, World, logged_in, populate

Zone = dict[tuple[str, str], list[str]]


class _Nameserver(asyncio.DatagramProtocol):
    """Answers from a dict; names it does not know are NXDOMAIN."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's datagram transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        if not any(known == name for known, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, kind) in self.zone:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 300, "IN", kind, self.zone[(name, kind)])
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def nameserver() -> AsyncIterator[tuple[int, Zone]]:
    zone: Zone = {}
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Nameserver(zone), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    yield port, zone
    transport.close()


def test_records_follow_the_rfcs() -> None:
    ports = ServicePorts(submission=587, submissions=465, pop3=None, pop3s=995)
    records = records_to_publish(
        DomainName.parse("a.example"),
        "mx.hosting.test",
        ports,
        [("s1", "v=DKIM1; k=ed25519; p=AAAA")],
    )
    table = {(r.name, r.type): r.value for r in records}
    assert table[("a.example", RecordType.MX)] == "10 mx.hosting.test"
    assert table[("a.example", RecordType.TXT)] == "v=spf1 mx a:mx.hosting.test -all"
    assert table[("s1._domainkey.a.example", RecordType.TXT)].startswith("v=DKIM1")
    assert table[("_dmarc.a.example", RecordType.TXT)].startswith("v=DMARC1; p=none")
    assert table[("mail.a.example", RecordType.CNAME)] == "mx.hosting.test"
    assert table[("autoconfig.a.example", RecordType.CNAME)] == "mx.hosting.test"
    assert table[("autodiscover.a.example", RecordType.CNAME)] == "mx.hosting.test"
    assert table[("_submission._tcp.a.example", RecordType.SRV)] == "5 1 587 mx.hosting.test"
    assert table[("_submissions._tcp.a.example", RecordType.SRV)] == "0 1 465 mx.hosting.test"
    assert table[("_pop3s._tcp.a.example", RecordType.SRV)] == "0 1 995 mx.hosting.test"
    assert ("_pop3._tcp.a.example", RecordType.SRV) not in table  # switched off


def status_of(html: str, name: str, kind: str) -> str:
    row = re.search(
        rf"<td><code>{re.escape(name)}</code></td>\s*<td>{kind}</td>"
        r".*?<td class=\"status status-(\w+)\">",
        html,
        re.S,
    )
    assert row, f"no row for {name} {kind}"
    return row.group(1)


async def test_dns_page_checks_what_is_published(
    world: World, runtime: Runtime, nameserver: tuple[int, Zone]
) -> None:
    port, zone = nameserver
    zone[("a.example", "MX")] = [f"10 {HOSTNAME}."]
    zone[("a.example", "TXT")] = ['"v=spf1 include:elsewhere.example ~all"']
    zone[("mail.a.example", "CNAME")] = [f"{HOSTNAME}."]
    zone[("autoconfig.a.example", "CNAME")] = ["somewhere.else.example."]
    app = create_web_app(runtime, dns_checker=DnsChecker(["127.0.0.1"], port=port, timeout=1.0))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        panel = await logged_in(client, "domain", "a.example")
        page = await panel.get("/domain/a.example/dns")
    assert page.status_code == 200
    assert status_of(page.text, "a.example", "MX") == "published"
    assert status_of(page.text, "a.example", "TXT") == "different"
    assert "found: v=spf1 include:elsewhere.example ~all" in page.text
    assert status_of(page.text, "mail.a.example", "CNAME") == "published"
    assert status_of(page.text, "autoconfig.a.example", "CNAME") == "different"
    assert status_of(page.text, "_dmarc.a.example", "TXT") == "missing"
    # Adding the domain made its DKIM keys: their public halves are rows to publish.
    (ed25519,) = re.findall(
        r"<code class=\"value\">(v=DKIM1; k=ed25519; p=[^<]+)</code>", page.text
    )
    assert status_of(page.text, "mailhost-ed25519._domainkey.a.example", "TXT") == "missing"
    zone[("mailhost-ed25519._domainkey.a.example", "TXT")] = [f'"{ed25519}"']
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        panel = await logged_in(client, "domain", "a.example")
        page = await panel.get("/domain/a.example/dns")
    assert status_of(page.text, "mailhost-ed25519._domainkey.a.example", "TXT") == "published"


async def test_dns_page_does_not_hang_when_nobody_answers(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    started = time.monotonic()
    page = await panel.get("/domain/a.example/dns")
    assert time.monotonic() - started < 2.5
    assert page.status_code == 200
    assert status_of(page.text, "a.example", "MX") == "unknown"
    assert "could not check" in page.text


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("mail.localhost", ".localhost is this machine's own name"),
        ("localhost", "a single label"),
        ("vm", "a single label"),
        ("mx.hosting.test", ".test is reserved for testing"),
        ("mail.example", ".example is reserved for examples"),
        ("mx.example.com", ".example.com is reserved for examples"),
        ("x.invalid", ".invalid is reserved"),
        ("printer.local", ".local is multicast DNS"),
        ("vm.localdomain", ".localdomain is a local name"),
        ("192.0.2.25", "an IP address"),
        ("2001:db8::25", "an IP address"),
        ("mx.hosting.net", None),
        ("Mail.Provider.CO.UK.", None),
        ("testing.example-host.com", None),
    ],
)
def test_names_other_servers_cannot_reach_are_told_apart(name: str, problem: str | None) -> None:
    found = public_name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


async def test_dns_page_warns_when_the_server_name_is_not_public(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    page = await panel.get("/domain/a.example/dns")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert (
        f'<p class="warning" id="server-name">{HOSTNAME} is not a public name (.test is '
        "reserved for testing (RFC 6761) and never resolves on the Internet): other servers "
        "cannot reach it"
    ) in text
    assert "<code>[server] hostname</code>" in text


async def test_dns_page_has_no_warning_for_a_public_server_name(
    data_dir: Path, database_url: str
) -> None:
    settings = load_settings(
        None,
        data_dir,
        {"MAILHOST_DATABASE_URL": database_url, "MAILHOST_SERVER_HOSTNAME": "mx.hosting.net"},
    )
    async with Runtime(settings, passwords=cheap_passwords()) as runtime:
        await populate(runtime)
        app = create_web_app(runtime, dns_checker=DnsChecker(["127.0.0.1"], port=9, timeout=0.3))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50003))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            panel = await logged_in(client, "domain", "a.example")
            page = await panel.get("/domain/a.example/dns")
    assert page.status_code == 200
    assert "10 mx.hosting.net" in page.text
    assert "not a public name" not in page.text
