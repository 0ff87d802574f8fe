"""Two-factor panel logins and app passwords through the services, on a real database.

TOTP codes are computed with pyotp from the secret the set-up shows, at the time of
a clock the test holds, so the previous/next 30 s step and replays are exact. Two
tenants: one can never see, revoke or turn off the other's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import text

from mailhost.errors import (
    AlreadyExists,
    InvalidInput,
    LimitReached,
    NotFound,
    NotPermitted,
    UnknownUser,
)
from mailhost.interfaces import LoginKind
from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.logins import Authenticated, BadCredentials, ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services import app_passwords
from mailhost.services.sessions import Login
from mailhost.services.throttle import Penalties
from mailhost.services.two_factor import SecondStep, TwoFactorService
from mailhost.storage.database.engine import session_factory
from mailhost.storage.database.login_attempts import SqlLoginAttempts

OP = ProviderActor("test")
PW = "correct horse battery"
WEB = ClientInfo("127.0.0.9", "web")
POP3 = ClientInfo("127.0.0.9", "pop3")
T0 = datetime(2030, 6, 1, 12, 0, 10, tzinfo=UTC)  # 10 s into a 30 s step


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Tenant:
    customer: Login
    domain: DomainActor
    user: Login


async def tenant(rt: Runtime, login: str, domain: str) -> Tenant:
    accounts = rt.services.accounts
    customer = await accounts.add_customer(OP, login, "Bulk Hosting", f"boss@{domain}", PW)
    name = DomainName.parse(domain)
    added = await accounts.add_domain(OP, name, login, PW)
    user = await rt.services.users.add_user(OP, EmailAddress.hosted(f"al@{domain}"), PW)
    actor = UserActor(user.id, added.id, customer.id, user.address)
    return Tenant(
        Login("customer", customer.id, CustomerActor(customer.id, login)),
        DomainActor(added.id, customer.id, name),
        Login("user", user.id, actor),
    )


def two_factor(rt: Runtime, clock: Clock, required: tuple[LoginKind, ...] = ()) -> TwoFactorService:
    penalties = Penalties(
        SqlLoginAttempts(session_factory(rt.engine)), max_seconds=0.2, window_seconds=900
    )
    return TwoFactorService(
        rt.units, penalties, rt.web_access.logins, required=required, issuer="mx.test", clock=clock
    )


def code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


async def enrolled(service: TwoFactorService, login: Login, clock: Clock) -> tuple[str, list[str]]:
    """Two-factor on for `login`: its secret and recovery codes (the clock moves a step on)."""
    secret = (await service.start(login)).secret
    codes = await service.confirm(login, code(secret, clock.now), WEB)
    clock.now += timedelta(seconds=30)
    return secret, codes


async def second_step(service: TwoFactorService, login: Login) -> str:
    step = await service.after_password(login)
    assert isinstance(step, SecondStep) and not step.enrol
    return step.token


async def count(rt: Runtime, query: str) -> int:
    async with rt.engine.connect() as connection:
        return int((await connection.execute(text(query))).scalar_one())


async def test_enrolment_then_a_login_needs_a_code(runtime: Runtime) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    assert await service.after_password(acme.customer) == acme.customer  # off: no second step
    started = await service.start(acme.customer)
    assert started.uri.startswith("otpauth://totp/mx.test:acme?secret=")
    assert (await service.status(acme.customer)).pending == started
    with pytest.raises(InvalidInput, match="the code is not correct"):
        await service.confirm(acme.customer, "000000", WEB)
    codes = await service.confirm(acme.customer, code(started.secret, clock.now), WEB)
    assert len(codes) == 10 and len(set(codes)) == 10
    state = await service.status(acme.customer)
    assert state.enabled and state.recovery_left == 10 and state.pending is None
    with pytest.raises(AlreadyExists):
        await service.start(acme.customer)

    clock.now += timedelta(seconds=30)
    token = await second_step(service, acme.customer)
    pending = await service.pending(token)
    assert pending is not None and (pending.kind, pending.name) == ("customer", "acme")
    assert pending.enrol is None
    assert isinstance(await service.finish(token, "123456", WEB), BadCredentials)
    assert await service.finish(token, code(started.secret, clock.now), WEB) == acme.customer


async def test_a_code_is_accepted_once_and_no_earlier_code_after_it(runtime: Runtime) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    secret, _ = await enrolled(service, acme.customer, clock)
    token = await second_step(service, acme.customer)
    now = code(secret, clock.now)
    assert await service.finish(token, now, WEB) == acme.customer
    assert isinstance(await service.finish(token, now, WEB), BadCredentials)  # replayed
    earlier = code(secret, clock.now - timedelta(seconds=30))
    assert isinstance(await service.finish(token, earlier, WEB), BadCredentials)
    later = code(secret, clock.now + timedelta(seconds=30))
    assert await service.finish(token, later, WEB) == acme.customer
    # The next step's code was used early: the current step's codes are spent with it.
    clock.now += timedelta(seconds=29)
    assert isinstance(await service.finish(token, later, WEB), BadCredentials)


async def test_the_previous_and_next_step_are_accepted_and_no_further(runtime: Runtime) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    secret, _ = await enrolled(service, acme.customer, clock)
    clock.now += timedelta(minutes=5)
    token = await second_step(service, acme.customer)
    for refused in (-60, 60):
        typed = code(secret, clock.now + timedelta(seconds=refused))
        assert isinstance(await service.finish(token, typed, WEB), BadCredentials)
    previous = code(secret, clock.now - timedelta(seconds=30))
    assert await service.finish(token, previous, WEB) == acme.customer
    clock.now += timedelta(minutes=5)
    token = await second_step(service, acme.customer)
    following = code(secret, clock.now + timedelta(seconds=30))
    assert await service.finish(token, f" {following[:3]} {following[3:]} ", WEB) == acme.customer


async def test_a_recovery_code_works_once(runtime: Runtime) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    secret, codes = await enrolled(service, acme.customer, clock)
    token = await second_step(service, acme.customer)
    assert await service.finish(token, codes[3].upper().replace("-", " "), WEB) == acme.customer
    assert isinstance(await service.finish(token, codes[3], WEB), BadCredentials)
    assert (await service.status(acme.customer)).recovery_left == 9
    fresh = await service.new_recovery_codes(acme.customer, code(secret, clock.now), WEB)
    assert not set(fresh) & set(codes)
    assert isinstance(await service.finish(token, codes[4], WEB), BadCredentials)
    assert await service.finish(token, fresh[0], WEB) == acme.customer


async def test_a_pending_login_dies_with_time_a_password_change_and_tampering(
    runtime: Runtime,
) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    secret, _ = await enrolled(service, acme.user, clock)
    token = await second_step(service, acme.user)
    kind, subject, expires, nonce, mac = token.split(".")
    for forged in (
        f"user.{subject}.{int(expires) + 600}.{nonce}.{mac}",
        f"domain.{subject}.{expires}.{nonce}.{mac}",
        f"{kind}.{subject}.{expires}.{nonce}.{'0' * 64}",
        "",
        "a.b",
    ):
        assert await service.pending(forged) is None
        with pytest.raises(NotFound, match="log in again"):
            await service.finish(forged, code(secret, clock.now), WEB)
    clock.now += timedelta(minutes=5, seconds=1)
    assert await service.pending(token) is None
    clock.now = T0 + timedelta(seconds=30)
    assert await service.pending(token) is not None
    address = EmailAddress.hosted("al@a.example")
    await runtime.services.users.change_password(OP, address, "another fine passphrase")
    assert await service.pending(token) is None


async def test_a_required_login_must_set_two_factor_up_before_its_session(
    runtime: Runtime,
) -> None:
    clock = Clock()
    service = two_factor(runtime, clock, required=("customer",))
    acme = await tenant(runtime, "acme", "a.example")
    assert await service.after_password(acme.user) == acme.user  # users are not required
    step = await service.after_password(acme.customer)
    assert isinstance(step, SecondStep) and step.enrol
    pending = await service.pending(step.token)
    assert pending is not None and pending.enrol is not None
    again = await service.after_password(acme.customer)  # the same secret until confirmed
    assert isinstance(again, SecondStep) and again.enrol
    repeated = await service.pending(again.token)
    assert repeated is not None and repeated.enrol == pending.enrol
    with pytest.raises(NotPermitted, match="set up two-factor authentication first"):
        await service.finish(step.token, code(pending.enrol.secret, clock.now), WEB)
    assert isinstance(await service.finish_enrolment(step.token, "999999", WEB), BadCredentials)
    done = await service.finish_enrolment(step.token, code(pending.enrol.secret, clock.now), WEB)
    assert not isinstance(done, BadCredentials)
    login, codes = done
    assert login == acme.customer and len(codes) == 10
    with pytest.raises(NotPermitted, match="requires two-factor authentication for customer"):
        await service.turn_off(acme.customer, PW, WEB)
    clock.now += timedelta(seconds=30)
    assert isinstance(await service.after_password(acme.customer), SecondStep)


async def test_turning_off_takes_a_code_a_recovery_code_or_the_password(
    runtime: Runtime,
) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    for proof in ("code", "recovery", "password"):
        secret, codes = await enrolled(service, acme.user, clock)
        with pytest.raises(InvalidInput, match="neither a current code"):
            await service.turn_off(acme.user, "not the password", WEB)
        given = {"code": code(secret, clock.now), "recovery": codes[0], "password": PW}[proof]
        await service.turn_off(acme.user, given, WEB)
        assert not (await service.status(acme.user)).enabled
        assert await service.after_password(acme.user) == acme.user
        clock.now += timedelta(seconds=30)


async def test_app_passwords_open_mail_and_never_the_panel(runtime: Runtime) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    user = acme.user.actor
    assert isinstance(user, UserActor)
    auth = runtime.services.authentication
    record, secret = await runtime.web_access.app_passwords.create(user, user.address, " Phone ")
    assert record.name == "Phone" and len(secret) == 19 and secret.count(" ") == 3
    with pytest.raises(AlreadyExists, match="already has an app password 'Phone'"):
        await runtime.web_access.app_passwords.create(user, user.address, "Phone")
    for typed in (secret, secret.replace(" ", ""), secret.upper().replace(" ", "-")):
        outcome = await auth.authenticate("al@a.example", typed, POP3)
        assert isinstance(outcome, Authenticated) and outcome.login.user_id == user.user_id
    assert isinstance(await auth.authenticate("al@a.example", secret, WEB), BadCredentials)
    assert isinstance(await auth.authenticate("al@a.example", PW, POP3), Authenticated)
    (listed,) = await runtime.web_access.app_passwords.app_passwords(user, user.address)
    assert listed.last_used_at is not None and listed.last_used_address == "127.0.0.9"

    await enrolled(service, acme.user, clock)
    # Two-factor on: the account password opens the panel (then a code), mail only by app passwords.
    assert isinstance(await auth.authenticate("al@a.example", PW, POP3), BadCredentials)
    assert isinstance(await auth.authenticate("al@a.example", PW, WEB), Authenticated)
    assert isinstance(await auth.authenticate("al@a.example", secret, POP3), Authenticated)
    history = await SqlLoginAttempts(session_factory(runtime.engine)).history(
        "user", user.user_id, 20
    )
    assert any(line.app_password == "Phone" and line.success for line in history)
    assert any(not line.success and line.service == "pop3" for line in history)

    # Revoked: refused at once, although the success was remembered a moment ago.
    assert await runtime.web_access.app_passwords.revoke(user, user.address, record.id) == "Phone"
    assert isinstance(await auth.authenticate("al@a.example", secret, POP3), BadCredentials)


async def test_only_the_user_makes_app_passwords_and_only_so_many(runtime: Runtime) -> None:
    acme = await tenant(runtime, "acme", "a.example")
    user = acme.user.actor
    assert isinstance(user, UserActor)
    service = runtime.web_access.app_passwords
    with pytest.raises(NotPermitted, match="only the user may create app passwords"):
        await service.create(acme.domain, user.address, "Phone")
    for number in range(app_passwords.MAX_APP_PASSWORDS):
        await service.create(user, user.address, f"device {number}")
    with pytest.raises(LimitReached, match="may hold 20 app passwords; revoke one first"):
        await service.create(user, user.address, "one more")
    with pytest.raises(InvalidInput, match="1 to 100 characters"):
        await service.create(user, user.address, "   ")


async def test_one_tenant_never_sees_or_changes_anothers_app_passwords_or_two_factor(
    runtime: Runtime,
) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    other = await tenant(runtime, "other", "b.example")
    al = acme.user.actor
    assert isinstance(al, UserActor)
    record, _ = await runtime.web_access.app_passwords.create(al, al.address, "Phone")
    await enrolled(service, acme.user, clock)
    passwords = runtime.web_access.app_passwords
    assert await service.user_enabled(acme.domain, al.address)
    for intruder in (other.domain, other.customer.actor, other.user.actor):
        with pytest.raises(UnknownUser, match="user al@a.example does not exist"):
            await passwords.app_passwords(intruder, al.address)
        with pytest.raises(UnknownUser, match="user al@a.example does not exist"):
            await passwords.revoke(intruder, al.address, record.id)
        with pytest.raises(UnknownUser, match="user al@a.example does not exist"):
            await service.user_enabled(intruder, al.address)
        with pytest.raises(UnknownUser, match="user al@a.example does not exist"):
            await service.turn_off_for(intruder, "user", str(al.address))
    # Another user's app password, named by id under one's own address, is not one's own.
    bo = other.user.actor
    assert isinstance(bo, UserActor)
    with pytest.raises(NotFound, match="al@b.example has no app password"):
        await passwords.revoke(bo, bo.address, record.id)
    # The user's own domain manager may turn it off (a lost phone), the user may not this way.
    with pytest.raises(NotPermitted):
        await service.turn_off_for(al, "user", str(al.address))
    await service.turn_off_for(acme.domain, "user", str(al.address))
    assert not await service.user_enabled(al, al.address)
    assert len(await passwords.app_passwords(acme.customer.actor, al.address)) == 1


async def test_removing_a_user_removes_its_app_passwords_and_two_factor(
    runtime: Runtime,
) -> None:
    clock = Clock()
    service = two_factor(runtime, clock)
    acme = await tenant(runtime, "acme", "a.example")
    al = acme.user.actor
    assert isinstance(al, UserActor)
    await runtime.web_access.app_passwords.create(al, al.address, "Phone")
    await enrolled(service, acme.user, clock)
    await enrolled(service, acme.customer, clock)
    await runtime.services.users.remove_user(acme.domain, al.address)
    assert await count(runtime, "SELECT count(*) FROM app_passwords") == 0
    assert await count(runtime, "SELECT count(*) FROM two_factor_enrolments") == 1  # acme's own
    assert await count(runtime, "SELECT count(*) FROM recovery_codes") == 10
    # And by the foreign keys alone, whatever path deletes the row.
    again = await runtime.services.users.add_user(OP, al.address, PW)
    again_login = Login(
        "user", again.id, UserActor(again.id, al.domain_id, al.customer_id, al.address)
    )
    await runtime.web_access.app_passwords.create(again_login.actor, al.address, "Phone")
    await enrolled(service, again_login, clock)
    async with runtime.engine.begin() as connection:
        await connection.execute(text("DELETE FROM domain_users WHERE id = :id"), {"id": again.id})
    assert await count(runtime, "SELECT count(*) FROM app_passwords") == 0
    assert await count(runtime, "SELECT count(*) FROM two_factor_enrolments") == 1
    assert await count(runtime, "SELECT count(*) FROM recovery_codes") == 10
