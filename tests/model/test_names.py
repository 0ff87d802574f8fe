"""Addresses with UTF-8 (RFC 6531 §3.3): local parts kept as written, domains as A-labels."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailhost.errors import InvalidAddress
from mailhost.model.names import MAX_LOCAL_PART, EmailAddress

# RFC 5321 §4.1.2 atext, the rule for ASCII local parts before RFC 6531.
ASCII_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


@pytest.mark.parametrize(
    ("raw", "local", "domain", "ascii"),
    [
        ("bob@example.com", "bob", "example.com", True),
        ("bob@bücher.example", "bob", "xn--bcher-kva.example", True),
        ("jörg@bücher.example", "jörg", "xn--bcher-kva.example", False),
        ("用户@例子.广告", "用户", "xn--fsqu00a.xn--4rr70v", False),
        ("Δοκιμή@παράδειγμα.δοκιμή", "Δοκιμή", "xn--hxajbheg2az3al.xn--jxalpdlp", False),
        ("<zoë.o'neil@remote.test>", "zoë.o'neil", "remote.test", False),
    ],
)
def test_utf8_local_parts_are_kept_and_u_label_domains_become_a_labels(
    raw: str, local: str, domain: str, ascii: bool
) -> None:
    address = EmailAddress.parse(raw)
    assert (address.local, address.domain.ascii) == (local, domain)
    # Only a UTF-8 local part keeps the address from being ASCII (needing SMTPUTF8).
    assert str(address).isascii() is ascii
    assert EmailAddress.parse(str(address)) == address


@pytest.mark.parametrize(
    "raw",
    [
        "j\udcc3rg@example.com",  # bytes that were not UTF-8 (surrogateescape)
        "jö rg@example.com",
        "jö..rg@example.com",
        '"jörg"@example.com',
        "jörg\n@example.com",
        "é" * 33 + "@example.com",  # 66 octets (RFC 5321 §4.5.3.1.1 counts octets)
        "jörg@bü cher.example",
    ],
)
def test_broken_utf8_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        EmailAddress.parse(raw)


def test_hosted_users_keep_ascii_names() -> None:
    assert str(EmailAddress.hosted("Bob@Bücher.Example")) == "bob@xn--bcher-kva.example"
    with pytest.raises(InvalidAddress, match="may contain only letters"):
        EmailAddress.hosted("jörg@example.com")


_LOCAL = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="@") | st.just("."),
    min_size=1,
    max_size=40,
)


def _expected_ok(local: str) -> bool:
    atoms = local.split(".")
    return len(local.encode()) <= MAX_LOCAL_PART and all(
        atom and all(ASCII_ATOM.fullmatch(c) or not c.isascii() for c in atom) for atom in atoms
    )


@given(_LOCAL)
def test_a_local_part_is_accepted_exactly_when_rfc_6531_allows_it(local: str) -> None:
    assume(local == local.lstrip())  # parse strips the blanks around an address
    try:
        address = EmailAddress.parse(f"{local}@example.com")
    except InvalidAddress:
        assert not _expected_ok(local)
        return
    assert _expected_ok(local)
    assert address.local == local  # never normalised: the local part is the receiver's
    assert str(address).isascii() is local.isascii()


@given(st.text(st.characters(max_codepoint=0x7F), min_size=1, max_size=70))
def test_ascii_local_parts_follow_rfc_5321_as_before(local: str) -> None:
    assume(local == local.lstrip())  # parse strips the blanks around an address
    old_rule = len(local) <= MAX_LOCAL_PART and all(
        ASCII_ATOM.fullmatch(atom) for atom in local.split(".")
    )
    try:
        EmailAddress.parse(f"{local}@example.com")
    except InvalidAddress:
        assert not old_rule
    else:
        assert old_rule


@given(st.text(st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1))
def test_undecodable_bytes_never_make_an_address(junk: str) -> None:
    with pytest.raises(InvalidAddress):
        EmailAddress.parse(f"a{junk}@example.com")
