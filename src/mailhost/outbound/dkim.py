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
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy

from mailhost.errors import InvalidDomainName
from mailhost.interfaces import DkimRecord
from mailhost.model.names import DomainName
from mailhost.outbound.bounces import original_header
from mailhost.storage.database.dkim_keys import SqlDkimKeys, StoredDkimKey

log = logging.getLogger("mailhost.dkim")

RSA_BITS = 2048
_NAME = b"DKIM-Signature"
_NAME_LENGTH = len(_NAME)
# How long the worker trusts the keys it read for a domain. Keys are made once, when a
# domain is added (here, which forgets at once, or by another process) and go with it.
KEYS_FRESH_SECONDS = 30.0


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


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key loaded once (by OpenSSL, through `cryptography`) for its selector."""

    selector: str
    signature_algorithm: bytes  # the a= tag
    private: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

    def sign(self, digest: bytes) -> bytes:
        """The b= value for the SHA-256 `digest` of the signed header fields."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            # RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 over the SHA-256 hash (OpenSSL, GIL released).
            return self.private.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        # RFC 8463 §3: pure Ed25519 over the SHA-256 hash, as dkimpy signs through PyNaCl.
        return self.private.sign(digest)


def signing_key(stored: StoredDkimKey) -> SigningKey | None:
    """`stored` loaded for signing; None for an algorithm we do not sign with."""
    spec = _SPEC_BY_ALGORITHM.get(stored.algorithm)
    if spec is None:
        return None
    private = serialization.load_pem_private_key(stored.private_key.encode("ascii"), None)
    expected = ed25519.Ed25519PrivateKey if spec.algorithm == "ed25519" else rsa.RSAPrivateKey
    if not isinstance(private, expected):
        log.warning(
            "DKIM key %s is no %s key; not signing with it", stored.selector, spec.algorithm
        )
        return None
    return SigningKey(stored.selector, spec.signature_algorithm, private)


def sign_message(message: bytes, domain: DomainName, keys: Sequence[SigningKey]) -> bytes:
    """DKIM-Signature header fields (CRLF-terminated) for `message`; b"" if none could be made.

    dkimpy parses the message, picks the header fields, canonicalizes and folds, as in
    its own `DKIM.sign`; the private-key step is the key's. dkimpy's would parse the
    PEM for every message and do the RSA operation with Python integers, about twenty
    times OpenSSL's time, and it offers no way to hand it a loaded key.
    """
    try:
        parsed = dkim.DKIM(message)
        include = tuple(name.lower() for name in parsed.default_sign_headers())
        if b"from" not in include:
            raise dkim.ParameterError("The From header field MUST be signed")
    except dkim.DKIMException as exc:
        # No From: header, say: the message goes out unsigned.
        log.warning("no DKIM signature for %s: %s", domain, exc)
        return b""
    # Relaxed header and simple body canonicalization (RFC 6376 §3.4), dkimpy's default.
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
    headers = policy.canonicalize_headers(parsed.headers)
    body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(parsed.body)).digest())
    return b"".join(
        _signature_field(key, domain.ascii.encode("ascii"), policy, headers, include, body_hash)
        for key in keys
    )


