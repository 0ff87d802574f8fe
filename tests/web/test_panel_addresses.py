"""Editing addresses in the panel: a user's recovery address (by the domain's manager and by
the user), a customer's contact address (by the customer) and contact and plan (by the
provider), from forms filled in with what is there now; refusals at their field with what
was typed; the other tenant reaches nothing."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.web.conftest import OP, World, addr, logged_in
from tests.web.test_browser import log_in
from tests.web.test_panel_edit import field_error, input_value

ALICE = addr("alice@a.example")
OWN = "the recovery address must be another address than alice@a.example itself"


async def test_the_manager_changes_a_recovery_address_and_the_user_its_own(
    world: World, client: httpx.AsyncClient
) -> None:
    users = world.runtime.services.users
    manager = await logged_in(client, "domain", "a.example")
    form = await manager.get("/domain/a.example/users/alice")
    assert input_value(form.text, "recovery") == "boss@a.example"
    refused = await manager.post(
        "/domain/a.example/users/alice/recovery", recovery="alice@a.example"
    )
    assert refused.status_code == 422
    assert OWN in field_error(refused.text, "recovery")
    assert input_value(refused.text, "recovery") == "alice@a.example"
    changed = await manager.post("/domain/a.example/users/alice/recovery", recovery="al@home.test")
    assert changed.status_code == 303
    assert changed.headers["location"] == "/domain/a.example/users/alice?done=recovery_changed"
    assert (await users.user(OP, ALICE)).recovery_email == "al@home.test"

    own = await logged_in(client, "user", "alice@a.example")
    page = await own.get("/user/")
    assert input_value(page.text, "recovery") == "al@home.test"
    refused = await own.post("/user/recovery", recovery="not an address")
    assert refused.status_code == 422
    assert "not an email address" in field_error(refused.text, "recovery")
    assert input_value(refused.text, "recovery") == "not an address"
    cleared = await own.post("/user/recovery", recovery="")
    assert cleared.headers["location"] == "/user/?done=recovery_changed"
    assert (await users.user(OP, ALICE)).recovery_email is None


async def test_another_tenant_cannot_change_a_recovery_or_contact_address(
    world: World, client: httpx.AsyncClient
) -> None:
    hostile = await logged_in(client, "domain", "b.example")
    await hostile.get("/domain/b.example/users")
    refused = await hostile.post("/domain/a.example/users/alice/recovery", recovery="x@evil.test")
    assert refused.status_code == 404
    refused = await hostile.post("/domain/b.example/users/alice/recovery", recovery="x@evil.test")
    assert refused.status_code == 404
    other = await logged_in(client, "customer", "other")
    await other.get("/customer/")
    changed = await other.post("/customer/contact", email="new@b.example")
    assert changed.status_code == 303  # its own
    refused = await other.post(
        "/customer/domain-password", domain="a.example", password="x" * 12, confirm="x" * 12
    )
    assert refused.status_code == 404
    assert "domain a.example is not hosted here" in field_error(refused.text, "domain_password")
    assert (await world.runtime.services.users.user(OP, ALICE)).recovery_email == "boss@a.example"
    acme = await world.runtime.services.accounts.customer(OP, "acme")
    assert acme.contact_email == "boss@a.example"


async def test_the_provider_changes_contact_and_plan_on_the_customers_page(
    world: World, client: httpx.AsyncClient
) -> None:
    provider = await logged_in(client, "provider", "root")
    listing = await provider.get("/provider/customers")
    assert 'href="/provider/customers/acme"' in listing.text
    form = await provider.get("/provider/customers/acme")
    assert input_value(form.text, "email") == "boss@a.example"
    refused = await provider.post("/provider/customers/acme", email="nobody", plan="Bulk Hosting")
    assert refused.status_code == 422
    assert "not an email address" in field_error(refused.text, "email")
    assert input_value(refused.text, "email") == "nobody"
    refused = await provider.post("/provider/customers/acme", email="it@a.test", plan="Ghost")
    assert refused.status_code == 404
    assert "plan &#39;Ghost&#39; does not exist" in field_error(refused.text, "plan")
    changed = await provider.post(
        "/provider/customers/acme", email="it@a.test", plan="Bulk Hosting"
    )
    assert changed.headers["location"] == "/provider/customers?done=customer_changed"
    acme = await world.runtime.services.accounts.customer(OP, "acme")
    assert acme.contact_email == "it@a.test"


async def test_panel_edits_of_addresses_in_a_browser(page: Page, world: World) -> None:
    await log_in(page, "customer", "acme")
    contact = page.get_by_label("Contact email")
    await expect(contact).to_have_value("boss@a.example")
    await contact.fill("it@acme")
    await page.get_by_role("button", name="Save contact address").click()
    await expect(page.locator("#email-error")).to_contain_text("it@acme")
    await expect(page.get_by_label("Contact email")).to_have_value("it@acme")
    await page.get_by_label("Contact email").fill("it@acme.example")
    await page.get_by_role("button", name="Save contact address").click()
    await expect(page.get_by_role("status")).to_have_text("The contact address was changed.")
    await expect(page.get_by_label("Contact email")).to_have_value("it@acme.example")
    await page.reload()  # a reload after the change repeats nothing
    await expect(page.get_by_label("Contact email")).to_have_value("it@acme.example")

    await page.goto("/domain/a.example/users/alice")
    recovery = page.get_by_label("Recovery address")
    await expect(recovery).to_have_value("boss@a.example")
    await recovery.fill("ALICE@a.example")
    await page.get_by_role("button", name="Save recovery address").click()
    await expect(page.locator("#recovery-error")).to_contain_text("another address")
    await expect(page.get_by_label("Recovery address")).to_have_value("ALICE@a.example")
    await page.get_by_label("Recovery address").fill("alice@home.example")
    await page.get_by_role("button", name="Save recovery address").click()
    await expect(page.get_by_role("status")).to_have_text("The recovery address was changed.")
    await expect(page.get_by_label("Recovery address")).to_have_value("alice@home.example")
    user = await world.runtime.services.users.user(OP, ALICE)
    assert user.recovery_email == "alice@home.example"
