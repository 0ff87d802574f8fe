"""Router against a tiny DNS server on 127.0.0.1: MX order, implicit MX, null MX, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import dns.asyncresolver
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhost.outbound.routing import Hop, Router, RoutingError
from mailhost.settings import Smarthost


@dataclass
class Zone(asyncio.DatagramProtocol):
    """Answers from `records` {(name, type): [rdata]}; names in `servfail` get SERVFAIL."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)
    transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # a DatagramTransport in all but its class hierarchy

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        response = dns.message.make_response(query)
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, kind) in self.records:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 300, "IN", kind, self.records[name, kind])
            )
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        cast(asyncio.DatagramTransport, self.transport).sendto(response.to_wire(), addr)


@pytest.fixture
async def zone() -> AsyncIterator[tuple[Zone, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Zone, local_addr=("127.0.0.1", 0))
    yield protocol, transport.get_extra_info("sockname")[1]
    transport.close()


def router_for(zone: tuple[Zone, int], **kwargs: object) -> Router:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = zone[1]
    resolver.lifetime = 2.0
    smarthost = kwargs.get("smarthost")
    routes = kwargs.get("routes", {})
    assert smarthost is None or isinstance(smarthost, Smarthost)
    assert isinstance(routes, dict)
    return Router(smarthost, routes, resolver=resolver, mx_port=2525, timeout=2.0)


async def test_mx_hosts_are_tried_in_preference_order_at_each_address(
    zone: tuple[Zone, int],
) -> None:
    records = zone[0].records
    records["example.net", "MX"] = ["20 backup.example.net.", "10 mx1.example.net."]
    records["mx1.example.net", "A"] = ["127.0.0.11", "127.0.0.12"]
    records["mx1.example.net", "AAAA"] = ["::1"]
    records["backup.example.net", "A"] = ["127.0.0.21"]
    route = await router_for(zone).route("Example.NET")
    assert route.via == "mx"
    # An RRset has no order: addresses of one host compare as a set, IPv4 first.
    assert [hop.host for hop in route.hops] == ["mx1.example.net"] * 3 + ["backup.example.net"]
    assert {hop.address for hop in route.hops[:2]} == {"127.0.0.11", "127.0.0.12"}
    assert route.hops[2:] == (
        Hop("mx1.example.net", "::1", 2525),
        Hop("backup.example.net", "127.0.0.21", 2525),
    )


async def test_null_mx_is_a_permanent_failure(zone: tuple[Zone, int]) -> None:
    zone[0].records["nomail.example", "MX"] = ["0 ."]
    with pytest.raises(RoutingError) as caught:
        await router_for(zone).route("nomail.example")
    assert caught.value.permanent
    assert caught.value.reply == (
        "556 5.1.10 domain nomail.example accepts no mail (null MX, RFC 7505)"
    )


async def test_domain_without_mx_is_its_own_mail_host(zone: tuple[Zone, int]) -> None:
    zone[0].records["bare.example", "A"] = ["127.0.0.5"]
    route = await router_for(zone).route("bare.example")
    assert route.hops == (Hop("bare.example", "127.0.0.5", 2525),)


async def test_domain_without_mx_and_address_fails_permanently(zone: tuple[Zone, int]) -> None:
    zone[0].records["txtonly.example", "TXT"] = ['"hello"']
    with pytest.raises(RoutingError) as caught:
        await router_for(zone).route("txtonly.example")
    assert caught.value.permanent
    assert caught.value.reply == (
        "550 5.1.2 domain txtonly.example has no MX and no address records"
    )


async def test_nonexistent_domain_fails_permanently(zone: tuple[Zone, int]) -> None:
    with pytest.raises(RoutingError) as caught:
        await router_for(zone).route("nowhere.example")
    assert caught.value.permanent
    assert caught.value.reply == "550 5.1.2 domain nowhere.example does not exist (DNS NXDOMAIN)"


async def test_dns_trouble_is_temporary(zone: tuple[Zone, int]) -> None:
    zone[0].servfail.add("broken.example")
    with pytest.raises(RoutingError) as caught:
        await router_for(zone).route("broken.example")
    assert not caught.value.permanent
    assert caught.value.reply.startswith("451 4.4.3 DNS lookup of MX broken.example failed")


async def test_mx_hosts_without_addresses_are_temporary(zone: tuple[Zone, int]) -> None:
    zone[0].records["moving.example", "MX"] = ["10 new.moving.example."]
    zone[0].records["new.moving.example", "TXT"] = ['"soon"']
    with pytest.raises(RoutingError) as caught:
        await router_for(zone).route("moving.example")
    assert not caught.value.permanent
    assert caught.value.reply == "451 4.4.4 the MX hosts of moving.example have no addresses"


async def test_static_route_wins_over_smarthost_and_smarthost_over_dns(
    zone: tuple[Zone, int],
) -> None:
    router = router_for(
        zone,
        smarthost=Smarthost("relay.isp.example", 587),
        routes={"partner.example": Smarthost("10.1.2.3", 2526)},
    )
    partner = await router.route("partner.example")
    other = await router.route("anything.example")
    assert (partner.via, partner.hops) == ("route", (Hop("10.1.2.3", "10.1.2.3", 2526),))
    assert (other.via, other.hops) == (
        "smarthost",
        (Hop("relay.isp.example", "relay.isp.example", 587),),
    )
    assert zone[0].queries == []  # neither asked DNS


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(preferences=st.lists(st.integers(0, 65535), min_size=1, max_size=6))
def test_hops_never_go_down_in_preference(preferences: list[int]) -> None:
    async def check() -> None:
        loop = asyncio.get_running_loop()
        transport, zone = await loop.create_datagram_endpoint(Zone, local_addr=("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            zone.records["prefs.example", "MX"] = [
                f"{pref} mx{n}.prefs.example." for n, pref in enumerate(preferences)
            ]
            for n in range(len(preferences)):
                zone.records[f"mx{n}.prefs.example", "A"] = [f"127.0.1.{n}"]
            route = await router_for((zone, port)).route("prefs.example")
            order = [preferences[int(hop.address.rsplit(".", 1)[1])] for hop in route.hops]
            assert order == sorted(preferences)
        finally:
            transport.close()

    asyncio.run(check())
