"""Two-factor panel logins (TOTP, RFC 6238): enrolment, recovery codes, and the second step.

After a right password, a login with two-factor on gets no session yet but a pending
login: a token, valid for PENDING_LIFETIME, signed with a key only the database holds
(the login's TOTP secret and its password hash), so that any node can check it and a
password change or a new enrolment voids it. The session is opened once a code (or a
recovery code) is accepted. A login whose kind `[auth] require_two_factor` names and
that has not enrolled gets the same pending login, for the enrolment page only.

Every code tried counts with the login penalties (services/throttle.py) under the
login's account with CODE_SUFFIX: apart from the password's, so that a right password
does not forgive wrong codes. Each code is accepted once (RFC 6238 §5.2), recovery
codes too; API tokens are not logins and are not affected.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailhost.errors import AlreadyExists, InvalidInput, NotFound, NotPermitted
from mailhost.interfaces import LoginKind, UnitOfWork, UnitOfWorkFactory
from mailhost.model.actors import Actor
from mailhost.model.logins import BadCredentials, ClientInfo
from mailhost.model.names import EmailAddress
from mailhost.model.records import TwoFactorRecord
from mailhost.model.two_factor import (
    grouped_secret,
    looks_like_code,
    matching_step,
    new_recovery_codes,
    new_secret,
    normalised_recovery_code,
    pending_signature,
    provisioning_uri,
    recovery_digest,
)
from mailhost.services import access
from mailhost.services.logins import LoginService, login_key
from mailhost.services.sessions import Login
from mailhost.services.subjects import bound_login
from mailhost.services.throttle import Penalties
from mailhost.services.usage import utc_now

log = logging.getLogger("mailhost.auth")

PENDING_LIFETIME = timedelta(minutes=5)
CODE_SUFFIX = "/code"
_KINDS: dict[str, LoginKind] = {
    "provider": "provider",
    "customer": "customer",
    "domain": "domain",
    "user": "user",
}
_MAX_TOKEN = 256


@dataclass(frozen=True, slots=True)
class SecondStep:
    """A right password; the login must still give a code (or, `enrol`, enrol first)."""

    token: str
    enrol: bool


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What an authenticator app needs: the secret as a QR code's URI and as text."""

    secret: str
    uri: str

    @property
    def grouped(self) -> str:
        return grouped_secret(self.secret)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A pending login's token, checked: whose it is and what it waits for."""

    kind: LoginKind
    subject_id: int
    name: str
    enrol: Enrolment | None  # the secret to show when the login must enrol first


@dataclass(frozen=True, slots=True)
class TwoFactorStatus:
    enabled: bool
    required: bool  # by `[auth] require_two_factor`: it cannot be turned off
    recovery_left: int
    pending: Enrolment | None  # started, not confirmed yet


