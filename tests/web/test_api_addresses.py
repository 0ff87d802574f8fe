"""PATCH of a user's recovery address and a customer's contact address, PUT of a domain's
manager password: what GET answers goes back unchanged, refusals name their field, and
the other tenant hears 404 and learns nothing."""

from __future__ import annotations

import httpx

from mailhost.web.api.schemas import CustomerPatch, ErrorOut, UserPatch
from tests.web.conftest import OP, PW, World, addr
from tests.web.test_api import Tokens, api, audit_total, tokens

__all__ = ["tokens"]  # the fixture, shared with test_api.py

ALICE = "/domains/a.example/users/alice"


async def refused_at(
    caller_token: str, client: httpx.AsyncClient, path: str, body: object, field: str
) -> dict[str, str]:
    response = await api(client, caller_token).call("PATCH", path, body)
    problem: dict[str, str] = response.json()
    assert set(problem) == {"code", "field", "message"}, problem
    assert problem["field"] == field, problem
    return {**problem, "status": str(response.status_code)}


async def test_get_output_goes_back_to_patch_unchanged(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for token, path in (
        (tokens.domain_a, ALICE),
        (tokens.acme, ALICE),
        (tokens.provider, ALICE),
        (tokens.acme, "/customers/acme"),
        (tokens.provider, "/customers/other"),
    ):
        caller = api(client, token)
        shown = await caller.ok("GET", path)
        before = await audit_total(client, tokens)
        assert await caller.ok("PATCH", path, shown) == shown, path
        assert await audit_total(client, tokens) == before, f"{path}: a change was recorded"


async def test_a_recovery_address_round_trips_and_is_audited(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    manager = api(client, tokens.domain_a)
    shown = await manager.ok("GET", ALICE)
    assert shown["recovery_email"] == "boss@a.example"
    changed = await manager.ok("PATCH", ALICE, {**shown, "recovery_email": "al@elsewhere.test"})
    assert changed == {**shown, "recovery_email": "al@elsewhere.test"}
    assert await manager.ok("GET", ALICE) == changed
    cleared = await manager.ok("PATCH", ALICE, {"recovery_email": None})
    assert cleared["recovery_email"] is None
    audit = await api(client, tokens.acme).ok("GET", "/audit?limit=2")
    assert [(e["action"], e["target"], e["actor"]) for e in audit["items"]] == [
        ("user.recovery", "alice@a.example", "domain:a.example"),
        ("user.recovery", "alice@a.example", "domain:a.example"),
    ]


async def test_recovery_refusals_name_the_field(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    problem = await refused_at(
        tokens.domain_a, client, ALICE, {"recovery_email": "Alice@a.example"}, "recovery_email"
    )
    assert problem == {
        "status": "422",
        "code": "invalid_address",
        "field": "recovery_email",
        "message": "the recovery address must be another address than alice@a.example itself:"
        " a reset link sent there cannot be read by someone locked out of it",
    }
    problem = await refused_at(
        tokens.domain_a, client, ALICE, {"recovery_email": "no at sign"}, "recovery_email"
    )
    assert (problem["status"], problem["code"]) == ("422", "invalid_address")
    for field, value in (("address", "bob@b.example"), ("username", "bob"), ("enabled", False)):
        message = await api(client, tokens.domain_a).refused(
            "PATCH", ALICE, {field: value}, status=422, code="invalid_input"
        )
        assert message.startswith(f"{field} cannot be changed: it is "), message
    user = await world.runtime.services.users.user(OP, addr("alice@a.example"))
    assert user.recovery_email == "boss@a.example"


async def test_the_other_tenant_cannot_reach_a_recovery_address(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    before = await audit_total(client, tokens)
    for token in (tokens.other, tokens.domain_b):
        hostile = api(client, token)
        for body in ({"recovery_email": "thief@evil.test"}, {"recovery_email": "alice@a.example"}):
            message = await hostile.refused("PATCH", ALICE, body, status=404, code="user_not_found")
            assert message == "user alice@a.example does not exist"
        # A user of its own domain with the victim's name: no such user there either.
        await hostile.refused(
            "PATCH",
            "/domains/b.example/users/alice",
            {"recovery_email": "x@y.test"},
            status=404,
            code="user_not_found",
        )
    assert await audit_total(client, tokens) == before


async def test_a_contact_address_is_changed_by_the_customer_or_the_provider(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    acme = api(client, tokens.acme)
    shown = await acme.ok("GET", "/customers/acme")
    changed = await acme.ok("PATCH", "/customers/acme", {**shown, "contact_email": "it@a.test"})
    assert changed == {**shown, "contact_email": "it@a.test"}
    provider = api(client, tokens.provider)
    again = await provider.ok("PATCH", "/customers/acme", {"contact_email": "ops@a.test"})
    assert again["contact_email"] == "ops@a.test"
    problem = await refused_at(
        tokens.acme, client, "/customers/acme", {"contact_email": "nope"}, "contact_email"
    )
    assert (problem["status"], problem["code"]) == ("422", "invalid_address")
    # Its own plan is the provider's to change: refused at the field, the rest unchanged.
    problem = await refused_at(
        tokens.acme,
        client,
        "/customers/acme",
        {"plan": "Something else", "contact_email": "x@a.test"},
        "plan",
    )
    assert problem == {
        "status": "403",
        "code": "not_permitted",
        "field": "plan",
        "message": "only the provider may change plans",
    }
    assert (await provider.ok("GET", "/customers/acme"))["contact_email"] == "ops@a.test"


async def test_the_other_tenant_cannot_change_a_contact_address(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    before = await audit_total(client, tokens)
    await api(client, tokens.other).refused(
        "PATCH",
        "/customers/acme",
        {"contact_email": "thief@evil.test"},
        status=404,
        code="customer_not_found",
    )
    await api(client, tokens.domain_a).refused(
        "PATCH",
        "/customers/acme",
        {"contact_email": "me@a.example"},
        status=403,
        code="not_permitted",
    )
    assert await audit_total(client, tokens) == before
    customer = await world.runtime.services.accounts.customer(OP, "acme")
    assert customer.contact_email == "boss@a.example"


async def test_a_domains_manager_password_is_set_by_its_customer(
    world: World, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    path = "/domains/a.example/password"
    new = {"password": "a brand new passphrase"}
    await api(client, tokens.acme).ok("PUT", path, new, status=204)
    await api(client, tokens.domain_a).ok("PUT", path, {"password": PW}, status=204)
    for token in (tokens.other, tokens.domain_b):
        await api(client, token).refused("PUT", path, new, status=404, code="domain_not_found")
    await api(client, tokens.acme).refused(
        "PUT", path, {"password": "short"}, status=422, code="weak_password"
    )


def test_the_patch_examples_fit_their_models() -> None:
    for model in (UserPatch, CustomerPatch, ErrorOut):
        (sample,) = model.model_json_schema()["examples"]
        model.model_validate(sample)
