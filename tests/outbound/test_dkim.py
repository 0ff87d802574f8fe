"""DKIM keys, DNS records and signatures, verified by dkimpy against the records we publish."""

from __future__ import annotations

import base64
import re
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailhost.model.names import DomainName
from mailhost.outbound.dkim import (
    KEY_SPECS,
    SigningKey,
    author_domains,
    dns_record,
    generate_key,
    sign_message,
    signing_key,
    zone_line,
)
from mailhost.runtime import Runtime
from mailhost.storage.database.dkim_keys import StoredDkimKey
from tests.outbound.conftest import hosted_customer

DOMAIN = DomainName.parse("example.com")
ED25519, RSA = KEY_SPECS
MESSAGE = b"From: Bob <bob@example.com>\r\nTo: a@remote.test\r\nSubject: s\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def rsa_key() -> StoredDkimKey:
    return generate_key(RSA)


@pytest.fixture(scope="module")
def ed_key() -> StoredDkimKey:
    return generate_key(ED25519)


def dnsfunc(*keys: StoredDkimKey) -> dict[bytes, bytes]:
    return {
        f"{dns_record(DOMAIN, key).name}.".encode(): dns_record(DOMAIN, key).text.encode()
        for key in keys
    }


def verifies(message: bytes, records: dict[bytes, bytes]) -> bool:
    return bool(dkim.verify(message, dnsfunc=lambda name, timeout=5: records.get(name)))


def loaded(key: StoredDkimKey) -> SigningKey:
    signer = signing_key(key)
    assert signer is not None
    return signer


