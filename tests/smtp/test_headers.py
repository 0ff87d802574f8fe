"""The Received header (RFC 5321 §4.4) and the bare CR/LF detector that stops SMTP smuggling."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhost.model.names import EmailAddress
from mailhost.smtp.headers import (
    MAX_HELO,
    WithProtocol,
    address_literal,
    first_bare_line_ending,
    received_header,
)

NOW = datetime(2024, 1, 2, 10, 4, 5, tzinfo=UTC)
BOB = EmailAddress.parse("bob@example.com")


def reference_bare(data: bytes) -> int | None:
    """The obvious byte-by-byte definition the fast detector must agree with."""
    for i, byte in enumerate(data):
        if byte == 0x0D and data[i + 1 : i + 2] != b"\n":
            return i
        if byte == 0x0A and (i == 0 or data[i - 1] != 0x0D):
            return i
    return None


# Byte strings rich in the characters that matter: CR, LF, CRLF and dots.
line_soup = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"a", b"\r\n.\r\n"])).map(
    b"".join
)
clean_lines = st.lists(st.binary().map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")))


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"", None),
        (b"Subject: hi\r\n\r\nbody\r\n", None),
        (b"first\n.\nMAIL FROM:<evil@attacker.test>\r\n", 5),  # the classic smuggling end
        (b"first\r.\rMAIL FROM:<evil@attacker.test>\r\n", 5),
        (b"first\r\n.\nMAIL FROM:<evil@attacker.test>\r\n", 8),
        (b"first\n.\r\nMAIL FROM:<evil@attacker.test>\r\n", 5),
        (b"ends with a bare CR\r", 19),
        (b"\nstarts with a bare LF\r\n", 0),
        (b"two CRs\r\r\n", 7),
        (b"two LFs\r\n\n", 9),
    ],
)
def test_bare_line_endings_are_found_at_their_offset(data: bytes, offset: int | None) -> None:
    assert first_bare_line_ending(data) == offset


@given(line_soup)
def test_detector_agrees_with_the_byte_by_byte_definition(data: bytes) -> None:
    assert first_bare_line_ending(data) == reference_bare(data)


@given(st.binary())
def test_detector_agrees_on_arbitrary_bytes(data: bytes) -> None:
    assert first_bare_line_ending(data) == reference_bare(data)


@given(clean_lines)
def test_crlf_terminated_lines_have_no_bare_line_ending(lines: list[bytes]) -> None:
    assert first_bare_line_ending(b"".join(line + b"\r\n" for line in lines)) is None


@given(clean_lines, st.data(), st.sampled_from([b"\r", b"\n"]))
def test_one_lone_cr_or_lf_anywhere_is_detected(
    lines: list[bytes], data: st.DataObject, lone: bytes
) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    at = data.draw(st.integers(0, len(message)))
    smuggled = message[:at] + lone + message[at:]
    found = first_bare_line_ending(smuggled)
    # Put inside a CRLF, the lone byte pairs with one half and leaves the other bare.
    assert found is not None and at - 1 <= found <= at + 1


def test_received_header_follows_rfc_5321_and_folds_at_78() -> None:
    header = received_header(
        helo="client.example.org",
        peer_ip="192.0.2.7",
        hostname="mx.example.test",
        protocol=WithProtocol.ESMTPS,
        queue_id="0A1B2C3D4E5F",
        recipient=BOB,
        now=NOW,
    )
    assert header == (
        b"Received: from client.example.org ([192.0.2.7]) by mx.example.test with ESMTPS\r\n"
        b"\tid 0A1B2C3D4E5F for <bob@example.com>; Tue, 02 Jan 2024 10:04:05 +0000\r\n"
    )


def test_received_header_without_single_recipient_has_no_for_clause() -> None:
    header = received_header(
        helo="[192.0.2.7]",
        peer_ip="192.0.2.7",
        hostname="mx.example.test",
        protocol=WithProtocol.SMTP,
        queue_id="Q1",
        recipient=None,
        now=NOW,
    )
    assert header == (
        b"Received: from [192.0.2.7] ([192.0.2.7]) by mx.example.test with SMTP id Q1;\r\n"
        b"\tTue, 02 Jan 2024 10:04:05 +0000\r\n"
    )


def test_helo_that_is_not_a_domain_goes_into_a_comment() -> None:
    header = received_header(
        helo="evil (x); by fake.test",
        peer_ip="2001:db8::1",
        hostname="mx.example.test",
        protocol=WithProtocol.ESMTP,
        queue_id="Q1",
        recipient=None,
        now=NOW,
    )
    assert header.startswith(b"Received: from [IPv6:2001:db8::1] (helo=evil??x?;?by?fake.test)\r\n")


@pytest.mark.parametrize(
    ("ip", "literal"),
    [
        ("192.0.2.1", "[192.0.2.1]"),
        ("2001:0db8:0000::0001", "[IPv6:2001:db8::1]"),
        ("::ffff:192.0.2.1", "[192.0.2.1]"),
        ("fe80::1%eth0", "[IPv6:fe80::1]"),
    ],
)
def test_address_literals_follow_rfc_5321_4_1_3(ip: str, literal: str) -> None:
    assert address_literal(ip) == literal


def test_received_date_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        received_header(
            helo="a.test",
            peer_ip=None,
            hostname="mx.example.test",
            protocol=WithProtocol.ESMTP,
            queue_id="Q1",
            recipient=None,
            now=datetime(2024, 1, 2),  # noqa: DTZ001 - the point of the test
        )


@given(
    helo=st.one_of(st.none(), st.text(max_size=600)),
    ip=st.one_of(st.none(), st.ip_addresses().map(str)),
    protocol=st.sampled_from(WithProtocol),
    single=st.booleans(),
    now=st.datetimes(
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis adds the zone
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]),
    ),
)
def test_any_client_input_gives_one_well_formed_header(
    helo: str | None, ip: str | None, protocol: WithProtocol, single: bool, now: datetime
) -> None:
    header = received_header(
        helo=helo,
        peer_ip=ip,
        hostname="mx.example.test",
        protocol=protocol,
        queue_id="Q1",
        recipient=BOB if single else None,
        now=now,
    )
    assert header.isascii() and header.endswith(b"\r\n")
    assert first_bare_line_ending(header) is None
    lines = header[:-2].split(b"\r\n")
    assert all(line.startswith(b"\t") for line in lines[1:])
    # RFC 5322 §2.1.1: 78 is the aim and 998 the limit. Clauses are never split, so
    # only the from clause (long HELO name, IPv6 literal) may stand alone past 78.
    assert all(len(line) <= 78 for line in lines[1:])
    assert len(lines[0]) <= 78 or (b" by " not in lines[0] and len(lines[0]) < MAX_HELO + 80)
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(header + b"\r\n")
    assert list(parsed.keys()) == ["Received"]
    # Unfolding (RFC 5322 §2.2.3) removes the CRLFs and leaves the TABs.
    value = str(parsed["Received"]).replace("\t", " ")
    assert parsedate_to_datetime(value.rsplit(";", 1)[1]) == now.replace(microsecond=0)
    assert (f" for <{BOB}>;" in value) is single
    assert f" with {protocol} id Q1" in value
