"""The local certificate authority and the server certificates it issues.

`mailhost init` creates the CA (`ca.pem` + `ca.key`) and a certificate for the
configured hostname; adding a domain issues one for `mail.<domain>`. A leaf is
written as `<directory>/<hostname>.pem` (leaf, then the CA: the chain a server
sends) and `<directory>/<hostname>.key`, the layout `contexts.CertificateStore`
reads. Keep the CA directory apart from the certificates directory: the CA key
never needs to be readable by the listeners.

Functions here are synchronous (key generation and small file writes); callers
on the event loop run them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailhost.errors import ConfigError, InvalidDomainName

CA_VALIDITY = timedelta(days=3650)
# The longest lifetime macOS/iOS accept for a TLS server certificate (the limit
# of CA/Browser Forum Ballot 193); other clients are at least as lenient.
LEAF_VALIDITY = timedelta(days=825)
# Backdate notBefore so a client whose clock runs a little slow still accepts.
CLOCK_SKEW = timedelta(hours=1)

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca.key"

# LDH host names (RFC 1123 §2.1), lower case, A-labels already applied. The name
# becomes a file name, so this check is also what keeps "../" out of paths.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")

IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def normalise_hostname(raw: str) -> str | None:
    """`raw` as a lower-case host name usable as a file name, or None if it is not one."""
    # isascii first: str.lower() maps a few non-ASCII letters (K, the Kelvin sign) to ASCII.
    name = raw.lower().removesuffix(".") if raw.isascii() else ""
    return name if _HOSTNAME.match(name) else None


def _require_hostname(raw: str) -> str:
    name = normalise_hostname(raw)
    if name is None:
        raise InvalidDomainName(f"{raw!r} is not a host name a certificate can be for")
    return name


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A server certificate on disk: `cert` holds the leaf then the CA chain (PEM)."""

    cert: Path
    key: Path

    @classmethod
    def for_hostname(cls, directory: Path, hostname: str) -> CertificateFiles:
        """Where the certificate for `hostname` lives in `directory`."""
        name = _require_hostname(hostname)
        return cls(cert=directory / f"{name}.pem", key=directory / f"{name}.key")


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """The local CA: its certificate, its key, and the directory they live in."""

    directory: Path
    certificate: x509.Certificate
    private_key: IssuerKey

    @classmethod
    def load_or_create(
        cls, directory: Path, common_name: str = "mailhost local CA"
    ) -> CertificateAuthority:
        """Load the CA in `directory`, creating it first if there is none; idempotent."""
        cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
        if cert_path.exists():
            return cls._load(directory, cert_path, key_path)
        # The CA directory holds the CA key: nobody else needs to list it.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _self_signed_ca(key, common_name)
        # The key goes first and the certificate last: ca.pem on disk means the pair
        # is complete, so a crash in between only leaves a key that the next run replaces.
        _write_atomically(key_path, _key_pem(key), mode=0o600)
        _write_atomically(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o600)
        return cls(directory, certificate, key)

    @classmethod
    def _load(cls, directory: Path, cert_path: Path, key_path: Path) -> CertificateAuthority:
        if not key_path.exists():
            raise ConfigError(f"CA certificate {cert_path} exists but its key {key_path} does not")
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except ValueError as exc:
            raise ConfigError(f"cannot read the CA in {directory}: {exc}") from exc
        if not isinstance(key, IssuerKey):
            raise ConfigError(f"CA key {key_path} is neither an EC nor an RSA key")
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise ConfigError(f"CA key {key_path} does not belong to {cert_path}")
        return cls(directory, certificate, key)

    @property
    def ca_path(self) -> Path:
        """The CA certificate (PEM) clients trust to verify mailhost's listeners."""
        return self.directory / CA_CERT_NAME

    def issue(self, hostnames: Sequence[str], directory: Path) -> CertificateFiles:
        """Issue a server certificate for `hostnames`, named after the first; replaces any."""
        if not hostnames:
            raise InvalidDomainName("a certificate needs at least one host name")
        names = list(dict.fromkeys(_require_hostname(name) for name in hostnames))
        files = CertificateFiles.for_hostname(directory, names[0])
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = self._sign_leaf(key, names)
        chain = b"".join(
            cert.public_bytes(serialization.Encoding.PEM) for cert in (leaf, self.certificate)
        )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Key first: a reader that finds the new .pem (checked by CertificateStore)
        # then also finds the key that goes with it.
        _write_atomically(files.key, _key_pem(key), mode=0o600)
        # Owner-only like all of mailhost's files (storage/permissions.py): the
        # certificate is public, but nothing else on this machine needs to read it.
        _write_atomically(files.cert, chain, mode=0o600)
        return files

    def _sign_leaf(self, key: ec.EllipticCurvePrivateKey, names: Sequence[str]) -> x509.Certificate:
        not_before = datetime.now(UTC) - CLOCK_SKEW
        # A leaf cannot outlive its issuer: clients would reject the chain anyway.
        not_after = min(not_before + LEAF_VALIDITY, self.certificate.not_valid_after_utc)
        issuer_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            # RFC 6125 §6.4.4: clients match the SAN dNSNames; the CN is for humans only.
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
                critical=False,
            )
        )
        return builder.sign(self.private_key, hashes.SHA256())


def _self_signed_ca(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailhost"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    not_before = datetime.now(UTC) - CLOCK_SKEW
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + CA_VALIDITY)
        # RFC 5280 §4.2.1.9: path length 0, this CA signs server certificates only.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), False)
    )
    return builder.sign(key, hashes.SHA256())


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never half."""
    # mkstemp creates the file 0600, so a key is never readable by others, even briefly.
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    # fsync the directory too, or the rename may not survive a crash.
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
