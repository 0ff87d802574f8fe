"""Edit in place: an SMTP account's facilities and a mailbox's quota, changed from a form
filled in with what they are now; a refusal is shown at its field with what was typed,
and the other tenant's accounts cannot be reached."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName
from mailhost.model.quantities import ByteSize
from tests.web.conftest import OP, World, addr, logged_in
from tests.web.test_browser import log_in

A = DomainName.parse("a.example")
ALICE = addr("alice@a.example")


def input_value(html: str, name: str) -> str:
    found = re.search(rf'<input name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no input {name}"
    return found.group(1)


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="{name}-error" role="alert">([^<]*)<', html)
    assert found is not None, f"no refusal at {name}"
    return found.group(1)


async def give_alice_an_account(world: World) -> None:
    facilities = SmtpFacilities(hourly_limit=60, max_message_size=ByteSize.parse("10MB"))
    await world.runtime.services.users.add_smtp_account(OP, ALICE, facilities)


async def test_facilities_form_is_filled_in_and_a_change_applies(
    world: World, client: httpx.AsyncClient
) -> None:
    await give_alice_an_account(world)
    panel = await logged_in(client, "domain", "a.example")
    listing = await panel.get("/domain/a.example/smtp")
    assert 'href="/domain/a.example/smtp/alice"' in listing.text
    form = await panel.get("/domain/a.example/smtp/alice")
    assert form.status_code == 200
    assert input_value(form.text, "hourly") == "60"
    assert input_value(form.text, "max_size") == "10MB"
    assert 'name="relay" value="yes" checked' in form.text
    changed = await panel.post(
        "/domain/a.example/smtp/alice", sender="domain", hourly="", max_size="20MB"
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == "/domain/a.example/smtp?done=smtp_changed"
    account = await world.runtime.services.users.smtp_account(OP, ALICE)
    assert account.facilities == SmtpFacilities(
        relay=False,
        sender_scope=SenderScope.DOMAIN,
        max_message_size=ByteSize.parse("20MB"),
    )
    page = await panel.get(changed.headers["location"])
    assert "facilities were changed" in page.text


async def test_a_bad_facility_is_refused_at_its_field_with_the_values_kept(
    world: World, client: httpx.AsyncClient
) -> None:
    await give_alice_an_account(world)
    panel = await logged_in(client, "domain", "a.example")
    await panel.get("/domain/a.example/smtp/alice")
    refused = await panel.post(
        "/domain/a.example/smtp/alice", relay="yes", hourly="many", max_size="12MB"
    )
    assert refused.status_code == 422
    assert "must be a whole number" in field_error(refused.text, "hourly")
    assert re.search(r'<input name="hourly" value="many"[^>]* aria-invalid="true"', refused.text)
    assert input_value(refused.text, "max_size") == "12MB"
    account = await world.runtime.services.users.smtp_account(OP, ALICE)
    assert account.facilities.hourly_limit == 60  # nothing changed


async def test_the_add_form_keeps_what_was_typed_after_a_refusal(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    await panel.get("/domain/a.example/smtp")
    refused = await panel.post(
        "/domain/a.example/smtp", add="smtp", username="alice", sender="domain", max_size="big"
    )
    assert refused.status_code == 422
    assert "is not a size" in field_error(refused.text, "max_size")
    assert input_value(refused.text, "max_size") == "big"
    assert 'name="sender" value="domain" checked' in refused.text


async def test_mailbox_quota_is_changed_from_a_filled_in_form(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    listing = await panel.get("/domain/a.example/mailboxes")
    assert 'href="/domain/a.example/mailboxes/alice"' in listing.text
    allocation = re.search(r'<p class="hint" id="allocation">(.*?)</p>', listing.text, re.S)
    assert allocation is not None
    # Bulk Hosting's 2.5GB, of which acme's two 10MB mailboxes hold 20MB.
    assert "2.5GB of storage, 20MB given" in allocation.group(1)
    assert "2.48GB left to give" in allocation.group(1)
    form = await panel.get("/domain/a.example/mailboxes/alice")
    assert input_value(form.text, "quota") == "10MB"
    changed = await panel.post("/domain/a.example/mailboxes/alice", quota="20MB")
    assert changed.status_code == 303
    mailbox = await world.runtime.services.users.mailbox(OP, ALICE)
    assert mailbox.quota == ByteSize.parse("20MB")


async def test_a_quota_refusal_is_shown_at_the_field_and_changes_nothing(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    await panel.get("/domain/a.example/mailboxes/alice")
    for typed in ("0", "lots", "10TB"):
        refused = await panel.post("/domain/a.example/mailboxes/alice", quota=typed)
        assert refused.status_code in (403, 409, 422), typed
        assert field_error(refused.text, "quota"), typed
        assert input_value(refused.text, "quota") == typed
    mailbox = await world.runtime.services.users.mailbox(OP, ALICE)
    assert mailbox.quota == ByteSize.parse("10MB")


async def test_another_tenant_cannot_reach_the_edit_forms(
    world: World, client: httpx.AsyncClient
) -> None:
    await give_alice_an_account(world)
    hostile = await logged_in(client, "domain", "b.example")
    for url in ("/domain/a.example/smtp/alice", "/domain/a.example/mailboxes/alice"):
        assert (await hostile.get(url)).status_code in (403, 404), url
    changed = await hostile.post("/domain/a.example/smtp/alice", relay="", hourly="1")
    assert changed.status_code in (403, 404)
    changed = await hostile.post("/domain/a.example/mailboxes/alice", quota="1MB")
    assert changed.status_code in (403, 404)
    # Its own domain's URL with the victim's username: no such user there.
    assert (await hostile.get("/domain/b.example/smtp/alice")).status_code == 404
    account = await world.runtime.services.users.smtp_account(OP, ALICE)
    assert account.facilities.hourly_limit == 60
    mailbox = await world.runtime.services.users.mailbox(OP, ALICE)
    assert mailbox.quota == ByteSize.parse("10MB")


async def test_changing_facilities_in_a_browser_at_phone_width(page: Page, world: World) -> None:
    await give_alice_an_account(world)
    await page.set_viewport_size({"width": 390, "height": 844})
    await log_in(page, "domain", "a.example")
    await page.goto("/domain/a.example/smtp")
    await page.get_by_role("link", name="Change the facilities of alice@a.example").click()
    await expect(page.get_by_label("H: messages per hour")).to_have_value("60")
    await page.get_by_label("H: messages per hour").fill("often")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#hourly-error")).to_contain_text("whole number")
    await expect(page.get_by_label("H: messages per hour")).to_have_value("often")
    await page.get_by_label("H: messages per hour").fill("30")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("facilities were changed")
    row = page.locator("#smtp-accounts tr", has_text="alice@a.example")
    await expect(row.locator(".tag")).to_have_text(["R", "H30", "S10MB"])
