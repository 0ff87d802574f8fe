"""The panel's add and change forms after a refusal: the reason at the field it is about
(aria-invalid, aria-describedby, the "<field>-error" element), what was typed still in the
other fields (never a password), the usual HTTP status, and nothing created."""

from __future__ import annotations

import html
import re

import httpx
from playwright.async_api import Locator, Page, expect

from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName
from mailhost.model.plans import PlanLimits
from mailhost.services.sessions import Login
from tests.web.conftest import OP, PW, Panel, World, addr, logged_in
from tests.web.test_browser import log_in
from tests.web.test_password_reset import inbox, link_in, request_reset

A = DomainName.parse("a.example")
GOOD = "a long and unusual passphrase"


async def submit(page: Page, form: Locator, button: str) -> int:
    """Click `button` of `form`; the HTTP status of the POST it sends."""
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await form.get_by_role("button", name=button).click()
    status = (await answer.value).status
    await page.wait_for_load_state()
    return status


async def refused_at(form: Locator, name: str, reason: str) -> None:
    """The input `name` is marked invalid and its refusal, containing `reason`, is beside it."""
    typed = form.locator(f'[name="{name}"]')
    await expect(typed).to_have_attribute("aria-invalid", "true")
    await expect(typed).to_have_attribute("aria-describedby", f"{name}-error")
    beside = form.locator("label", has=form.page.locator(f'[name="{name}"]'))
    await expect(beside.locator(f"#{name}-error")).to_contain_text(reason)


async def not_marked(form: Locator, *names: str) -> None:
    for name in names:
        await expect(form.locator(f'[name="{name}"]')).not_to_have_attribute("aria-invalid", "true")


async def test_add_user_refusals_at_their_fields_with_the_rest_kept(
    page: Page, world: World
) -> None:
    await log_in(page, "domain", "a.example")
    await page.goto("/domain/a.example/users")
    form = page.locator("#add form")
    username, password = form.locator('[name="username"]'), form.locator('[name="password"]')
    recovery = form.locator('[name="recovery"]')

    await username.fill("alice")
    await password.fill(GOOD)
    await recovery.fill("carol@elsewhere.example")
    assert await submit(page, form, "Add user") == 409
    await refused_at(form, "username", "user alice@a.example already exists")
    await expect(page.get_by_text("The user was not added")).to_be_visible()
    await expect(username).to_have_value("alice")
    await expect(recovery).to_have_value("carol@elsewhere.example")
    await expect(password).to_have_value("")  # never sent back
    await not_marked(form, "password", "recovery")

    await username.fill("carol")
    await password.fill("password123")
    assert await submit(page, form, "Add user") == 422
    await refused_at(form, "password", "one of the most common")
    await expect(username).to_have_value("carol")
    await expect(recovery).to_have_value("carol@elsewhere.example")
    await not_marked(form, "username", "recovery")

    await recovery.fill("carol@a.example")
    await password.fill(GOOD)
    assert await submit(page, form, "Add user") == 422
    await refused_at(form, "recovery", "another address than carol@a.example")
    await expect(username).to_have_value("carol")
    await expect(password).to_have_value("")

    users = await world.runtime.services.users.users(OP, A)
    assert sorted(u.address.local for u in users) == ["alice", "boss"]

    await recovery.fill("carol@elsewhere.example")
    await password.fill(GOOD)
    assert await submit(page, form, "Add user") == 303
    await expect(page.get_by_role("status")).to_have_text("The user was added.")
    await expect(username).to_have_value("")  # a fresh form after success


async def test_add_domain_refusals_at_their_fields(page: Page, world: World) -> None:
    await log_in(page, "customer", "acme")
    form = page.locator("#add form")
    name, password = form.locator('[name="name"]'), form.locator('[name="password"]')

    await name.fill("b.example")
    await password.fill(GOOD)
    assert await submit(page, form, "Add domain") == 409
    await refused_at(form, "name", "domain b.example is already hosted here by another account")
    await expect(page.get_by_text("The domain was not added")).to_be_visible()
    await expect(name).to_have_value("b.example")
    await expect(password).to_have_value("")
    await not_marked(form, "password")

    await name.fill("new.example")
    await password.fill("new.example is mine")
    assert await submit(page, form, "Add domain") == 422
    await refused_at(form, "password", "must not contain the login name 'new.example'")
    await expect(name).to_have_value("new.example")
    await not_marked(form, "name")
    # The other forms of the page are not marked.
    await expect(page.locator("#domain_password-error")).to_have_count(0)
    await expect(page.locator("#email-error")).to_have_count(0)

    domains = await world.runtime.services.accounts.domains(OP, "acme")
    assert [d.name.ascii for d in domains] == ["a.example"]


