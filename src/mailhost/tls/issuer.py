"""Certificates for hosted domains: mail.<domain> from the local CA, unless one was provided.

A removed domain's certificate is withdrawn (its files deleted) only if the local
CA issued it: files an operator provided are never touched, nor the server's own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from mailhost.tls.authority import (
    CA_CERT_NAME,
    CertificateAuthority,
    CertificateFiles,
    normalise_hostname,
)
from mailhost.tls.contexts import CertificateStore

log = logging.getLogger("mailhost.tls")


class LocalIssuer:
    def __init__(self, ca_dir: Path, store: CertificateStore, certs_dir: Path) -> None:
        self._ca_dir = ca_dir
        self._store = store
        self._certs_dir = certs_dir

    async def ensure_certificate(self, hostname: str) -> None:
        await asyncio.to_thread(self._ensure, hostname)

    def _ensure(self, hostname: str) -> None:
        # Operator-provided files win: never overwrite a certificate that is there.
        if self._store.files_for(hostname) is not None:
            return
        CertificateAuthority.load_or_create(self._ca_dir).issue([hostname], self._certs_dir)

    def withdraw(self, hostname: str) -> None:
        """Delete the certificate and key for `hostname` if the local CA issued them (blocking)."""
        name = normalise_hostname(hostname)
        if name is None:
            return  # no host name: there can be no file named after it
        files = CertificateFiles.for_hostname(self._certs_dir, name)
        if files.cert == self._store.default.cert or not files.cert.exists():
            return
        if not _issued_by(self._ca_dir / CA_CERT_NAME, files.cert):
            log.info("keeping %s: mailhost's CA did not issue it", files.cert)
            return
        # Key first: a certificate without its key is never served (CertificateStore),
        # and one left by a crash is still recognised as ours at the next sweep.
        files.key.unlink(missing_ok=True)
        files.cert.unlink(missing_ok=True)
        # fsync the directory too, or the deletions may not survive a crash.
        directory = os.open(self._certs_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._store.forget(hostname)
        log.info("removed certificate %s of a removed domain", files.cert)


def _issued_by(ca_file: Path, cert_file: Path) -> bool:
    try:
        authority = x509.load_pem_x509_certificate(ca_file.read_bytes())
        leaf = x509.load_pem_x509_certificate(cert_file.read_bytes())  # the first in the chain
        leaf.verify_directly_issued_by(authority)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return True
