"""TLS contexts for mailhost's listeners, choosing each certificate by SNI.

Certificates directory layout (what `CertificateAuthority.issue` writes, and
where operators drop their own files, e.g. from another CA):

    <certs_dir>/<hostname>.pem   the leaf certificate, then its chain (PEM)
    <certs_dir>/<hostname>.key   its private key (PEM, unencrypted, mode 0600)

`<hostname>` is lower case ASCII (A-labels for IDNs), e.g. `mail.example.com.pem`.
Every TLS listener (SMTP STARTTLS, SMTPS, POP3 STLS, POP3S) uses
`CertificateStore.server_context()`: a client asking for `mail.example.com`
(RFC 6066 §3 server_name) gets that certificate if both files exist, anyone
else gets the certificate of the configured hostname. A certificate that
appears while the server runs is found on the next handshake for its name;
`reload()` makes replaced (renewed) files take effect.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from mailhost.errors import ConfigError
from mailhost.tls.authority import CertificateFiles, normalise_hostname

logger = logging.getLogger(__name__)


class CertificateStore:
    """The certificates in one directory, as cached server contexts keyed by host name."""

    def __init__(self, certs_dir: Path, default_hostname: str) -> None:
        self.certs_dir = certs_dir
        self.default = CertificateFiles.for_hostname(certs_dir, default_hostname)
        self._default_name = self.default.cert.name.removesuffix(".pem")
        self._contexts: dict[str, ssl.SSLContext] = {}

    def files_for(self, hostname: str) -> CertificateFiles | None:
        """The files for `hostname` if both are present (two stats, nothing read)."""
        name = normalise_hostname(hostname)
        if name is None:
            return None
        files = CertificateFiles.for_hostname(self.certs_dir, name)
        return files if files.cert.exists() and files.key.exists() else None

    def server_context(self) -> ssl.SSLContext:
        """A server context for one listener; raises ConfigError if the default is unusable.

        Reads files: call it at start-up, through `asyncio.to_thread` on a running loop.
        """
        context = _server_context(self.default)
        context.sni_callback = self._on_server_name
        return context

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        """The context whose certificate answers `server_name`: its own, else the default."""
        name = None if server_name is None else normalise_hostname(server_name)
        if name is not None:
            context = self._cached(name)
            if context is not None:
                return context
        context = self._cached(self._default_name)
        if context is None:
            raise ConfigError(f"no usable certificate for {self._default_name} in {self.certs_dir}")
        return context

    def reload(self) -> None:
        """Forget cached contexts so the next handshakes read the files again."""
        self._contexts.clear()

    def forget(self, hostname: str) -> None:
        """Forget one name's context (its files were deleted: its domain was removed)."""
        name = normalise_hostname(hostname)
        if name is not None:
            self._contexts.pop(name, None)

    def _cached(self, name: str) -> ssl.SSLContext | None:
        context = self._contexts.get(name)
        # One stat: files deleted by another process (the CLI removing a domain) stop
        # being served at once, not at the next restart.
        if context is not None and (self.certs_dir / f"{name}.pem").exists():
            return context
        self._contexts.pop(name, None)
        # A miss costs two stats on the handshake path, which is what lets a domain
        # added by another process (the CLI) be served without a restart. Misses are
        # not cached, so the cache only ever holds names that have files.
        files = self.files_for(name)
        if files is None:
            return None
        try:
            context = _server_context(files)
        except ConfigError as exc:
            logger.warning("%s; serving the default certificate instead", exc)
            return None
        self._contexts[name] = context
        return context

    def _on_server_name(
        self, connection: ssl.SSLObject, server_name: str | None, initial: ssl.SSLContext
    ) -> None:
        # OpenSSL calls this for every ClientHello, with None when there is no SNI
        # (e.g. the client connected to an IP address). An exception here would abort
        # the handshake, so a broken default keeps the one loaded at start-up.
        try:
            connection.context = self.context_for(server_name)
        except ConfigError as exc:
            logger.warning("%s; keeping the certificate loaded at start-up", exc)


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts only `ca_file` and checks the server's host name."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # RFC 5280 conformance (key usage, key identifiers) as Python 3.13 asks by default.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _server_context(files: CertificateFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # RFC 8996 retires TLS 1.0 and 1.1.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # RFC 7457 §2.6 (CRIME); RFC 7525 §3.3: no TLS-level compression.
    context.options |= ssl.OP_NO_COMPRESSION
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load certificate {files.cert} with key {files.key}: {exc}"
        ) from exc
    return context
