"""A tiny authoritative DNS server on 127.0.0.1 for tests: dnspython messages over UDP.

It runs in a thread of its own, so that it answers while a test waits on a
`mailhost` subprocess as well as while it awaits the app in-process. Names it
does not know are NXDOMAIN; `silent` drops every query (a resolver timing out).
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

# (name without the final dot, record type) → record values in zone-file syntax.
Zone = dict[tuple[str, str], list[str]]


@dataclass
class Nameserver:
    port: int
    zone: Zone = field(default_factory=dict)
    silent: bool = False

    @property
    def address(self) -> str:
        """As `[dns] nameservers` takes it."""
        return f"127.0.0.1:{self.port}"

    def environ(self, timeout_seconds: int = 1) -> dict[str, str]:
        """The settings that point mailhost's DNS lookups at this server."""
        return {
            "MAILHOST_DNS_NAMESERVERS": self.address,
            "MAILHOST_DNS_TIMEOUT_SECONDS": str(timeout_seconds),
        }

    def publish_txt(self, name: str, *values: str) -> None:
        self.zone[(name, "TXT")] = [f'"{value}"' for value in values]

    def answer(self, data: bytes) -> bytes | None:
        if self.silent:
            return None
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        if not any(known == name for known, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, kind) in self.zone:
            values = self.zone[(name, kind)]
            response.answer.append(dns.rrset.from_text_list(question.name, 300, "IN", kind, values))
        return response.to_wire()


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        server = self.server
        assert isinstance(server, _Server)
        reply = server.nameserver.answer(data)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _Server(socketserver.ThreadingUDPServer):
    daemon_threads = True
    nameserver: Nameserver


@contextmanager
def running_nameserver() -> Iterator[Nameserver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.nameserver = Nameserver(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="nameserver", daemon=True)
    thread.start()
    try:
        yield server.nameserver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
