"""Certificates for hosted domains: mail.<domain> from the local CA, unless one was provided."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailhost.tls.authority import CertificateAuthority
from mailhost.tls.contexts import CertificateStore


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
