"""The REST API: every endpoint, its errors as JSON, pagination, and tenant isolation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from mailhost.errors import NotPermitted
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
from mailhost.model.names import DomainName
from mailhost.model.plans import PlanLimits
from mailhost.web.api.schemas import (
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    DomainIn,
    DomainOut,
    DomainPatch,
    ErrorOut,
    FacilitiesIn,
    MailboxIn,
    MailboxOut,
    MailboxPatch,
    PlanIn,
    PlanOut,
    SmtpAccountIn,
    SmtpAccountOut,
    SmtpAccountPatch,
    UsageOut,
    UserIn,
    UserOut,
)
from tests.web.conftest import OP, PW, World

A = DomainName.parse("a.example")
B = DomainName.parse("b.example")


@dataclass(frozen=True)
class Tokens:
    provider: str
    acme: str
    other: str
    domain_a: str
    domain_b: str


async def token_for(world: World, actor: Actor) -> str:
    _, secret = await world.runtime.web_access.api_tokens.create(actor, "tests")
    return secret


@pytest.fixture
async def tokens(world: World) -> Tokens:
    rt = world.runtime
    acme = await rt.services.accounts.customer(OP, "acme")
    other = await rt.services.accounts.customer(OP, "other")
    a = await rt.services.accounts.domain(OP, A)
    b = await rt.services.accounts.domain(OP, B)
    return Tokens(
        provider=await token_for(world, ProviderActor("root")),
        acme=await token_for(world, CustomerActor(acme.id, acme.login)),
        other=await token_for(world, CustomerActor(other.id, other.login)),
        domain_a=await token_for(world, DomainActor(a.id, a.customer_id, a.name)),
        domain_b=await token_for(world, DomainActor(b.id, b.customer_id, b.name)),
    )


class Api:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        return await self._client.request(
            method, f"/api/v1{path}", json=body, headers=self._headers
        )

    async def ok(self, method: str, path: str, body: object = None, status: int = 200) -> Any:
        response = await self.call(method, path, body)
        assert response.status_code == status, response.text
        return None if status == 204 else response.json()

    async def refused(
        self, method: str, path: str, body: object = None, *, status: int, code: str
    ) -> str:
        response = await self.call(method, path, body)
        assert response.status_code == status, (method, path, response.text)
        problem = response.json()
        assert set(problem) == {"code", "message"}
        assert problem["code"] == code, (method, path, problem)
        return str(problem["message"])


def api(client: httpx.AsyncClient, token: str) -> Api:
    return Api(client, token)


SMTP_BODY = {"username": "chief", "facilities": {"hourly_limit": 5}}
Call = tuple[str, str, object]
D, U = "domain_not_found", "user_not_found"
# Every endpoint that names a domain, aimed at b.example (customer "other"), and the answer
# it gives: exactly what a missing domain or user gives.
FOREIGN: list[tuple[str, str, object, str]] = [
    ("GET", "/domains/b.example", None, D),
    ("DELETE", "/domains/b.example", None, D),
    ("GET", "/domains/b.example/dns-records", None, D),
    ("PATCH", "/domains/b.example", {"enabled": False}, D),
    ("PATCH", "/domains/b.example", {"postmaster": "alice@a.example", "abuse": True}, D),
    ("POST", "/domains/b.example/verification", None, D),
    ("GET", "/domains/b.example/users", None, D),
    ("POST", "/domains/b.example/users", {"username": "intruder", "password": PW}, D),
    ("GET", "/domains/b.example/users/bob", None, U),
    ("PUT", "/domains/b.example/users/bob/password", {"password": "taken over password"}, U),
    ("DELETE", "/domains/b.example/users/bob", None, U),
    ("GET", "/domains/b.example/available-users", None, D),
    ("GET", "/domains/b.example/mailboxes", None, D),
    ("POST", "/domains/b.example/mailboxes", {"username": "bob", "quota": "1KB"}, U),
    ("GET", "/domains/b.example/mailboxes/bob", None, U),
    ("PATCH", "/domains/b.example/mailboxes/bob", {"quota": "1GB"}, U),
    ("DELETE", "/domains/b.example/mailboxes/bob", None, U),
    ("GET", "/domains/b.example/smtp-accounts", None, D),
    ("POST", "/domains/b.example/smtp-accounts", SMTP_BODY, U),
    ("GET", "/domains/b.example/smtp-accounts/bob", None, U),
    ("PATCH", "/domains/b.example/smtp-accounts/bob", {"facilities": {"relay": False}}, U),
    ("DELETE", "/domains/b.example/smtp-accounts/bob", None, U),
]
FOREIGN_CUSTOMER: list[Call] = [
    ("GET", "/customers/other", None),
    ("GET", "/customers/other/usage", None),
]
# A customer may change its own contact address: another customer is missing to it.
CUSTOMER_CHANGES: list[Call] = [
    ("PATCH", "/customers/other", {"enabled": False}),
    ("PATCH", "/customers/other", {"contact_email": "me@a.example"}),
]
# 403 to every other token, whatever the body or the object named: checked before either.
PROVIDER_ONLY: list[Call] = [
    ("POST", "/plans", {"name": "Sneaky"}),
    ("POST", "/plans", {"name": "", "storage": "lots"}),
    (
        "POST",
        "/customers",
        {"login": "x1", "plan": "Bulk Hosting", "contact_email": "a@x.example", "password": PW},
    ),
]


async def state_of(world: World) -> tuple[object, ...]:
    rt = world.runtime
    users = rt.services.users
    return (
        await rt.services.accounts.customers(OP),
        await rt.services.accounts.plans(OP),
        await rt.services.accounts.domains(OP),
        await users.users(OP, B),
        await users.mailboxes(OP, B),
        await users.smtp_accounts(OP, B),
    )


@pytest.mark.parametrize("who", ["acme", "domain_a"])
async def test_no_endpoint_reaches_another_tenant(
    world: World, client: httpx.AsyncClient, tokens: Tokens, who: str
) -> None:
    caller = api(client, getattr(tokens, who))
    before = await state_of(world)
    for method, path, body, code in FOREIGN:
        message = await caller.refused(method, path, body, status=404, code=code)
        missing = "domain b.example is not hosted here" if code == D else "does not exist"
        assert missing in message
    for method, path, body in FOREIGN_CUSTOMER:
        await caller.refused(method, path, body, status=404, code="customer_not_found")
    for method, path, body in PROVIDER_ONLY:
        await caller.refused(method, path, body, status=403, code="not_permitted")
    for method, path, body in CUSTOMER_CHANGES:
        if who == "acme":
            await caller.refused(method, path, body, status=404, code="customer_not_found")
        else:  # a domain's manager changes no customer, whatever the body
            await caller.refused(method, path, body, status=403, code="not_permitted")
    if who == "domain_a":
        body = {"enabled": "not a boolean"}
        await caller.refused("PATCH", "/customers/nobody", body, status=403, code="not_permitted")
    await caller.refused(
        "PATCH", "/customers/acme", {"enabled": False}, status=403, code="not_permitted"
    )
    domains = await caller.ok("GET", "/domains")
    assert [d["name"] for d in domains["items"]] == ["a.example"]
    customers = await caller.ok("GET", "/customers")
    assert [c["login"] for c in customers["items"]] == ([] if who == "domain_a" else ["acme"])
    # A customer may add domains, but sees no other customer; a domain's manager may not.
    grab = {"name": "grab.example", "password": PW, "customer": "other"}
    own = (404, "customer_not_found") if who == "acme" else (403, "not_permitted")
    await caller.refused("POST", "/domains", grab, status=own[0], code=own[1])
    assert await state_of(world) == before


async def test_every_endpoint_wants_a_valid_token(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    everything: list[Call] = [
        *[f[:3] for f in FOREIGN],
        *FOREIGN_CUSTOMER,
        *PROVIDER_ONLY,
        ("GET", "/me", None),
        ("GET", "/plans", None),
        ("GET", "/usage", None),
        ("GET", "/audit", None),
    ]
    for token in ("", "mh_not-a-token", "Basic abc"):
        caller = api(client, token)
        for method, path, body in everything:
            await caller.refused(method, path, body, status=401, code="not_authenticated")
    acme = await world.runtime.services.accounts.customer(OP, "acme")
    actor = CustomerActor(acme.id, acme.login)
    (record,) = await world.runtime.web_access.api_tokens.tokens(actor)
    await world.runtime.web_access.api_tokens.revoke(actor, record.id)
    await api(client, tokens.acme).refused("GET", "/me", status=401, code="not_authenticated")


async def test_me_names_the_tokens_login(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert await api(client, tokens.domain_a).ok("GET", "/me") == {
        "actor": "domain:a.example",
        "kind": "domain",
    }
    assert (await api(client, tokens.provider).ok("GET", "/me"))["kind"] == "provider"


async def test_provider_manages_plans_and_customers(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    provider = api(client, tokens.provider)
    plan = await provider.ok(
        "POST", "/plans", {"name": "Small", "max_domains": 2, "storage": "1GB"}, status=201
    )
    assert plan == {
        "name": "Small",
        "max_domains": 2,
        "storage": "1GB",
        "transfer": None,
        "max_accounts": None,
    }
    await provider.refused("POST", "/plans", {"name": "Small"}, status=409, code="plan_exists")
    created = await provider.ok(
        "POST",
        "/customers",
        {"login": "newco", "plan": "Small", "contact_email": "it@newco.example", "password": PW},
        status=201,
    )
    assert created == {
        "login": "newco",
        "plan": "Small",
        "contact_email": "it@newco.example",
        "enabled": True,
    }
    changed = await provider.ok(
        "PATCH", "/customers/newco", {"enabled": False, "plan": "Bulk Hosting"}
    )
    assert changed == {**created, "enabled": False, "plan": "Bulk Hosting"}
    page = await provider.ok("GET", "/customers?limit=2&offset=1")
    assert page == {
        "items": [
            {
                "login": "newco",
                "plan": "Bulk Hosting",
                "contact_email": "it@newco.example",
                "enabled": False,
            },
            {
                "login": "other",
                "plan": "Bulk Hosting",
                "contact_email": "chief@b.example",
                "enabled": True,
            },
        ],
        "total": 3,
    }
    usage = await provider.ok("GET", "/customers/acme/usage")
    assert (usage["domains"], usage["accounts"], usage["plan"]["max_domains"]) == (1, 2, 40)
    assert (await provider.ok("GET", "/usage"))["total"] == 3


async def test_customer_adds_domains_until_its_plan_refuses(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    rt = world.runtime
    await rt.services.accounts.add_plan(OP, "Two", PlanLimits(2, None, None, None))
    await rt.services.accounts.change_plan(OP, "acme", "Two")
    acme = api(client, tokens.acme)
    await acme.refused(
        "POST", "/domains", {"name": "b.example", "password": PW}, status=409, code="domain_exists"
    )
    created = await acme.ok(
        "POST", "/domains", {"name": "Second.example", "password": PW}, status=201
    )
    assert created == {
        "name": "second.example",
        "unicode_name": "second.example",
        "customer": "acme",
        "enabled": True,
        "verified": False,  # a customer's domain waits for its DNS proof
        "status": "pending",
        "mail_server": "mail.second.example",
        "postmaster": None,  # the customer's contact address
        "abuse": False,
    }
    message = await acme.refused(
        "POST",
        "/domains",
        {"name": "third.example", "password": PW},
        status=409,
        code="plan_limit_reached",
    )
    assert message == "plan Two allows 2 domains; customer acme has 2"
    await acme.ok("DELETE", "/domains/second.example", status=204)
    await acme.refused("GET", "/domains/second.example", status=404, code="domain_not_found")


async def test_domain_manager_runs_the_smtp_account_procedure(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    manager = api(client, tokens.domain_a)
    user = await manager.ok(
        "POST",
        "/domains/a.example/users",
        {"username": "Carol", "password": PW, "recovery_email": "c@elsewhere.example"},
        status=201,
    )
    assert user == {
        "address": "carol@a.example",
        "username": "carol",
        "recovery_email": "c@elsewhere.example",
        "enabled": True,
        "has_mailbox": False,
        "has_smtp_account": False,
    }
    free = await manager.ok("GET", "/domains/a.example/available-users")
    assert [u["address"] for u in free["items"]] == [
        "alice@a.example",
        "boss@a.example",
        "carol@a.example",
    ]
    account = await manager.ok(
        "POST",
        "/domains/a.example/smtp-accounts",
        {
            "username": "carol",
            "facilities": {
                "sender_scope": "domain",
                "hourly_limit": 120,
                "max_message_size": "10MB",
            },
        },
        status=201,
    )
    assert account == {
        "address": "carol@a.example",
        "username": "carol",
        "identifiers": ["R", "D", "H120", "S10MB"],
        "facilities": {
            "relay": True,
            "sender_scope": "domain",
            "hourly_limit": 120,
            "max_recipients": None,
            "max_message_size": "10MB",
        },
    }
    assert await manager.ok("GET", "/domains/a.example/smtp-accounts/carol") == account
    message = await manager.refused(
        "POST",
        "/domains/a.example/smtp-accounts",
        {"username": "carol"},
        status=409,
        code="smtp_account_exists",
    )
    assert message == "user carol@a.example already has an SMTP account"
    free = await manager.ok("GET", "/domains/a.example/available-users")
    assert "carol@a.example" not in [u["address"] for u in free["items"]]
    listed = await manager.ok("GET", "/domains/a.example/smtp-accounts")
    assert listed["total"] == 1
    await manager.ok("DELETE", "/domains/a.example/smtp-accounts/carol", status=204)
    await manager.refused(
        "DELETE",
        "/domains/a.example/smtp-accounts/carol",
        status=404,
        code="smtp_account_not_found",
    )


async def test_domain_manager_manages_users_and_mailboxes(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    manager = api(client, tokens.domain_a)
    await manager.ok(
        "POST", "/domains/a.example/users", {"username": "dave", "password": PW}, status=201
    )
    mailbox = await manager.ok(
        "POST", "/domains/a.example/mailboxes", {"username": "dave", "quota": "5MB"}, status=201
    )
    assert mailbox == {
        "address": "dave@a.example",
        "username": "dave",
        "quota": "5MB",
        "used_bytes": 0,
    }
    assert await manager.ok("GET", "/domains/a.example/mailboxes/dave") == mailbox
    boxes = await manager.ok("GET", "/domains/a.example/mailboxes?limit=1&offset=2")
    assert boxes == {"items": [mailbox], "total": 3}
    await manager.ok(
        "PUT",
        "/domains/a.example/users/dave/password",
        {"password": "another good password"},
        status=204,
    )
    weak = await manager.refused(
        "PUT",
        "/domains/a.example/users/dave/password",
        {"password": "short"},
        status=422,
        code="weak_password",
    )
    assert "at least 10 characters" in weak
    shown = await manager.ok("GET", "/domains/a.example/users/dave")
    assert shown["has_mailbox"] is True
    await manager.ok("DELETE", "/domains/a.example/mailboxes/dave", status=204)
    await manager.refused(
        "GET", "/domains/a.example/mailboxes/dave", status=404, code="mailbox_not_found"
    )
    await manager.ok("DELETE", "/domains/a.example/users/dave", status=204)
    await manager.refused("GET", "/domains/a.example/users/dave", status=404, code="user_not_found")
    records = await manager.ok("GET", "/domains/a.example/dns-records")
    kinds = [(r["name"], r["type"]) for r in records["items"]]
    assert ("a.example", "MX") in kinds and ("_submission._tcp.a.example", "SRV") in kinds


async def test_bad_input_is_a_json_422_naming_the_problem(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    manager = api(client, tokens.domain_a)
    message = await manager.refused(
        "GET", "/domains/not_a-domain/users", status=422, code="invalid_input"
    )
    assert "domain" in message
    message = await manager.refused(
        "GET", "/domains/not_a.example/users", status=422, code="invalid_domain"
    )
    assert "'not_a.example' is not a valid domain name" in message
    await manager.refused(
        "POST", "/domains/a.example/users", {"username": "x"}, status=422, code="invalid_input"
    )
    await manager.refused(
        "POST",
        "/domains/a.example/users",
        {"username": "bad name", "password": PW},
        status=422,
        code="invalid_input",
    )
    await manager.refused(
        "POST",
        "/domains/a.example/users",
        {"username": "a..b", "password": PW},
        status=422,
        code="invalid_address",
    )
    await manager.refused("GET", "/domains?limit=0", status=422, code="invalid_input")
    await manager.refused(
        "POST",
        "/domains/a.example/smtp-accounts",
        {"username": "alice", "facilities": {"hourly_limit": 0}},
        status=422,
        code="invalid_input",
    )
    response = await client.get(
        "/api/v1/no-such-thing", headers={"Authorization": f"Bearer {tokens.acme}"}
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


async def test_audit_log_is_paginated_and_scoped(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    acme = api(client, tokens.acme)
    first = await acme.ok("GET", "/audit?limit=2")
    assert len(first["items"]) == 2
    everything = await acme.ok("GET", "/audit?limit=500")
    targets = " ".join(e["target"] for e in everything["items"])
    assert "a.example" in targets and "b.example" not in targets
    assert first["total"] == everything["total"]


async def test_openapi_document_describes_the_api_and_its_auth(
    world: World, client: httpx.AsyncClient
) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert "/api/v1/domains/{domain}/smtp-accounts" in paths
    assert not any(path.startswith(("/domain/", "/login")) for path in paths)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    responses = paths["/api/v1/domains/{domain}/smtp-accounts"]["post"]["responses"]
    assert {"201", "401", "404", "409", "422"} <= set(responses)


async def test_a_token_that_may_never_add_domains_hears_403_whatever_it_sends(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    manager = api(client, tokens.domain_a)
    for body in (
        {"name": "new.example", "password": PW},
        {"name": "new.example", "password": PW, "customer": "acme"},
        {"name": "new.example", "password": PW, "customer": "no-such-customer"},
        {"name": "new.example"},
        {},
    ):
        message = await manager.refused("POST", "/domains", body, status=403, code="not_permitted")
        assert message == "only a customer or the provider may add domains"
    # The same rule in the service, for the panel and the CLI too.
    a = await world.runtime.services.accounts.domain(OP, A)
    with pytest.raises(NotPermitted, match="only a customer or the provider may add domains"):
        await world.runtime.services.accounts.add_domain(
            DomainActor(a.id, a.customer_id, a.name), DomainName.parse("new.example"), "acme", PW
        )
    # Provider-only operations: a customer's token too, with a body that is not valid.
    await api(client, tokens.acme).refused(
        "POST", "/plans", {"max_domains": -1}, status=403, code="not_permitted"
    )
    # Those who may still hear what is wrong with the body.
    await api(client, tokens.provider).refused(
        "POST", "/plans", {"max_domains": -1}, status=422, code="invalid_input"
    )
    await api(client, tokens.provider).refused(
        "POST",
        "/domains",
        {"name": "new.example", "password": PW},
        status=422,
        code="invalid_input",
    )


async def audit_total(client: httpx.AsyncClient, tokens: Tokens) -> int:
    return int((await api(client, tokens.provider).ok("GET", "/audit?limit=1"))["total"])


async def test_what_get_answers_goes_back_to_patch_unchanged(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """One vocabulary in and out: each item's GET answer is a PATCH body that changes
    nothing, even from a login that may not change every field it names."""
    provider, acme = api(client, tokens.provider), api(client, tokens.acme)
    await provider.ok(
        "PATCH", "/domains/a.example", {"postmaster": "alice@a.example", "abuse": True}
    )
    await acme.ok("POST", "/domains", {"name": "pending.example", "password": PW}, status=201)
    cases = [
        (tokens.provider, "/customers/acme"),
        (tokens.provider, "/domains/a.example"),
        (tokens.acme, "/domains/a.example"),
        (tokens.domain_a, "/domains/a.example"),  # may change neither enabled nor verified
        (tokens.acme, "/domains/pending.example"),  # verified: false, as it is
        (tokens.domain_a, "/domains/a.example/mailboxes/alice"),
        (tokens.provider, "/domains/b.example/mailboxes/bob"),
        (tokens.other, "/domains/b.example/smtp-accounts/bob"),
    ]
    for token, path in cases:
        caller = api(client, token)
        shown = await caller.ok("GET", path)
        before = await audit_total(client, tokens)
        assert await caller.ok("PATCH", path, shown) == shown, path
        assert await audit_total(client, tokens) == before, f"{path}: a change was recorded"

    customer = await provider.ok("GET", "/customers/acme")
    message = await provider.refused(
        "PATCH", "/customers/acme", {**customer, "login": "other"}, status=422, code="invalid_input"
    )
    assert message.startswith("login cannot be changed: it is "), message
    changed = await provider.ok("PATCH", "/customers/acme", {**customer, "enabled": False})
    assert changed == {**customer, "enabled": False}
    assert await provider.ok("PATCH", "/customers/acme", customer) == customer

    domain = await acme.ok("GET", "/domains/a.example")
    assert (domain["verified"], domain["postmaster"], domain["abuse"]) == (
        True,
        "alice@a.example",
        True,
    )
    # status follows from enabled and verified: sent back stale, it is ignored.
    disabled = await acme.ok("PATCH", "/domains/a.example", {**domain, "enabled": False})
    assert (disabled["enabled"], disabled["status"]) == (False, "disabled")
    for field, value in (("name", "b.example"), ("customer", "other"), ("mail_server", "mx.x")):
        message = await acme.refused(
            "PATCH",
            "/domains/a.example",
            {**domain, field: value},
            status=422,
            code="invalid_input",
        )
        assert message.startswith(f"{field} cannot be changed: it is "), message
    message = await acme.refused(
        "PATCH",
        "/domains/a.example",
        {**domain, "verified": False},
        status=422,
        code="invalid_input",
    )
    assert message == "domain a.example is verified; it cannot be made pending again"


async def test_an_smtp_accounts_facilities_read_back_are_what_posting_takes(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    other = api(client, tokens.other)
    bob = await other.ok("GET", "/domains/b.example/smtp-accounts/bob")
    assert bob["facilities"]["hourly_limit"] == 60
    facilities = {**bob["facilities"], "max_message_size": "1536KiB", "max_recipients": 5}
    chief = await other.ok(
        "POST",
        "/domains/b.example/smtp-accounts",
        {"username": "chief", "facilities": facilities},
        status=201,
    )
    assert chief["facilities"] == {**facilities, "max_message_size": "1.5MiB"}  # exact
    assert chief["identifiers"] == ["R", "H60", "N5", "S1.57MB"]  # the panel's rounding
    again = await other.ok("GET", "/domains/b.example/smtp-accounts/chief")
    assert again == chief
    await other.ok("DELETE", "/domains/b.example/smtp-accounts/chief", status=204)
    copied = await other.ok(
        "POST",
        "/domains/b.example/smtp-accounts",
        {"username": "chief", "facilities": again["facilities"]},
        status=201,
    )
    assert copied == chief
    await other.refused(
        "GET", "/domains/b.example/smtp-accounts/nobody", status=404, code="user_not_found"
    )
    await other.ok("DELETE", "/domains/b.example/smtp-accounts/chief", status=204)
    await other.refused(
        "GET", "/domains/b.example/smtp-accounts/chief", status=404, code="smtp_account_not_found"
    )


async def test_every_item_answers_get(
    world: World, client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    """Each path that names one object and has any method also has GET."""
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1/"):
            methods.setdefault(route.path, set()).update(route.methods)
    items = [p for p in methods if p.endswith("}") and "GET" not in methods[p]]
    assert items == []
    manager = api(client, tokens.domain_a)
    for path in (
        "/customers/acme",
        "/domains/a.example",
        "/domains/a.example/users/alice",
        "/domains/a.example/mailboxes/alice",
    ):
        assert (await api(client, tokens.acme).ok("GET", path)) is not None
    shown = await manager.ok("GET", "/domains/a.example/mailboxes/alice")
    assert shown == {
        "address": "alice@a.example",
        "username": "alice",
        "quota": "10MB",
        "used_bytes": 0,
    }


async def test_every_operation_has_a_summary_and_the_main_schemas_examples(
    world: World, client: httpx.AsyncClient, app: FastAPI
) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1/"):
            assert route.summary, f"{route.path} {route.methods}: no summary"
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    models = [
        ErrorOut,
        PlanIn,
        PlanOut,
        CustomerIn,
        CustomerOut,
        CustomerPatch,
        UsageOut,
        DomainIn,
        DomainOut,
        DomainPatch,
        UserIn,
        UserOut,
        MailboxIn,
        MailboxOut,
        MailboxPatch,
        FacilitiesIn,
        SmtpAccountIn,
        SmtpAccountOut,
        SmtpAccountPatch,
    ]
    for model in models:
        documented = schemas.get(model.__name__) or schemas[f"{model.__name__}-Output"]
        (sample,) = documented["examples"]
        model.model_validate(sample)  # an example that no longer fits fails here


async def test_a_quota_is_changed_within_the_plans_storage(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    manager = api(client, tokens.domain_a)
    path = "/domains/a.example/mailboxes/alice"
    alice = await manager.ok("GET", path)
    changed = await manager.ok("PATCH", path, {"quota": "500MB"})
    assert changed == {**alice, "quota": "500MB"}
    assert await manager.ok("GET", path) == changed
    # Sent back with a stale used_bytes: ignored, as it follows the mail.
    assert await manager.ok("PATCH", path, {**changed, "used_bytes": 7}) == changed
    message = await manager.refused(
        "PATCH", path, {"quota": "2.6GB"}, status=409, code="plan_limit_reached"
    )
    assert message == (
        "plan Bulk Hosting has 2.5GB of storage; 10MB is given to other mailboxes, "
        "so at most 2.49GB is left for alice@a.example"
    )
    message = await manager.refused(
        "PATCH", path, {"quota": None}, status=409, code="plan_limit_reached"
    )
    assert "so every mailbox needs a quota" in message
    for small, shown in (("500KB", "500KB"), ("0", "0B"), ("-1", "-1")):
        message = await manager.refused(
            "PATCH", path, {"quota": small}, status=422, code="invalid_size"
        )
        assert message == f"a mailbox quota is at least 1MB; {shown} is less"
    message = await manager.refused(
        "PATCH", path, {**changed, "username": "boss"}, status=422, code="invalid_input"
    )
    assert message == "username cannot be changed: it is 'alice', not 'boss'"
    await manager.ok(
        "POST", "/domains/a.example/users", {"username": "dave", "password": PW}, status=201
    )
    await manager.refused(
        "PATCH",
        "/domains/a.example/mailboxes/dave",
        {"quota": "5MB"},
        status=404,
        code="mailbox_not_found",
    )
    entries = await api(client, tokens.acme).ok("GET", "/audit?limit=500")
    quota_changes = [e for e in entries["items"] if e["action"] == "mailbox.quota"]
    assert [e["target"] for e in quota_changes] == ["alice@a.example"]


async def test_an_smtp_account_patch_changes_only_the_facilities_sent(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    other = api(client, tokens.other)
    path = "/domains/b.example/smtp-accounts/bob"
    bob = await other.ok("GET", path)
    changed = await other.ok("PATCH", path, {"facilities": {"relay": False}})
    assert changed["facilities"] == {**bob["facilities"], "relay": False}
    assert changed["identifiers"] == ["H60"]
    changed = await other.ok(
        "PATCH",
        path,
        {
            "facilities": {
                "hourly_limit": None,
                "max_message_size": "1536KiB",
                "sender_scope": "domain",
            }
        },
    )
    assert changed["facilities"] == {
        "relay": False,
        "sender_scope": "domain",
        "hourly_limit": None,
        "max_recipients": None,
        "max_message_size": "1.5MiB",
    }
    assert changed["identifiers"] == ["D", "S1.57MB"]  # stale identifiers sent back: ignored
    assert await other.ok("PATCH", path, {**changed, "identifiers": ["R"]}) == changed
    assert await other.ok("GET", path) == changed
    await other.refused(
        "PATCH", path, {"facilities": {"hourly_limit": 0}}, status=422, code="invalid_input"
    )
    await other.refused(
        "PATCH", path, {"facilities": {"relay": None}}, status=422, code="invalid_input"
    )
    message = await other.refused(
        "PATCH", path, {**changed, "address": "chief@b.example"}, status=422, code="invalid_input"
    )
    assert message.startswith("address cannot be changed: it is "), message
    message = await other.refused(
        "PATCH",
        "/domains/b.example/smtp-accounts/chief",
        {"facilities": {"relay": True}},
        status=404,
        code="smtp_account_not_found",
    )
    assert message == "user chief@b.example has no SMTP account"
    # The domain manager of a.example, and acme, see none of it.
    for token in (tokens.domain_a, tokens.acme):
        await api(client, token).refused(
            "PATCH", path, {"facilities": {"relay": True}}, status=404, code="user_not_found"
        )
    assert await other.ok("GET", path) == changed
