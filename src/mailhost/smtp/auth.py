"""SMTP AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) for one submission connection.

aiosmtpd finds `auth_<MECHANISM>` methods on the handler and calls them with
the server protocol and the AUTH arguments; ours are async, so the password is
checked by the shared Authenticator (argon2 off the loop, penalties) instead of
aiosmtpd's synchronous `authenticator` callback.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Protocol

from aiosmtpd.smtp import AuthResult

from mailhost.interfaces import Authenticator
from mailhost.model.logins import Authenticated, ClientInfo
from mailhost.model.records import LoginRecord
from mailhost.smtp import replies

# RFC 4954 §4: "=" is an empty initial response.
_EMPTY_RESPONSE = "="
# Logins are addresses (at most 254 octets) and passwords are bounded, so longer input
# is refused before it reaches argon2.
MAX_CREDENTIAL = 1024


class AuthSession(Protocol):
    """The parts of aiosmtpd's Session that record a login."""

    peer: object
    authenticated: bool | None
    auth_data: object


class AuthServer(Protocol):
    """The parts of aiosmtpd's SMTP protocol the AUTH mechanisms use."""

    session: AuthSession

    async def push(self, status: str) -> None: ...
    async def challenge_auth(
        self, challenge: str | bytes, encode_to_b64: bool = True, log_client_response: bool = False
    ) -> object: ...


class Sasl:
    """The mechanisms of one connection, and the login they proved (None until then)."""

    def __init__(self, authenticator: Authenticator, client_ip: str) -> None:
        self._authenticator = authenticator
        self._client_ip = client_ip
        self.login: LoginRecord | None = None

    async def plain(self, server: AuthServer, args: list[str]) -> AuthResult:
        """RFC 4616: [authzid] NUL authcid NUL passwd, as the initial response or after 334."""
        response = await _response(server, args[1] if len(args) > 1 else None)
        if response is None:
            return AuthResult(success=False, handled=True)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await server.push(replies.AUTH_SYNTAX.render())
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:
            # Acting as another user (RFC 4616 §2 authzid) is never allowed here.
            return _refused()
        return await self._authenticate(server, login, password)

    async def login_mechanism(self, server: AuthServer, args: list[str]) -> AuthResult:
        """The LOGIN mechanism: user name, then password, each base64 after a 334 prompt."""
        login = await _response(server, args[1] if len(args) > 1 else None, b"Username:")
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await _response(server, None, b"Password:")
        if password is None:
            return AuthResult(success=False, handled=True)
        return await self._authenticate(server, login, password)

    async def _authenticate(self, server: AuthServer, login: bytes, password: bytes) -> AuthResult:
        if len(login) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
            return _refused()
        try:
            login_text, password_text = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:  # RFC 4616 §2: UTF-8
            await server.push(replies.AUTH_SYNTAX.render())
            return AuthResult(success=False, handled=True)
        client = ClientInfo(self._client_ip, "submission")
        outcome = await self._authenticator.authenticate(login_text, password_text, client)
        if isinstance(outcome, Authenticated):
            self.login = outcome.login
            # Recorded and answered here: aiosmtpd's own success path sets the deprecated
            # Session.login_data, which logs a warning for every login.
            server.session.authenticated = True
            server.session.auth_data = outcome.login
            await server.push(replies.AUTH_SUCCEEDED.render())
            return AuthResult(success=False, handled=True)
        return _refused()


async def _response(server: AuthServer, initial: str | None, prompt: bytes = b"") -> bytes | None:
    """The client's decoded SASL response: the initial one, or the answer to a 334 prompt.

    None when aiosmtpd or we already answered (the client sent `*`, or bad base64).
    """
    if initial is None:
        answer = await server.challenge_auth(prompt)
        return answer if isinstance(answer, bytes) else None  # else aiosmtpd's MISSING
    if initial == _EMPTY_RESPONSE:
        return b""
    try:
        return b64decode(initial, validate=True)
    except (binascii.Error, ValueError):
        await server.push(replies.AUTH_SYNTAX.render())
        return None


def _refused() -> AuthResult:
    return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID.render())
