"""DKIM for hosted domains: key pairs (ed25519 and RSA 2048), their DNS records, and signing.

Each domain gets two keys (RFC 8463 §4 suggests signing with both while
verifiers learn ed25519). Mail is signed for the domain of its From: header
(what DMARC aligns with, RFC 7489 §3.1), or failing that of its envelope
sender, when that domain has keys here. Signatures use relaxed/simple
canonicalization (dkimpy's default) and go on top of the unchanged message.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailhost.errors import InvalidDomainName
from mailhost.interfaces import DkimRecord
from mailhost.model.names import DomainName
from mailhost.outbound.bounces import original_header
from mailhost.storage.database.dkim_keys import SqlDkimKeys, StoredDkimKey

log = logging.getLogger("mailhost.dkim")

RSA_BITS = 2048
# dkimpy signs ed25519 through PyNaCl (its "ed25519" extra); without it only RSA signs.
ED25519_SIGNING = importlib.util.find_spec("nacl") is not None


@dataclass(frozen=True, slots=True)
class KeySpec:
    selector: str
    algorithm: str  # ed25519 | rsa
    signature_algorithm: bytes  # the a= tag


KEY_SPECS = (
    KeySpec("mailhost-ed25519", "ed25519", b"ed25519-sha256"),
    KeySpec("mailhost-rsa", "rsa", b"rsa-sha256"),
)
_SPEC_BY_ALGORITHM = {spec.algorithm: spec for spec in KEY_SPECS}


def generate_key(spec: KeySpec) -> StoredDkimKey:
    """A new key pair: PEM private key, and the public key as the p= tag wants it."""
    if spec.algorithm == "ed25519":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        # RFC 8463 §4.2: p= is the bare 32-byte public key, base64.
        public = ed_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        pem = _pem(ed_key)
    else:
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        # RFC 6376 §3.6.1: p= is the DER SubjectPublicKeyInfo, base64.
        public = rsa_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pem = _pem(rsa_key)
    return StoredDkimKey(spec.selector, spec.algorithm, pem, base64.b64encode(public).decode())


def _pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def dns_record(domain: DomainName, key: StoredDkimKey) -> DkimRecord:
    kind = "ed25519" if key.algorithm == "ed25519" else "rsa"
    return DkimRecord(
        selector=key.selector,
        algorithm=key.algorithm,
        name=f"{key.selector}._domainkey.{domain.ascii}",
        text=f"v=DKIM1; k={kind}; p={key.public_key}",
    )


def zone_line(record: DkimRecord) -> str:
    """The record as a zone file line; RFC 1035 §3.3: one TXT string holds at most 255 octets."""
    chunks = [record.text[i : i + 255] for i in range(0, len(record.text), 255)]
    quoted = " ".join(f'"{chunk}"' for chunk in chunks)
    return (
        f"{record.name}. IN TXT ( {quoted} )"
        if len(chunks) > 1
        else (f"{record.name}. IN TXT {quoted}")
    )


def sign_message(message: bytes, domain: DomainName, keys: Sequence[StoredDkimKey]) -> bytes:
    """DKIM-Signature header fields (CRLF-terminated) for `message`; b"" if none could be made."""
    headers: list[bytes] = []
    for key in keys:
        spec = _SPEC_BY_ALGORITHM.get(key.algorithm)
        if spec is None or (key.algorithm == "ed25519" and not ED25519_SIGNING):
            continue
        try:
            signature = dkim.sign(
                message,
                key.selector.encode("ascii"),
                domain.ascii.encode("ascii"),
                _private_key_for_dkimpy(key),
                signature_algorithm=spec.signature_algorithm,
            )
        except dkim.DKIMException as exc:
            # No From: header, say: the message goes out with what could be made.
            log.warning("no %s DKIM signature for %s: %s", key.algorithm, domain, exc)
            continue
        headers.append(bytes(signature))
    return b"".join(headers)


def _private_key_for_dkimpy(key: StoredDkimKey) -> bytes:
    if key.algorithm != "ed25519":
        return key.private_key.encode("ascii")
    # dkimpy takes an ed25519 key as the base64 of its 32-byte seed.
    loaded = serialization.load_pem_private_key(key.private_key.encode("ascii"), password=None)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    seed = loaded.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(seed)


def author_domains(message: bytes, envelope_sender: str) -> list[DomainName]:
    """Domains the message may be signed for, best first: From: header, then envelope sender."""
    header = BytesHeaderParser().parsebytes(original_header(message))
    candidates = [address for _, address in getaddresses(header.get_all("From", []))]
    candidates.append(envelope_sender)
    domains: list[DomainName] = []
    for address in candidates:
        _, at, raw = address.rpartition("@")
        if not at:
            continue
        try:
            domain = DomainName.parse(raw)
        except InvalidDomainName:
            continue
        if domain not in domains:
            domains.append(domain)
    return domains


class DkimKeyring:
    """The DkimKeys of mailhost: keys in the database, generated off the event loop."""

    def __init__(self, keys: SqlDkimKeys) -> None:
        self._keys = keys

    async def ensure_keys(self, domain: DomainName) -> Sequence[DkimRecord]:
        stored = await self._keys.keys_for(domain)
        have = {key.selector for key in stored}
        missing = [spec for spec in KEY_SPECS if spec.selector not in have]
        if missing:
            # RSA key generation takes tens of milliseconds of CPU: not on the loop.
            for key in await asyncio.to_thread(_generate_all, missing):
                await self._keys.add(domain, key)
            stored = await self._keys.keys_for(domain)
        return [dns_record(domain, key) for key in stored]

    async def records(self, domain: DomainName) -> Sequence[DkimRecord]:
        return [dns_record(domain, key) for key in await self._keys.keys_for(domain)]

    async def sign(self, message: bytes, envelope_sender: str) -> bytes:
        """Signature headers to put on top of `message`; b"" if no hosted domain applies."""
        domains = await asyncio.to_thread(author_domains, message, envelope_sender)
        for domain in domains:
            keys = await self._keys.keys_for(domain)
            if keys:
                return await asyncio.to_thread(sign_message, message, domain, keys)
        return b""


def _generate_all(specs: Iterable[KeySpec]) -> list[StoredDkimKey]:
    return [generate_key(spec) for spec in specs]