def dkimpy_seed(key: StoredDkimKey) -> bytes:
    """The ed25519 key as dkimpy's own `sign` takes it: the base64 of its 32-byte seed."""
    private = serialization.load_pem_private_key(key.private_key.encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


def test_rsa_key_is_2048_bits_and_published_as_spki(rsa_key: StoredDkimKey) -> None:
    private = serialization.load_pem_private_key(rsa_key.private_key.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    public = serialization.load_der_public_key(base64.b64decode(rsa_key.public_key))
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    record = dns_record(DOMAIN, rsa_key)
    assert record.name == "mailhost-rsa._domainkey.example.com"
    assert record.text == f"v=DKIM1; k=rsa; p={rsa_key.public_key}"


def test_ed25519_key_is_published_as_the_bare_32_bytes(ed_key: StoredDkimKey) -> None:
    private = serialization.load_pem_private_key(ed_key.private_key.encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    raw = base64.b64decode(ed_key.public_key)
    assert raw == private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert dns_record(DOMAIN, ed_key).text == f"v=DKIM1; k=ed25519; p={ed_key.public_key}"


def test_zone_line_splits_long_records_into_255_octet_strings(
    rsa_key: StoredDkimKey, ed_key: StoredDkimKey
) -> None:
    long_line = zone_line(dns_record(DOMAIN, rsa_key))
    assert long_line.startswith('mailhost-rsa._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa')
    strings = re.findall(r'"([^"]*)"', long_line)
    assert len(strings) > 1 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == dns_record(DOMAIN, rsa_key).text
    short = zone_line(dns_record(DOMAIN, ed_key))
    name = "mailhost-ed25519._domainkey.example.com."
    assert short == f'{name} IN TXT "v=DKIM1; k=ed25519; p={ed_key.public_key}"'


def test_rsa_signature_verifies_and_breaks_when_the_body_changes(rsa_key: StoredDkimKey) -> None:
    signed = sign_message(MESSAGE, DOMAIN, [loaded(rsa_key)]) + MESSAGE
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert b"d=example.com" in signed and b"s=mailhost-rsa" in signed
    assert verifies(signed, dnsfunc(rsa_key))
    assert not verifies(signed.replace(b"body", b"b0dy"), dnsfunc(rsa_key))


def test_message_without_from_is_left_unsigned(rsa_key: StoredDkimKey) -> None:
    assert sign_message(b"Subject: no author\r\n\r\nx\r\n", DOMAIN, [loaded(rsa_key)]) == b""


def test_ed25519_signature_verifies(ed_key: StoredDkimKey, rsa_key: StoredDkimKey) -> None:
    pytest.importorskip("nacl", reason="dkimpy needs PyNaCl (dkimpy[ed25519]) to verify ed25519")
    signed = sign_message(MESSAGE, DOMAIN, [loaded(ed_key)]) + MESSAGE
    assert b"a=ed25519-sha256" in signed
    assert verifies(signed, dnsfunc(ed_key))


LONGER = (
    b"From: Bob <bob@example.com>\r\nTo: a@remote.test,\r\n  c@remote.test\r\n"
    b"Subject:   folded\r\n\tsubject  \r\nDate: Wed, 2 Dec 2026 04:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\nReceived: from x\r\n\r\n"
    + b"a line  with  spaces \r\n" * 40
    + b"\r\n\r\n"
)


@pytest.mark.parametrize("message", [MESSAGE, LONGER], ids=["short", "folded"])
def test_signatures_are_byte_for_byte_those_dkimpy_makes_itself(
    rsa_key: StoredDkimKey, ed_key: StoredDkimKey, message: bytes
) -> None:
    """RSASSA-PKCS1-v1_5 and Ed25519 are deterministic: same input, same bytes."""
    ours = theirs = b""
    for _ in range(3):  # t= is the second of signing: try again if one went by
        second = int(time.time())
        ours = sign_message(message, DOMAIN, [loaded(ed_key), loaded(rsa_key)])
        theirs = dkim.sign(
            message,
            b"mailhost-ed25519",
            b"example.com",
            dkimpy_seed(ed_key),
            signature_algorithm=b"ed25519-sha256",
        ) + dkim.sign(message, b"mailhost-rsa", b"example.com", rsa_key.private_key.encode())
        if int(time.time()) == second:
            break
    assert ours == theirs


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_each_signature_verifies_and_fails_once_the_body_or_a_header_is_changed(
    rsa_key: StoredDkimKey, ed_key: StoredDkimKey, algorithm: str
) -> None:
    pytest.importorskip("nacl", reason="dkimpy needs PyNaCl (dkimpy[ed25519]) to verify ed25519")
    key = ed_key if algorithm == "ed25519" else rsa_key
    signed = sign_message(LONGER, DOMAIN, [loaded(key)]) + LONGER
    assert verifies(signed, dnsfunc(key))
    assert not verifies(signed.replace(b"with  spaces", b"with  space5", 1), dnsfunc(key))
    assert not verifies(signed.replace(b"Subject:   folded", b"Subject:   f0lded"), dnsfunc(key))


def test_a_key_of_an_unknown_algorithm_is_not_used(rsa_key: StoredDkimKey) -> None:
    assert signing_key(StoredDkimKey("x", "dsa", rsa_key.private_key, "")) is None
    assert signing_key(StoredDkimKey("x", "ed25519", rsa_key.private_key, "")) is None


@pytest.mark.parametrize(
    ("message", "sender", "expected"),
    [
        (b"From: Bob <bob@Example.COM>\r\n\r\n", "x@other.test", ["example.com", "other.test"]),
        (b"From: bob@example.com\r\n\r\n", "bob@example.com", ["example.com"]),
        (b"Subject: none\r\n\r\n", "bob@example.org", ["example.org"]),
        (b"From: not an address\r\n\r\n", "", []),
    ],
)
def test_signing_domain_is_the_authors_then_the_envelope_senders(
    message: bytes, sender: str, expected: list[str]
) -> None:
    assert [d.ascii for d in author_domains(message, sender)] == expected


async def test_domain_add_creates_both_keys_once(runtime: Runtime) -> None:
    await hosted_customer(runtime)
    records = await runtime.dkim.records(DOMAIN)
    assert [(r.selector, r.algorithm) for r in records] == [
        ("mailhost-ed25519", "ed25519"),
        ("mailhost-rsa", "rsa"),
    ]
    assert await runtime.dkim.ensure_keys(DOMAIN) == records  # kept, not regenerated
    assert await runtime.dkim.records(DomainName.parse("not-hosted.test")) == []


async def test_keyring_signs_only_for_hosted_domains(runtime: Runtime) -> None:
    await hosted_customer(runtime)
    headers = await runtime.dkim.sign(MESSAGE, "bob@example.com")
    records = {f"{r.name}.".encode(): r.text.encode() for r in await runtime.dkim.records(DOMAIN)}
    assert verifies(headers + MESSAGE, records)
    foreign = MESSAGE.replace(b"bob@example.com", b"eve@elsewhere.test")
    assert await runtime.dkim.sign(foreign, "eve@elsewhere.test") == b""


async def test_keyring_signs_for_a_domain_at_once_when_it_is_added(runtime: Runtime) -> None:
    # The keyring remembers what it read for a domain; adding the domain makes it forget.
    assert await runtime.dkim.sign(MESSAGE, "bob@example.com") == b""
    await hosted_customer(runtime)
    headers = await runtime.dkim.sign(MESSAGE, "bob@example.com")
    records = {f"{r.name}.".encode(): r.text.encode() for r in await runtime.dkim.records(DOMAIN)}
    checker = dkim.DKIM(headers + MESSAGE)
    for index in range(2):  # both signatures, with the keys published now
        assert checker.verify(idx=index, dnsfunc=lambda name, timeout=5: records.get(name))
