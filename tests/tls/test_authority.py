"""The local CA: created once, reused after, and issuing well-formed server certificates."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given
from hypothesis import strategies as st

from mailhost.errors import ConfigError, InvalidDomainName
from mailhost.tls.authority import CertificateAuthority, CertificateFiles, normalise_hostname


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_second_load_returns_the_same_ca(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "ca")
    key_before = (tmp_path / "ca" / "ca.key").read_bytes()

    second = CertificateAuthority.load_or_create(tmp_path / "ca")

    assert second.certificate == first.certificate
    assert second.ca_path == tmp_path / "ca" / "ca.pem"
    assert (tmp_path / "ca" / "ca.key").read_bytes() == key_before
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["ca.key", "ca.pem"]


def test_ca_key_is_readable_by_owner_only(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path / "ca")

    assert mode_of(tmp_path / "ca" / "ca.key") == 0o600
    assert mode_of(tmp_path / "ca") == 0o700


def test_ca_is_a_ten_year_self_signed_ca_that_signs_only_leaves(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", common_name="Test CA")
    cert = ca.certificate

    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert cert.subject == cert.issuer
    assert "Test CA" in cert.subject.rfc4514_string()
    cert.verify_directly_issued_by(cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == timedelta(days=3650)
    assert cert.not_valid_before_utc <= datetime.now(UTC) < cert.not_valid_after_utc


def test_ca_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path / "ca")
    (tmp_path / "ca" / "ca.key").unlink()

    with pytest.raises(ConfigError, match=r"ca\.pem exists but its key .*ca\.key does not"):
        CertificateAuthority.load_or_create(tmp_path / "ca")


def test_ca_key_of_another_ca_is_refused(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path / "ca")
    CertificateAuthority.load_or_create(tmp_path / "other")
    (tmp_path / "ca" / "ca.key").write_bytes((tmp_path / "other" / "ca.key").read_bytes())

    with pytest.raises(ConfigError, match=r"ca\.key does not belong to .*ca\.pem"):
        CertificateAuthority.load_or_create(tmp_path / "ca")


def test_issued_certificate_is_for_every_name_and_chains_to_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")

    files = ca.issue(["mail.example.test", "Example.test", "mail.example.test"], tmp_path / "c")

    assert files == CertificateFiles(
        cert=tmp_path / "c" / "mail.example.test.pem", key=tmp_path / "c" / "mail.example.test.key"
    )
    leaf, issuer = load_chain(files.cert)
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.example.test", "example.test"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=825)


def test_issued_key_matches_the_certificate_and_is_private(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")

    files = ca.issue(["mx.hosting.test"], tmp_path / "certs")

    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    leaf = load_chain(files.cert)[0]
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*spki) == leaf.public_key().public_bytes(*spki)
    assert mode_of(files.key) == 0o600
    assert mode_of(files.cert) == 0o600
    assert mode_of(tmp_path / "certs") == 0o700
    # The atomic writes leave no temporary files behind.
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == [
        "mx.hosting.test.key",
        "mx.hosting.test.pem",
    ]


def test_issuing_again_replaces_the_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    first = load_chain(ca.issue(["mail.example.test"], tmp_path / "c").cert)[0]

    second = load_chain(ca.issue(["mail.example.test"], tmp_path / "c").cert)[0]

    assert second.serial_number != first.serial_number


def test_leaf_never_outlives_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    # A CA that is nine and a half years into its ten: issue from a copy whose
    # certificate expires in 100 days.
    short_lived = (
        x509.CertificateBuilder()
        .subject_name(ca.certificate.subject)
        .issuer_name(ca.certificate.issuer)
        .public_key(ca.certificate.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=3550))
        .not_valid_after(datetime.now(UTC) + timedelta(days=100))
    )
    for extension in ca.certificate.extensions:
        short_lived = short_lived.add_extension(extension.value, extension.critical)
    old_ca = CertificateAuthority(
        ca.directory, short_lived.sign(ca.private_key, hashes.SHA256()), ca.private_key
    )

    leaf = load_chain(old_ca.issue(["mail.example.test"], tmp_path / "c").cert)[0]

    assert leaf.not_valid_after_utc == old_ca.certificate.not_valid_after_utc


@pytest.mark.parametrize(
    "bad",
    [
        "../evil",
        "mail/example.test",
        "mail_example.test",
        "",
        "-mail.example.test",
        "mäil.test",
        "\u212a.test",
    ],
)
def test_names_that_are_not_host_names_are_refused(tmp_path: Path, bad: str) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")

    with pytest.raises(InvalidDomainName, match="is not a host name a certificate can be for"):
        ca.issue(["mail.example.test", bad], tmp_path / "certs")
    assert not (tmp_path / "certs").exists()


def test_a_certificate_needs_a_name(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")

    with pytest.raises(InvalidDomainName, match="at least one host name"):
        ca.issue([], tmp_path / "certs")


LABELS = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)


@given(st.lists(LABELS, min_size=1, max_size=5))
def test_host_names_are_accepted_in_lower_case(labels: list[str]) -> None:
    name = ".".join(labels)

    assert normalise_hostname(name) == name.lower()
    assert normalise_hostname(name + ".") == name.lower()


@given(st.text())
def test_anything_accepted_is_a_safe_file_name_and_stable(raw: str) -> None:
    name = normalise_hostname(raw)

    if name is not None:
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        assert "" not in name.split(".")
        assert len(name) <= 253
        assert normalise_hostname(name) == name