async def test_add_customer_refusals_at_their_fields(page: Page, world: World) -> None:
    await world.runtime.services.accounts.add_plan(OP, "Small", PlanLimits(1, None, None, 10))
    await log_in(page, "provider", "root")
    await page.goto("/provider/customers")
    form = page.locator("#add form")
    login, plan = form.locator('[name="login"]'), form.locator('[name="plan"]')
    email, password = form.locator('[name="email"]'), form.locator('[name="password"]')

    await login.fill("acme")
    await plan.select_option("Small")
    await email.fill("it@newco.example")
    await password.fill(GOOD)
    assert await submit(page, form, "Create customer") == 409
    await refused_at(form, "login", "customer 'acme' already exists")
    await expect(page.get_by_text("The customer was not created")).to_be_visible()
    await expect(login).to_have_value("acme")
    await expect(plan).to_have_value("Small")
    await expect(email).to_have_value("it@newco.example")
    await expect(password).to_have_value("")
    await not_marked(form, "plan", "email", "password")

    await login.fill("newco")
    await password.fill("newco forever and ever")
    assert await submit(page, form, "Create customer") == 422
    await refused_at(form, "password", "must not contain the login name 'newco'")
    await expect(login).to_have_value("newco")
    await expect(plan).to_have_value("Small")
    await expect(email).to_have_value("it@newco.example")
    await not_marked(form, "login")

    customers = await world.runtime.services.accounts.customers(OP)
    assert sorted(c.login for c in customers) == ["acme", "other"]


async def test_add_plan_refusals_at_their_fields(page: Page, world: World) -> None:
    await log_in(page, "provider", "root")
    await page.goto("/provider/plans")
    form = page.locator("#add form")
    typed = {"name": "Bulk Hosting", "domains": "5", "storage": "1GB", "transfer": "10GB"}
    for name, value in typed.items():
        await form.locator(f'[name="{name}"]').fill(value)
    await form.locator('[name="accounts"]').fill("50")
    assert await submit(page, form, "Add plan") == 409
    await refused_at(form, "name", "plan 'Bulk Hosting' already exists")
    await expect(page.get_by_text("The plan was not added")).to_be_visible()
    for name, value in typed.items():
        await expect(form.locator(f'[name="{name}"]')).to_have_value(value)
    await expect(form.locator('[name="accounts"]')).to_have_value("50")

    await form.locator('[name="name"]').fill("Small")
    await form.locator('[name="storage"]').fill("lots")
    assert await submit(page, form, "Add plan") == 422
    await refused_at(form, "storage", "'lots' is not a size")
    await expect(form.locator('[name="name"]')).to_have_value("Small")
    await expect(form.locator('[name="transfer"]')).to_have_value("10GB")
    await not_marked(form, "name", "domains", "transfer", "accounts")

    await form.locator('[name="storage"]').fill("1GB")
    await form.locator('[name="accounts"]').fill("fifty")
    assert await submit(page, form, "Add plan") == 422
    await refused_at(form, "accounts", "'fifty' is not a whole number")
    await expect(form.locator('[name="storage"]')).to_have_value("1GB")

    plans = await world.runtime.services.accounts.plans(OP)
    assert [p.name for p in plans] == ["Bulk Hosting"]


async def test_token_name_refusal_at_its_field(page: Page, world: World) -> None:
    await log_in(page, "domain", "a.example")
    await page.goto("/tokens")
    form = page.locator("#add form")
    await form.locator('[name="name"]').fill("   ")
    assert await submit(page, form, "Create token") == 422
    await refused_at(form, "name", "a token name must be 1 to 100 characters")
    await expect(page.get_by_text("No token was created")).to_be_visible()
    await expect(form.locator('[name="name"]')).to_have_value("   ")
    await expect(page.get_by_text("No API tokens yet.")).to_be_visible()
    await expect(page.locator("#new-token")).to_have_count(0)


# Without a browser: the same markup, read from the HTML.


def input_tag(text: str, name: str) -> str:
    found = re.search(rf'<input name="{name}"[^>]*>', text)
    assert found is not None, f"no input {name}"
    return found.group(0)


