"""What a message's header says: its authors, and whether it needs SMTPUTF8 (RFC 6531)."""

from __future__ import annotations

import pytest

from mailhost.model.message import author_addresses, needs_smtputf8

ASCII = b"From: bob@example.com\r\nSubject: hi\r\n\r\ncaf\xc3\xa9 in the body only\r\n"


@pytest.mark.parametrize(
    ("sender", "recipients", "message", "needed"),
    [
        ("bob@example.com", ["ann@remote.test"], ASCII, False),  # 8-bit body: 8BITMIME's
        ("", ["ann@remote.test"], ASCII, False),
        ("jörg@example.com", ["ann@remote.test"], ASCII, True),
        ("bob@example.com", ["ann@remote.test", "zoë@remote.test"], ASCII, True),
        ("bob@example.com", ["ann@remote.test"], "Subject: Grüße\r\n\r\nhi\r\n".encode(), True),
        # Header bytes that are not UTF-8: legacy junk, not an RFC 6532 message.
        ("bob@example.com", ["ann@remote.test"], b"Subject: Gr\xfc\xdfe\r\n\r\nhi\r\n", False),
        # No header section end: the whole message is header.
        ("bob@example.com", ["ann@remote.test"], "Subject: ü".encode(), True),
    ],
)
def test_smtputf8_is_needed_for_utf8_in_the_envelope_or_the_header(
    sender: str, recipients: list[str], message: bytes, needed: bool
) -> None:
    assert needs_smtputf8(sender, recipients, message) is needed


@pytest.mark.parametrize(
    ("field", "authors"),
    [
        ("From: Jörg <jörg@example.com>".encode(), ["jörg@example.com"]),
        ("From: Älice <alice@bücher.example>".encode(), ["alice@bücher.example"]),
        (b"From: j\xf6rg@example.com", [""]),  # latin-1, not UTF-8: unparsable, refused
    ],
)
def test_utf8_authors_are_read_and_undecodable_ones_refused(
    field: bytes, authors: list[str]
) -> None:
    assert author_addresses(field + b"\r\n\r\nbody\r\n") == authors
