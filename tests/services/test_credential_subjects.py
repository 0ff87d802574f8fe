"""Panel sessions, API tokens and reset links die with their login and never act for another.

Two customers on one real database: credentials of removed domains and users are
gone in the removing transaction, ids are not handed out again, a credential row
pointed at another login is refused (and deleted), and a password change ends
the login's other sessions and cancels its reset links.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import text

from mailhost.errors import NotFound
from mailhost.interfaces import LoginKind
from mailhost.model.actors import CustomerActor, DomainActor, ProviderActor, UserActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login

OP = ProviderActor("test")
PW = "correct horse battery"
NEW = "a completely new passphrase"
CLIENT = ClientInfo("127.0.0.7", "test")


@dataclass(frozen=True)
class Tenant:
    customer: CustomerActor
    domain: DomainActor
    user: UserActor


async def tenant(rt: Runtime, login: str, domain: str, user: str = "zed") -> Tenant:
    accounts = rt.services.accounts
    customer = await accounts.add_customer(OP, login, "Bulk Hosting", f"boss@{domain}", PW)
    name = DomainName.parse(domain)
    added = await accounts.add_domain(OP, name, login, PW)
    address = EmailAddress.hosted(f"{user}@{domain}")
    # The recovery address is the reset links' destination: a user of no tenant here.
    made = await rt.services.users.add_user(OP, address, PW, recovery="help@elsewhere.example")
    return Tenant(
        CustomerActor(customer.id, login),
        DomainActor(added.id, customer.id, name),
        UserActor(made.id, added.id, customer.id, address),
    )


async def session_of(rt: Runtime, actor: DomainActor | UserActor) -> str:
    if isinstance(actor, DomainActor):
        login = Login("domain", actor.domain_id, actor)
    else:
        login = Login("user", actor.user_id, actor)
    token, _ = await rt.web_access.sessions.open(login)
    return token


async def reset_link(rt: Runtime, kind: LoginKind, login: str) -> str:
    """Request a reset and keep the token the link was built from (the mail is real)."""
    made: list[str] = []

    def link(token: str) -> str:
        made.append(token)
        return f"http://panel.test/reset/{token}"

    await rt.web_access.resets.request(kind, login, link, CLIENT)
    (token,) = made
    return token


async def count(rt: Runtime, query: str, **values: object) -> int:
    async with rt.engine.connect() as connection:
        return int((await connection.execute(text(query), values)).scalar_one())


async def test_removing_a_domain_ends_every_credential_of_it_and_its_users(
    runtime: Runtime,
) -> None:
    rt = runtime
    acme = await tenant(rt, "acme", "old.example")
    _, secret = await rt.web_access.api_tokens.create(acme.domain, "deploy")
    domain_session = await session_of(rt, acme.domain)
    user_session = await session_of(rt, acme.user)
    link = await reset_link(rt, "user", "zed@old.example")
    assert await rt.web_access.api_tokens.authenticate(secret) == acme.domain

    await rt.services.accounts.remove_domain(acme.customer, acme.domain.domain)
    for table in ("web_sessions", "api_tokens", "password_resets"):
        assert await count(rt, f"SELECT count(*) FROM {table}") == 0

    other = await tenant(rt, "other", "new.example")
    # Ids are never handed out again, so nothing left over could name the new rows.
    assert other.domain.domain_id > acme.domain.domain_id
    assert other.user.user_id > acme.user.user_id
    assert await rt.web_access.api_tokens.authenticate(secret) is None
    assert await rt.web_access.sessions.resolve(domain_session) is None
    assert await rt.web_access.sessions.resolve(user_session) is None
    with pytest.raises(NotFound, match="this reset link is not valid"):
        await rt.web_access.resets.check(link)


async def test_removing_a_user_ends_its_sessions_and_reset_links_only(runtime: Runtime) -> None:
    rt = runtime
    acme = await tenant(rt, "acme", "a.example")
    bob = await rt.services.users.add_user(OP, EmailAddress.hosted("bob@a.example"), PW)
    bob_actor = UserActor(bob.id, bob.domain_id, bob.customer_id, bob.address)
    zed_session, bob_session = await session_of(rt, acme.user), await session_of(rt, bob_actor)
    link = await reset_link(rt, "user", "zed@a.example")

    await rt.services.users.remove_user(acme.domain, acme.user.address)
    again = await rt.services.users.add_user(OP, acme.user.address, PW)
    assert again.id > acme.user.user_id
    assert await rt.web_access.sessions.resolve(zed_session) is None
    with pytest.raises(NotFound):
        await rt.web_access.resets.check(link)
    kept = await rt.web_access.sessions.resolve(bob_session)
    assert kept is not None and kept.actor == bob_actor


async def test_a_credential_pointed_at_another_login_is_refused_and_deleted(
    runtime: Runtime,
) -> None:
    """As after a restored backup or a bug: the row's key names another tenant's login."""
    rt = runtime
    acme = await tenant(rt, "acme", "a.example")
    other = await tenant(rt, "other", "b.example")
    _, secret = await rt.web_access.api_tokens.create(acme.domain, "deploy")
    session = await session_of(rt, acme.user)
    link = await reset_link(rt, "user", "zed@a.example")
    async with rt.engine.begin() as connection:
        for table, column, mine, theirs in (
            ("api_tokens", "domain_id", acme.domain.domain_id, other.domain.domain_id),
            ("web_sessions", "user_id", acme.user.user_id, other.user.user_id),
            ("password_resets", "user_id", acme.user.user_id, other.user.user_id),
        ):
            await connection.execute(
                text(f"UPDATE {table} SET {column} = :theirs WHERE {column} = :mine"),
                {"theirs": theirs, "mine": mine},
            )

    assert await rt.web_access.api_tokens.authenticate(secret) is None
    assert await rt.web_access.sessions.resolve(session) is None
    with pytest.raises(NotFound):
        await rt.web_access.resets.complete(link, NEW)
    for table in ("web_sessions", "api_tokens", "password_resets"):
        assert await count(rt, f"SELECT count(*) FROM {table}") == 0
    assert await rt.web_access.api_tokens.tokens(other.domain) == []
    # The other tenant's password is untouched, and its own logins still work.
    outcome = await rt.web_access.logins.login("user", "zed@b.example", PW, CLIENT)
    assert isinstance(outcome, Login) and outcome.actor == other.user


async def test_a_manager_changing_a_password_ends_the_users_sessions_and_links(
    runtime: Runtime,
) -> None:
    rt = runtime
    acme = await tenant(rt, "acme", "a.example")
    manager = await session_of(rt, acme.domain)
    first, second = await session_of(rt, acme.user), await session_of(rt, acme.user)
    link = await reset_link(rt, "user", "zed@a.example")

    # The manager's own session is passed as "current": it is not the user's, so no
    # session of the user survives.
    await rt.services.users.change_password(
        acme.domain, acme.user.address, NEW, current_session=manager
    )
    assert await rt.web_access.sessions.resolve(first) is None
    assert await rt.web_access.sessions.resolve(second) is None
    with pytest.raises(NotFound):
        await rt.web_access.resets.check(link)
    assert await rt.web_access.sessions.resolve(manager) is not None
    (entry, *_) = await rt.web_access.audit.entries(acme.customer, 1)
    assert entry.action == "user.passwd"


async def test_a_user_changing_their_password_keeps_only_the_current_session(
    runtime: Runtime,
) -> None:
    rt = runtime
    acme = await tenant(rt, "acme", "a.example")
    current, other = await session_of(rt, acme.user), await session_of(rt, acme.user)
    link = await reset_link(rt, "user", "zed@a.example")

    await rt.services.users.change_password(
        acme.user, acme.user.address, NEW, current_session=current
    )
    assert await rt.web_access.sessions.resolve(current) is not None
    assert await rt.web_access.sessions.resolve(other) is None
    with pytest.raises(NotFound):
        await rt.web_access.resets.check(link)


async def test_completing_a_reset_cancels_the_logins_other_links(runtime: Runtime) -> None:
    rt = runtime
    acme = await tenant(rt, "acme", "a.example")
    used = await reset_link(rt, "domain", "a.example")
    spare = await reset_link(rt, "domain", "a.example")
    session = await session_of(rt, acme.domain)
    zed = await reset_link(rt, "user", "zed@a.example")

    await rt.web_access.resets.complete(used, NEW)
    with pytest.raises(NotFound):
        await rt.web_access.resets.check(spare)
    assert await rt.web_access.sessions.resolve(session) is None
    # Another login's link is its own business.
    assert (await rt.web_access.resets.check(zed)).login == "zed@a.example"


async def test_the_database_itself_deletes_credentials_with_their_login(
    runtime: Runtime,
) -> None:
    """The foreign keys cascade on both databases, whatever path removes the row."""
    rt = runtime
    acme = await tenant(rt, "acme", "a.example")
    lone = await rt.services.accounts.add_customer(OP, "lone", "Bulk Hosting", "l@x.example", PW)
    lone_actor = CustomerActor(lone.id, "lone")
    await rt.web_access.admins.add(OP, "root", "root@x.example", PW)
    await rt.web_access.api_tokens.create(acme.domain, "deploy")
    await rt.web_access.api_tokens.create(lone_actor, "billing")
    await rt.web_access.api_tokens.create(ProviderActor("root"), "ops")
    await rt.web_access.sessions.open(Login("customer", lone.id, lone_actor))
    await session_of(rt, acme.user)
    await reset_link(rt, "user", "zed@a.example")
    async with rt.engine.begin() as connection:
        for statement in (
            "DELETE FROM domain_users WHERE id = :user",
            "DELETE FROM domains WHERE id = :domain",
            "DELETE FROM customers WHERE id = :lone",
            "DELETE FROM provider_admins WHERE login = 'root'",
        ):
            await connection.execute(
                text(statement),
                {"user": acme.user.user_id, "domain": acme.domain.domain_id, "lone": lone.id},
            )
    for table in ("web_sessions", "api_tokens", "password_resets"):
        assert await count(rt, f"SELECT count(*) FROM {table}") == 0