def field_error(text: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="{name}-error" role="alert">([^<]*)<', text)
    assert found is not None, f"no refusal at {name}"
    return html.unescape(found.group(1))


def marked(text: str, name: str) -> bool:
    tag = input_tag(text, name)
    return 'aria-invalid="true"' in tag and f'aria-describedby="{name}-error"' in tag


async def test_app_password_name_refusal_at_its_field(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "user", "alice@a.example")
    await panel.get("/user/app-passwords")
    refused = await panel.post("/user/app-passwords", name="   ")
    assert refused.status_code == 422
    assert "1 to 100 characters" in field_error(refused.text, "name")
    assert marked(refused.text, "name")
    assert 'value="   "' in input_tag(refused.text, "name")
    assert "No app password was created" in refused.text
    alice = addr("alice@a.example")
    assert await world.runtime.web_access.app_passwords.app_passwords(OP, alice) == []


async def test_own_password_change_refusals_at_their_fields(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "user", "alice@a.example")
    await panel.get("/user/")
    cases = [
        (
            {"current": "not my password", "password": GOOD, "confirm": GOOD},
            "current",
            "not correct",
        ),
        ({"current": PW, "password": GOOD, "confirm": GOOD + "!"}, "confirm", "not the same"),
        ({"current": PW, "password": "qwertyuiop", "confirm": "qwertyuiop"}, "password", "common"),
    ]
    for fields, name, reason in cases:
        refused = await panel.post("/user/password", **fields)
        assert refused.status_code == 422, name
        assert reason in field_error(refused.text, name)
        assert marked(refused.text, name)
        for other in {"current", "password", "confirm"} - {name}:
            assert not marked(refused.text, other)
        for typed in ("current", "password", "confirm"):
            assert "value=" not in input_tag(refused.text, typed)  # never sent back
        assert "Your password was not changed" in refused.text
        assert "recovery-error" not in refused.text  # the recovery form is not marked
    outcome = await world.runtime.web_access.logins.login(
        "user", "alice@a.example", PW, ClientInfo("127.0.0.9", "web")
    )
    assert isinstance(outcome, Login)  # the password is what it was


async def test_reset_form_refusals_at_their_fields(world: World, client: httpx.AsyncClient) -> None:
    panel = Panel(client)
    await request_reset(panel, "customer", "acme")
    (message,) = await inbox(world.runtime)
    _, token = link_in(message)
    await panel.get(f"/reset/{token}")
    refused = await panel.post(f"/reset/{token}", password=GOOD, confirm="something else")
    assert refused.status_code == 422
    assert "not the same" in field_error(refused.text, "confirm")
    assert marked(refused.text, "confirm") and not marked(refused.text, "password")
    refused = await panel.post(f"/reset/{token}", password="acme-is-great", confirm="acme-is-great")
    assert refused.status_code == 422
    assert "must not contain the login name 'acme'" in field_error(refused.text, "password")
    assert marked(refused.text, "password") and not marked(refused.text, "confirm")
    assert "value=" not in input_tag(refused.text, "password")
    # Neither refusal used up the link, and the password is unchanged.
    assert (await panel.get(f"/reset/{token}")).status_code == 200
    outcome = await world.runtime.web_access.logins.login(
        "customer", "acme", PW, ClientInfo("127.0.0.9", "web")
    )
    assert isinstance(outcome, Login)


async def test_typed_syntax_refusals_at_their_fields(
    world: World, client: httpx.AsyncClient
) -> None:
    """Values a browser lets through but the rules refuse, each at its own field."""
    domain = await logged_in(client, "domain", "a.example")
    await domain.get("/domain/a.example/users")
    refused = await domain.post(
        "/domain/a.example/users", username="no way", password=GOOD, recovery="x@elsewhere.example"
    )
    assert refused.status_code == 422
    assert field_error(refused.text, "username")
    assert 'value="x@elsewhere.example"' in input_tag(refused.text, "recovery")

    customer = await logged_in(client, "customer", "acme")
    await customer.get("/customer/")
    refused = await customer.post("/customer/domains", name="not a domain", password=GOOD)
    assert refused.status_code == 422
    assert "not a valid domain name" in field_error(refused.text, "name")
    assert 'value="not a domain"' in input_tag(refused.text, "name")

    provider = await logged_in(client, "provider", "root")
    await provider.get("/provider/customers")
    refused = await provider.post(
        "/provider/customers",
        login="-bad-",
        plan="Bulk Hosting",
        email="a@b.example",
        password=GOOD,
    )
    assert refused.status_code == 422
    assert "letters, digits" in field_error(refused.text, "login")
    assert 'value="a@b.example"' in input_tag(refused.text, "email")
    refused = await provider.post(
        "/provider/customers", login="newco", plan="Bulk Hosting", email="nowhere", password=GOOD
    )
    assert refused.status_code == 422
    assert field_error(refused.text, "email")
    assert 'value="newco"' in input_tag(refused.text, "login")
    refused = await provider.post(
        "/provider/customers", login="newco", plan="No Such", email="a@b.example", password=GOOD
    )
    assert refused.status_code == 404
    assert "does not exist" in field_error(refused.text, "plan")
    customers = await world.runtime.services.accounts.customers(OP)
    assert sorted(c.login for c in customers) == ["acme", "other"]
