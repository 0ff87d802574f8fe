"""Real TLS handshakes on 127.0.0.1: SNI picks mail.<domain>, anything else gets the hostname."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from mailhost.errors import ConfigError, InvalidDomainName
from mailhost.tls.authority import CertificateAuthority
from mailhost.tls.contexts import CertificateStore, client_context

HOSTNAME = "mx.hosting.test"
GREETING = b"220 ready\r\n"
HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
SELF_SIGNED_IN_CHAIN = 19  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN


@dataclass(frozen=True, slots=True)
class Peer:
    names: list[str]
    serial: int


@dataclass(frozen=True, slots=True)
class Setup:
    ca: CertificateAuthority
    certs: Path
    store: CertificateStore


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    certs = tmp_path / "certs"
    ca.issue(["mail.example.test"], certs)
    ca.issue([HOSTNAME], certs)
    return Setup(ca, certs, CertificateStore(certs, HOSTNAME))


@asynccontextmanager
async def serving(store: CertificateStore) -> AsyncIterator[int]:
    """A TLS listener that greets and hangs up; yields its port."""
    context = await asyncio.to_thread(store.server_context)

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def handshake(
    port: int, ca_file: Path, server_hostname: str | None, *, check_hostname: bool = True
) -> Peer:
    """Connect, verifying the chain with `ca_file`; the certificate the server presented."""
    context = client_context(ca_file)
    context.check_hostname = check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_hostname
    )
    try:
        assert await reader.readline() == GREETING
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    leaf = x509.load_der_x509_certificate(der)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return Peer(san.get_values_for_type(x509.DNSName), leaf.serial_number)


async def refused(port: int, ca_file: Path, server_hostname: str) -> ssl.SSLCertVerificationError:
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await handshake(port, ca_file, server_hostname)
    return caught.value


def serial_on_disk(path: Path) -> int:
    return x509.load_pem_x509_certificates(path.read_bytes())[0].serial_number


async def test_client_asking_for_a_hosted_name_gets_its_certificate(setup: Setup) -> None:
    async with serving(setup.store) as port:
        peer = await handshake(port, setup.ca.ca_path, "mail.example.test")

    assert peer.names == ["mail.example.test"]


async def test_client_asking_for_the_hostname_gets_its_certificate(setup: Setup) -> None:
    async with serving(setup.store) as port:
        peer = await handshake(port, setup.ca.ca_path, HOSTNAME)

    assert peer.names == [HOSTNAME]


async def test_unknown_name_gets_the_hostname_certificate(setup: Setup) -> None:
    async with serving(setup.store) as port:
        error = await refused(port, setup.ca.ca_path, "unknown.example.test")
        peer = await handshake(port, setup.ca.ca_path, "unknown.example.test", check_hostname=False)

    assert error.verify_code == HOSTNAME_MISMATCH
    assert "Hostname mismatch" in error.verify_message
    assert "unknown.example.test" in error.verify_message
    assert peer.names == [HOSTNAME]


async def test_client_without_sni_gets_the_hostname_certificate(setup: Setup) -> None:
    async with serving(setup.store) as port:
        # An IP address is never sent as server_name (RFC 6066 §3).
        peer = await handshake(port, setup.ca.ca_path, None, check_hostname=False)

    assert peer.names == [HOSTNAME]


async def test_certificate_issued_after_start_is_served(setup: Setup) -> None:
    async with serving(setup.store) as port:
        before = await refused(port, setup.ca.ca_path, "mail.new.test")
        await asyncio.to_thread(setup.ca.issue, ["mail.new.test"], setup.certs)
        peer = await handshake(port, setup.ca.ca_path, "mail.new.test")

    assert before.verify_code == HOSTNAME_MISMATCH
    assert peer.names == ["mail.new.test"]


async def test_renewed_certificate_is_served_after_reload(setup: Setup) -> None:
    async with serving(setup.store) as port:
        first = await handshake(port, setup.ca.ca_path, "mail.example.test")
        files = await asyncio.to_thread(setup.ca.issue, ["mail.example.test"], setup.certs)
        cached = await handshake(port, setup.ca.ca_path, "mail.example.test")
        setup.store.reload()
        renewed = await handshake(port, setup.ca.ca_path, "mail.example.test")

    assert cached.serial == first.serial
    assert renewed.serial == serial_on_disk(files.cert) != first.serial


async def test_operator_certificate_from_another_ca_is_served(setup: Setup, tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other-ca", common_name="Other CA")
    other.issue(["mail.other.test"], setup.certs)

    async with serving(setup.store) as port:
        peer = await handshake(port, other.ca_path, "mail.other.test")
        error = await refused(port, setup.ca.ca_path, "mail.other.test")

    assert peer.names == ["mail.other.test"]
    # Our CA does not vouch for it: the chain ends in a root the client does not trust.
    assert error.verify_code == SELF_SIGNED_IN_CHAIN
    assert "self-signed certificate in certificate chain" in error.verify_message


async def test_certificate_of_another_ca_fails_verification(setup: Setup, tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other-ca")

    async with serving(setup.store) as port:
        error = await refused(port, other.ca_path, "mail.example.test")

    assert error.verify_code == SELF_SIGNED_IN_CHAIN


async def test_unusable_files_fall_back_to_the_hostname_certificate(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A certificate with somebody else's key, as a hand-copied pair might be.
    broken = setup.ca.issue(["mail.broken.test"], setup.certs)
    spare = setup.ca.issue(["spare.broken.test"], tmp_path / "spare")
    broken.key.write_bytes(spare.key.read_bytes())

    with caplog.at_level(logging.WARNING, logger="mailhost.tls.contexts"):
        async with serving(setup.store) as port:
            peer = await handshake(port, setup.ca.ca_path, "mail.broken.test", check_hostname=False)

    assert peer.names == [HOSTNAME]
    assert any(
        "cannot load certificate" in r.getMessage() and "mail.broken.test.pem" in r.getMessage()
        for r in caplog.records
    )


def test_sni_names_are_case_insensitive(setup: Setup) -> None:
    mail = setup.store.context_for("mail.example.test")

    assert setup.store.context_for("MAIL.Example.TEST") is mail
    assert setup.store.context_for("mail.example.test.") is mail
    assert setup.store.context_for(None) is not mail
    assert setup.store.context_for(HOSTNAME) is setup.store.context_for(None)


def test_sni_names_never_become_paths_outside_the_directory(setup: Setup) -> None:
    default = setup.store.context_for(None)

    # ../ca/ca would name the CA's own ca.pem and ca.key next to the certs directory.
    assert (setup.certs / ".." / "ca" / "ca.key").exists()
    assert setup.store.context_for("../ca/ca") is default
    assert setup.store.files_for("../ca/ca") is None


def test_missing_hostname_certificate_is_a_config_error(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "empty", HOSTNAME)

    with pytest.raises(ConfigError, match=r"cannot load certificate .*mx\.hosting\.test\.pem"):
        store.server_context()


def test_default_hostname_must_be_a_host_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidDomainName, match="is not a host name"):
        CertificateStore(tmp_path, "../mx")


def test_server_context_refuses_old_tls_and_compression(setup: Setup) -> None:
    context = setup.store.server_context()

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.sni_callback is not None