class TwoFactorService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        penalties: Penalties,
        logins: LoginService,
        *,
        required: Collection[LoginKind],
        issuer: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._units = units
        self._penalties = penalties
        self._logins = logins
        self._required = frozenset(required)
        self._issuer = issuer
        self._clock = clock

    def required_for(self, kind: LoginKind) -> bool:
        return kind in self._required

    async def after_password(self, login: Login) -> Login | SecondStep:
        """The session may open (`login`), or a code or an enrolment is owed first."""
        async with self._units() as uow:
            found = await uow.two_factor.of_login(login.kind, login.subject_id)
            if found is not None and found.subject != login.subject:
                found = None  # left by a login that had this row before: never trusted
            if found is None or not found.enabled:
                if not self.required_for(login.kind):
                    return login
                if found is None:
                    await uow.two_factor.start(
                        login.kind, login.subject_id, login.subject, new_secret(), self._clock()
                    )
                    found = await uow.two_factor.of_login(login.kind, login.subject_id)
                    assert found is not None
                    await uow.commit()
            credential = await uow.web_access.credential_by_id(login.kind, login.subject_id)
        if credential is None:
            raise NotFound(f"{login.kind} login {login.subject} does not exist")
        expires = int((self._clock() + PENDING_LIFETIME).timestamp())
        payload = f"{login.kind}.{login.subject_id}.{expires}.{secrets.token_urlsafe(12)}"
        mac = pending_signature(found.secret, credential.password_hash, credential.login, payload)
        return SecondStep(f"{payload}.{mac}", enrol=not found.enabled)

    async def pending(self, token: str) -> PendingLogin | None:
        """Whose pending login `token` is; None if it is not one (any more)."""
        async with self._units() as uow:
            checked = await self._checked(uow, token)
        if checked is None:
            return None
        kind, subject_id, name, found = checked
        enrol = None if found.enabled else self._enrolment(found.secret, name)
        return PendingLogin(kind, subject_id, name, enrol)

    async def finish(self, token: str, code: str, client: ClientInfo) -> Login | BadCredentials:
        """The session's login once `code` (or a recovery code) is right; BadCredentials,
        after the penalty, if it is not. NotFound if the token is not a pending login."""
        pending = await self._pending_or_fail(token)
        if pending.enrol is not None:
            raise NotPermitted("this login must set up two-factor authentication first")
        if not await self._accept(pending.kind, pending.subject_id, pending.name, code, client):
            return BadCredentials()
        return await self._session_login(pending)

    async def finish_enrolment(
        self, token: str, code: str, client: ClientInfo
    ) -> tuple[Login, list[str]] | BadCredentials:
        """A login made to enrol: its first code turns two-factor on; the session's login
        and the recovery codes (to be shown once) then."""
        pending = await self._pending_or_fail(token)
        if pending.enrol is None:
            raise NotPermitted("two-factor authentication is set up already: give a code")
        codes = await self._confirm(pending.kind, pending.subject_id, pending.name, code, client)
        if codes is None:
            return BadCredentials()
        outcome = await self._session_login(pending)
        return outcome if isinstance(outcome, BadCredentials) else (outcome, codes)

    async def status(self, login: Login) -> TwoFactorStatus:
        found = await self._own(login)
        required = self.required_for(login.kind)
        if found is None:
            return TwoFactorStatus(False, required, 0, None)
        pending = None if found.enabled else self._enrolment(found.secret, login.subject)
        return TwoFactorStatus(found.enabled, required, found.recovery_left, pending)

    async def start(self, login: Login) -> Enrolment:
        """A new secret to enrol with (replacing one not confirmed yet)."""
        async with self._units() as uow:
            await self._bound(uow, login)
            found = await uow.two_factor.of_login(login.kind, login.subject_id)
            if found is not None and found.enabled and found.subject == login.subject:
                raise AlreadyExists(f"two-factor authentication is on for {login.subject}")
            secret = new_secret()
            await uow.two_factor.start(
                login.kind, login.subject_id, login.subject, secret, self._clock()
            )
            await uow.commit()
        return self._enrolment(secret, login.subject)

    async def confirm(self, login: Login, code: str, client: ClientInfo) -> list[str]:
        """Turn two-factor on with the app's first code; the recovery codes, shown once."""
        codes = await self._confirm(login.kind, login.subject_id, login.subject, code, client)
        if codes is None:
            raise InvalidInput("the code is not correct: type the 6 digits your app shows now")
        await self._audit(login.actor, "two_factor.on", login.subject)
        return codes

    async def new_recovery_codes(self, login: Login, code: str, client: ClientInfo) -> list[str]:
        """Replace the recovery codes, given a current code; the new ones, shown once."""
        found = await self._own(login)
        if found is None or not found.enabled:
            raise NotFound(f"two-factor authentication is off for {login.subject}")
        if not looks_like_code(code) or not await self._accept(
            login.kind, login.subject_id, login.subject, code, client
        ):
            raise InvalidInput("the code is not correct: type the 6 digits your app shows now")
        codes = new_recovery_codes()
        async with self._units() as uow:
            await uow.two_factor.replace_recovery_codes(
                found.id, [recovery_digest(found.secret, c) for c in codes]
            )
            await uow.commit()
        await self._audit(login.actor, "two_factor.recovery_codes", login.subject)
        return codes

    async def turn_off(self, login: Login, proof: str, client: ClientInfo) -> None:
        """Turn two-factor off, given a current code, a recovery code or the password."""
        if self.required_for(login.kind):
            raise NotPermitted(
                f"this server requires two-factor authentication for {login.kind} logins"
            )
        found = await self._own(login)
        if found is None:
            raise NotFound(f"two-factor authentication is off for {login.subject}")
        if found.enabled and not await self._proven(login, proof, client):
            raise InvalidInput("neither a current code, a recovery code nor the password")
        async with self._units() as uow:
            await uow.two_factor.remove(login.kind, login.subject_id)
            await uow.commit()
        await self._audit(login.actor, "two_factor.off", login.subject)

    async def user_enabled(self, actor: Actor, address: EmailAddress) -> bool:
        """Whether a user (seen by `actor`: the user or its managers) has two-factor on."""
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            found = await uow.two_factor.of_login("user", user.id)
        return found is not None and found.enabled and found.subject == str(user.address)

    async def turn_off_for(self, actor: Actor, kind: LoginKind, name: str) -> None:
        """Turn another login's two-factor off (its phone and recovery codes are lost): a
        user's by its managers or the provider, any other login's by the provider."""
        async with self._units() as uow:
            customer_id = None
            if kind == "user":
                address = EmailAddress.hosted(name)
                user = await uow.directory.user_by_address(address)
                subject_id = access.managed_user(actor, user, address).id
                customer_id = access.audit_customer(actor)
            else:
                access.require_provider(actor, "turn off two-factor authentication of a login")
                key = login_key(kind, name)
                found = None if key is None else await uow.web_access.credential(kind, key)
                if found is None:
                    raise NotFound(f"{kind} login {name!r} does not exist")
                subject_id = found.subject_id
                customer_id = subject_id if kind == "customer" else None
            await uow.two_factor.remove(kind, subject_id)
            await uow.audit.record(str(actor), "two_factor.off", f"{kind} {name}", customer_id)
            await uow.commit()

    async def _proven(self, login: Login, proof: str, client: ClientInfo) -> bool:
        if looks_like_code(proof) or normalised_recovery_code(proof) is not None:
            return await self._accept(login.kind, login.subject_id, login.subject, proof, client)
        again = await self._logins.login(login.kind, login.subject, proof, client)
        return isinstance(again, Login) and again.subject_id == login.subject_id

    async def _accept(
        self, kind: LoginKind, subject_id: int, name: str, code: str, client: ClientInfo
    ) -> bool:
        """Whether `code` is an unused TOTP or recovery code of the login's enrolment,
        spending it; counted with the penalties either way."""
        async with self._penalties.attempt(kind, name + CODE_SUFFIX, client) as attempt:
            async with self._units() as uow:
                found = await uow.two_factor.of_login(kind, subject_id)
                used = None
                if found is not None and found.enabled and found.subject == name:
                    used = await _spend(uow, found, code, self._clock())
                    await uow.commit()
            if used is None:
                await attempt.failed(subject_id, "wrong two-factor code")
                log.warning("%s: two-factor code refused", _attempt(kind, name, client))
                return False
            await attempt.succeeded(subject_id, detail=used)
        log.info("%s: %s accepted", _attempt(kind, name, client), used)
        return True

    async def _confirm(
        self, kind: LoginKind, subject_id: int, name: str, code: str, client: ClientInfo
    ) -> list[str] | None:
        """Turn a pending enrolment on with its first code; None if the code is wrong."""
        codes = new_recovery_codes()
        async with self._penalties.attempt(kind, name + CODE_SUFFIX, client) as attempt:
            async with self._units() as uow:
                found = await uow.two_factor.of_login(kind, subject_id)
                step = None
                if found is not None and not found.enabled and found.subject == name:
                    step = matching_step(found.secret, code, self._clock(), None)
                if found is not None and step is not None:
                    digests = [recovery_digest(found.secret, c) for c in codes]
                    if await uow.two_factor.confirm(found.id, step, self._clock(), digests):
                        await uow.commit()
                    else:
                        step = None
            if step is None:
                await attempt.failed(subject_id, "wrong two-factor code")
                return None
            await attempt.succeeded(subject_id, detail="two-factor set up")
        log.info("%s: two-factor set up", _attempt(kind, name, client))
        return codes

    async def _checked(
        self, uow: UnitOfWork, token: str
    ) -> tuple[LoginKind, int, str, TwoFactorRecord] | None:
        """The login a token was signed for, still enabled, and its enrolment."""
        parts = token.split(".") if 0 < len(token) <= _MAX_TOKEN and token.isascii() else []
        if len(parts) != 5 or parts[0] not in _KINDS or not parts[1].isdigit():
            return None
        kind, subject_id, expires = _KINDS[parts[0]], int(parts[1]), parts[2]
        if not expires.isdigit() or int(expires) < self._clock().timestamp():
            return None
        found = await uow.two_factor.of_login(kind, subject_id)
        credential = await uow.web_access.credential_by_id(kind, subject_id)
        if found is None or credential is None or found.subject != credential.login:
            return None
        if not found.enabled and not self.required_for(kind):
            return None
        payload = ".".join(parts[:4])
        expected = pending_signature(
            found.secret, credential.password_hash, credential.login, payload
        )
        if not hmac.compare_digest(expected, parts[4]) or not credential.enabled:
            return None
        return kind, subject_id, credential.login, found

    async def _pending_or_fail(self, token: str) -> PendingLogin:
        pending = await self.pending(token)
        if pending is None:
            raise NotFound("this login has expired: log in again")
        return pending

    async def _session_login(self, pending: PendingLogin) -> Login | BadCredentials:
        async with self._units() as uow:
            actor = await uow.web_access.actor_for(pending.kind, pending.subject_id)
        return BadCredentials() if actor is None else Login(pending.kind, pending.subject_id, actor)

    async def _own(self, login: Login) -> TwoFactorRecord | None:
        """The session's login's enrolment (never one left by an earlier holder of its row)."""
        async with self._units() as uow:
            await self._bound(uow, login)
            found = await uow.two_factor.of_login(login.kind, login.subject_id)
        return found if found is not None and found.subject == login.subject else None

    @staticmethod
    async def _bound(uow: UnitOfWork, login: Login) -> None:
        if await bound_login(uow, login.kind, login.subject_id, login.subject) is None:
            raise NotFound(f"{login.kind} login {login.subject} does not exist")

    def _enrolment(self, secret: str, name: str) -> Enrolment:
        return Enrolment(secret, provisioning_uri(secret, name, self._issuer))

    async def _audit(self, actor: Actor, action: str, target: str) -> None:
        async with self._units() as uow:
            await uow.audit.record(str(actor), action, target, access.audit_customer(actor))
            await uow.commit()


async def _spend(uow: UnitOfWork, found: TwoFactorRecord, code: str, now: datetime) -> str | None:
    """Spend `code` of the enrolment; what it was ("two-factor code", "recovery code")."""
    step = matching_step(found.secret, code, now, found.last_step)
    if step is not None:
        return "two-factor code" if await uow.two_factor.use_step(found.id, step) else None
    recovery = normalised_recovery_code(code)
    if recovery is None:
        return None
    spent = await uow.two_factor.use_recovery_code(
        found.id, recovery_digest(found.secret, recovery), now
    )
    return "recovery code" if spent else None


def _attempt(kind: LoginKind, name: str, client: ClientInfo) -> str:
    return f"login {kind}:{name!r} from {client.address} via {client.service}"
