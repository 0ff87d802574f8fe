"""Customer Level and provider admin pages: usage against the plan, domains, plans, customers."""

from __future__ import annotations

import html
import re

import httpx

from mailhost.model.names import DomainName
from mailhost.model.plans import PlanLimits
from tests.web.conftest import OP, PW, World, logged_in


def meter(html: str, label: str) -> tuple[str, str]:
    """(value, max) of the usage bar with this label."""
    found = re.search(
        rf"<span>{re.escape(label)}</span>.*?<meter min=\"0\" max=\"([^\"]+)\" value=\"([^\"]+)\"",
        html,
        re.S,
    )
    assert found, f"no usage bar {label!r}"
    return found.group(2), found.group(1)


async def test_customer_sees_usage_against_its_plan_as_bars(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    page = await panel.get("/customer/")
    assert "Plan: Bulk Hosting" in page.text
    assert meter(page.text, "Domains") == ("1", "40")
    assert meter(page.text, "POP3/SMTP accounts") == ("2", "400")
    assert meter(page.text, "Data storage") == ("0", "2500000000")
    month = world.runtime.services.usage.current_month()
    assert meter(page.text, f"Data transfer in {month}") == ("0", "40000000000")
    assert "b.example" not in page.text  # another customer's domain


async def test_customer_adds_a_domain_and_is_refused_clearly_at_the_plan_limit(
    world: World, client: httpx.AsyncClient
) -> None:
    accounts = world.runtime.services.accounts
    await accounts.add_plan(OP, "Two", PlanLimits(2, None, None, None))
    await accounts.change_plan(OP, "acme", "Two")
    panel = await logged_in(client, "customer", "acme")
    added = await panel.post("/customer/domains", name="Second.Example", password=PW)
    assert (added.status_code, added.headers["location"]) == (303, "/customer/?done=domain_added")
    page = await panel.get(added.headers["location"])
    assert "The domain was added." in page.text
    assert "Your plan Two allows 2 domains and you have 2." in page.text
    refused = await panel.post("/customer/domains", name="third.example", password=PW)
    assert refused.status_code == 409
    assert "plan Two allows 2 domains; customer acme has 2" in refused.text
    assert 'value="third.example"' in refused.text  # what was typed stays in the form
    names = [d.name.ascii for d in await accounts.domains(OP, "acme")]
    assert names == ["a.example", "second.example"]


async def test_customer_removes_a_domain_only_when_confirmed(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    unconfirmed = await panel.post("/customer/domains/a.example/remove")
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == "/customer/domains/a.example/remove"
    removed = await panel.post("/customer/domains/a.example/remove", confirm="yes")
    assert removed.status_code == 303
    assert await world.runtime.services.accounts.domains(OP, "acme") == []


async def test_customer_reads_its_own_audit_log_only(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    await panel.post("/domain/a.example/users", username="frank", password=PW)
    page = await panel.get("/customer/audit")
    # In words, not codes (services/audit_text.py); the code stays for scripts.
    assert re.search(
        r'<td class="audit-entry" data-action="user\.add">frank@a\.example: user added, '
        r"by customer acme</td>",
        page.text,
    )
    assert "<code>user.add</code>" not in page.text
    assert "alice@a.example" in page.text
    assert "b.example" not in page.text


async def test_provider_adds_a_plan_and_a_customer(world: World, client: httpx.AsyncClient) -> None:
    panel = await logged_in(client, "provider", "root")
    await panel.get("/provider/plans")
    added = await panel.post(
        "/provider/plans", name="Small", domains="3", storage="500MB", transfer="", accounts="10"
    )
    assert added.status_code == 303
    plan = next(p for p in await world.runtime.services.accounts.plans(OP) if p.name == "Small")
    assert (plan.limits.max_domains, str(plan.limits.storage)) == (3, "500MB")
    assert plan.limits.transfer is None
    bad = await panel.post("/provider/plans", name="Odd", domains="lots")
    assert bad.status_code == 422
    assert "'lots' is not a whole number" in html.unescape(bad.text)
    control = await panel.post("/provider/plans", name="Bad\x00name")
    assert control.status_code == 422
    assert "a plan name must not contain control characters" in control.text
    await panel.get("/provider/customers")
    created = await panel.post(
        "/provider/customers", login="newco", plan="Small", email="it@newco.example", password=PW
    )
    assert created.status_code == 303
    customer = await world.runtime.services.accounts.customer(OP, "newco")
    assert (customer.plan.name, customer.contact_email) == ("Small", "it@newco.example")


async def test_provider_disables_enables_and_moves_customers(
    world: World, client: httpx.AsyncClient
) -> None:
    accounts = world.runtime.services.accounts
    await accounts.add_plan(OP, "Tiny", PlanLimits(1, None, None, 1))
    panel = await logged_in(client, "provider", "root")
    await panel.get("/provider/customers")
    asked = await panel.post("/provider/customers/other/enabled", enabled="no")
    assert asked.headers["location"] == "/provider/customers/other/disable"
    assert (await accounts.customer(OP, "other")).enabled
    disabled = await panel.post("/provider/customers/other/enabled", enabled="no", confirm="yes")
    assert disabled.status_code == 303
    assert not (await accounts.customer(OP, "other")).enabled
    page = await panel.get("/provider/customers")
    assert '<span class="off">disabled</span>' in page.text
    await panel.post("/provider/customers/other/enabled", enabled="yes")
    assert (await accounts.customer(OP, "other")).enabled
    # acme has 2 mailboxes: a plan allowing 1 account does not fit.
    refused = await panel.post("/provider/customers/acme/plan", plan="Tiny")
    assert refused.status_code == 409
    assert "plan Tiny allows 1 POP3/SMTP accounts; customer acme has 2" in refused.text
    moved = await panel.post("/provider/customers/other/plan", plan="Tiny")
    assert moved.status_code == 409  # other has 2 mailboxes and an SMTP account
    await world.runtime.services.accounts.add_plan(OP, "Roomy", PlanLimits(5, None, None, 50))
    moved = await panel.post("/provider/customers/other/plan", plan="Roomy")
    assert moved.status_code == 303
    assert (await accounts.customer(OP, "other")).plan.name == "Roomy"


async def test_provider_overview_shows_usage_queue_and_changes(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "provider", "root")
    page = await panel.get("/provider/")
    assert "<td>acme</td>" in page.text and "<td>other</td>" in page.text
    assert "Mail queue" in page.text
    assert "The outbound queue is empty" in page.text
    assert "customer.add" in page.text


async def test_domain_names_are_shown_in_unicode_and_stored_as_a_labels(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "customer", "acme")
    await panel.post("/customer/domains", name="bücher.example", password=PW)
    page = await panel.get("/customer/")
    assert "bücher.example" in page.text
    assert 'href="/domain/xn--bcher-kva.example/"' in page.text
    domain = await world.runtime.services.accounts.domain(OP, DomainName.parse("bücher.example"))
    assert domain.name.ascii == "xn--bcher-kva.example"
