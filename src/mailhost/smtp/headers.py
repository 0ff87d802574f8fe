"""Trace headers (RFC 5321 §4.4) and the bare CR/LF check against smuggling."""

from __future__ import annotations

import functools
import ipaddress
import re
from datetime import datetime
from email.utils import format_datetime
from enum import StrEnum

from mailhost.model.names import EmailAddress

CRLF = b"\r\n"
# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; fold between clauses.
FOLD_AT = 78
# RFC 1035 §2.3.4 / RFC 5321 §4.5.3.1.2: no legitimate HELO name is longer.
MAX_HELO = 255

# RFC 5321 §4.1.2 Domain (sub-domain labels, no trailing dot) and §4.1.3 address literals.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ADDRESS_LITERAL = re.compile(r"\[(?:[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\]")
# Comment text (RFC 5322 §3.2.2 ctext) without backslash and parentheses.
_COMMENT_UNSAFE = re.compile(r"[^\x21-\x27\x2a-\x5b\x5d-\x7e]")
# A CR not followed by LF, or an LF not preceded by CR.
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


class WithProtocol(StrEnum):
    """The `with` clause of a Received header (RFC 3848, RFC 5321 §4.4)."""

    SMTP = "SMTP"  # HELO
    ESMTP = "ESMTP"  # EHLO
    ESMTPS = "ESMTPS"  # EHLO after STARTTLS
    ESMTPA = "ESMTPA"  # EHLO and AUTH (RFC 3848 §2)
    ESMTPSA = "ESMTPSA"  # EHLO, TLS and AUTH (RFC 3848 §3)
    # The same with SMTPUTF8 in MAIL FROM (RFC 6531 §3.7.3, registered in §4.3).
    UTF8SMTP = "UTF8SMTP"
    UTF8SMTPS = "UTF8SMTPS"
    UTF8SMTPA = "UTF8SMTPA"
    UTF8SMTPSA = "UTF8SMTPSA"


def first_bare_line_ending(data: bytes) -> int | None:
    """Offset of the first CR or LF that is not part of a CRLF pair, or None.

    RFC 5321 §2.3.8 allows CR and LF in mail data only as the pair CRLF. Receivers
    disagree about bare ones, which is what SMTP smuggling (CVE-2023-51764/51765/51766)
    exploits: `\\n.\\n` ends the message for one server and not for the next.
    """
    pairs = data.count(CRLF)
    # Fast path, in C: every CR and every LF belongs to a pair.
    if data.count(b"\r") == pairs and data.count(b"\n") == pairs:
        return None
    match = _BARE.search(data)
    return None if match is None else match.start()


def address_literal(ip: str) -> str:
    """`[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"[{address.ipv4_mapped}]"
        return f"[IPv6:{address.compressed}]"
    return f"[{address}]"


def received_header(
    *,
    helo: str | None,
    peer_ip: str | None,
    hostname: str,
    protocol: WithProtocol,
    queue_id: str,
    recipient: EmailAddress | None,
    now: datetime,
) -> bytes:
    """`Received: from <helo> ([ip]) by <hostname> with ESMTP id <id> for <rcpt>; <date>` CRLF.

    The grammar is RFC 5321 §4.4 Time-stamp-line: the From-domain is the HELO name
    when it is a valid Domain or address literal, otherwise the peer's address
    literal with the HELO name in a comment (the name is client input, never trusted
    to be syntax). No reverse DNS lookup is made. `for` names the recipient only when
    there is exactly one, so copies do not reveal the other recipients; in an
    SMTPUTF8 transaction it may be UTF-8 (RFC 6531 §3.7.3), else the header is ASCII.
    """
    if now.utcoffset() is None:
        raise ValueError("the Received date needs a timezone (RFC 5322 §3.3)")
    clauses = [_from_clause(helo, peer_ip), f"by {hostname}", f"with {protocol}", f"id {queue_id}"]
    if recipient is not None:
        clauses.append(f"for <{recipient}>")
    clauses[-1] += ";"
    clauses.append(_date(now.replace(microsecond=0)))
    return _fold("Received:", clauses)


# Cached: an MX writes a Received header per message, and within a second the
# date is the same, as are a connection's HELO name and address.
@functools.lru_cache(maxsize=4)
def _date(now: datetime) -> str:
    return format_datetime(now)


@functools.lru_cache(maxsize=1024)
def _from_clause(helo: str | None, peer_ip: str | None) -> str:
    try:
        literal = None if peer_ip is None else address_literal(peer_ip)
    except ValueError:  # not an IP address (a Unix socket, say): leave it out
        literal = None
    name = (helo or "")[:MAX_HELO]
    if _DOMAIN.fullmatch(name) or _ADDRESS_LITERAL.fullmatch(name):
        return f"from {name}" if literal is None else f"from {name} ({literal})"
    shown = _COMMENT_UNSAFE.sub("?", name)
    comment = f" (helo={shown})" if shown else ""
    return f"from {literal or 'unknown'}{comment}"


def _fold(name: str, clauses: list[str]) -> bytes:
    """Join clauses with spaces, folding (CRLF TAB, RFC 5322 §2.2.3) before one that would
    push the line past FOLD_AT. A single clause is never split."""
    lines = [name]
    for clause in clauses:
        if len(lines[-1]) + 1 + len(clause) > FOLD_AT and lines[-1] != name:
            lines.append(f"\t{clause}")
        else:
            lines[-1] += f" {clause}"
    return "\r\n".join(lines).encode("utf-8") + CRLF