def _signature_field(
    key: SigningKey,
    domain: bytes,
    policy: CanonicalizationPolicy,
    headers: list[tuple[bytes, bytes]],
    include: tuple[bytes, ...],
    body_hash: bytes,
) -> bytes:
    """One DKIM-Signature field, built as dkimpy's `DomainSigner.gen_header` builds it."""
    fields = [
        (b"v", b"1"),
        (b"a", key.signature_algorithm),
        (b"c", policy.to_c_value()),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", key.selector.encode("ascii")),
        (b"t", str(int(time.time())).encode("ascii")),
        (b"h", b" : ".join(include)),
        (b"bh", body_hash),
        # A placeholder as long as a folded b= so that folding puts b= on its own line.
        (b"b", b"0" * 60),
    ]
    # RFC 6376 §3.7: the signature field itself is hashed last, with an empty b= value.
    unsigned = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=_NAME_LENGTH)
    field = (_NAME, b" " + dkim.RE_BTAG.sub(b"\\1", unsigned))
    hasher = hashlib.sha256()
    dkim.hash_headers(hasher, policy, headers, include, field, dict(fields))
    fields[-1] = (b"b", base64.b64encode(key.sign(hasher.digest())))
    value: bytes = dkim.fold(b"; ".join(b"=".join(f) for f in fields) + b"\r\n", _NAME_LENGTH)
    return _NAME + b": " + value


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
    """The DkimKeys of mailhost: keys in the database, generated off the event loop.

    For signing, each domain's keys are read at most every `fresh_for` seconds and each
    private key is loaded once (loading an RSA key checks it, which takes tens of
    milliseconds); a key whose PEM changed in the database is loaded again.
    """

    def __init__(
        self,
        keys: SqlDkimKeys,
        fresh_for: float = KEYS_FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._fresh_for = fresh_for
        self._clock = clock
        self._signing: dict[str, tuple[float, tuple[SigningKey, ...]]] = {}  # domain → (read, keys)
        self._loaded: dict[tuple[str, str], tuple[str, SigningKey | None]] = {}  # → (PEM, key)
        self._reading = asyncio.Lock()  # a cold cache is read once, not by every message

    async def ensure_keys(self, domain: DomainName) -> Sequence[DkimRecord]:
        stored = await self._keys.keys_for(domain)
        have = {key.selector for key in stored}
        missing = [spec for spec in KEY_SPECS if spec.selector not in have]
        if missing:
            # RSA key generation takes tens of milliseconds of CPU: not on the loop.
            for key in await asyncio.to_thread(_generate_all, missing):
                await self._keys.add(domain, key)
            stored = await self._keys.keys_for(domain)
            self._signing.pop(domain.ascii, None)
        return [dns_record(domain, key) for key in stored]

    async def records(self, domain: DomainName) -> Sequence[DkimRecord]:
        return [dns_record(domain, key) for key in await self._keys.keys_for(domain)]

    async def sign(self, message: bytes, envelope_sender: str) -> bytes:
        """Signature headers to put on top of `message`; b"" if no hosted domain applies."""
        domains = await asyncio.to_thread(author_domains, message, envelope_sender)
        for domain in domains:
            keys = await self.signing_keys(domain)
            if keys:
                return await asyncio.to_thread(sign_message, message, domain, keys)
        return b""

    async def signing_keys(self, domain: DomainName) -> Sequence[SigningKey]:
        """The domain's keys, loaded; empty for a domain without keys (or not hosted)."""
        cached = self._fresh(domain)
        if cached is not None:
            return cached
        async with self._reading:
            cached = self._fresh(domain)
            if cached is not None:
                return cached
            stored = await self._keys.keys_for(domain)
            keys = tuple(key for key in await self._load(domain, stored) if key is not None)
            self._signing[domain.ascii] = (self._clock(), keys)
            return keys

    def _fresh(self, domain: DomainName) -> tuple[SigningKey, ...] | None:
        entry = self._signing.get(domain.ascii)
        if entry is None or self._clock() - entry[0] >= self._fresh_for:
            return None
        return entry[1]

    async def _load(
        self, domain: DomainName, stored: Sequence[StoredDkimKey]
    ) -> list[SigningKey | None]:
        selectors = {key.selector for key in stored}
        for gone in [k for k in self._loaded if k[0] == domain.ascii and k[1] not in selectors]:
            del self._loaded[gone]
        loaded: list[SigningKey | None] = []
        for key in stored:
            known = self._loaded.get((domain.ascii, key.selector))
            if known is None or known[0] != key.private_key:
                known = (key.private_key, await asyncio.to_thread(signing_key, key))
                self._loaded[(domain.ascii, key.selector)] = known
            loaded.append(known[1])
        return loaded


def _generate_all(specs: Iterable[KeySpec]) -> list[StoredDkimKey]:
    return [generate_key(spec) for spec in specs]
