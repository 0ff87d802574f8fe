"""Lists that scale: search, natural order, sortable (usage) columns and paging, in the
panel and the API, never reaching another tenant's rows; usable at 390 px."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from mailhost.model.names import DomainName
from mailhost.model.quantities import ByteSize
from mailhost.services.accounts import AccountService
from tests.web.conftest import OP, PW, Panel, World, addr
from tests.web.test_api import Tokens, api, tokens  # noqa: F401 - the fixture
from tests.web.test_browser import log_in

_ROW_DOMAIN = re.compile(r"<td>(bulk\d+\.example)</td>")


async def add_domains(world: World, *names: str) -> None:
    # Through the service without certificates and DKIM keys, which are slow to make.
    accounts = AccountService(world.runtime.units, world.runtime.services.passwords)
    for name in names:
        await accounts.add_domain(OP, DomainName.parse(name), "acme", PW)


async def add_users(world: World, count: int) -> None:
    for n in range(1, count + 1):
        await world.runtime.services.users.add_user(OP, addr(f"u{n}@a.example"), PW)


async def test_domains_sort_naturally_and_a_search_narrows_within_the_tenant(
    world: World, panel: Panel, client: httpx.AsyncClient
) -> None:
    await add_domains(world, "bulk10.example", "bulk2.example", "bulk11.example", "bulk1.example")
    await panel.login("customer", "acme")
    page = (await panel.get("/customer/")).text
    assert _ROW_DOMAIN.findall(page) == [
        "bulk1.example",
        "bulk2.example",
        "bulk10.example",
        "bulk11.example",
    ]
    found = (await panel.get("/customer/?q=BULK1")).text
    assert _ROW_DOMAIN.findall(found) == ["bulk1.example", "bulk10.example", "bulk11.example"]
    assert "1\u20133 of 3" in found and 'value="BULK1"' in found
    reverse = (await panel.get("/customer/?q=bulk1&sort=name&order=desc")).text
    assert _ROW_DOMAIN.findall(reverse) == ["bulk11.example", "bulk10.example", "bulk1.example"]
    # The header link flips the direction and keeps the search.
    assert 'href="/customer/?q=bulk1&amp;sort=name&amp;order=asc"' in reverse
    # The other customer searching the same words finds nothing of acme's.
    hostile = Panel(client)
    await hostile.login("customer", "other")
    theirs = (await hostile.get("/customer/?q=bulk")).text
    assert "bulk" not in theirs.replace("?q=bulk", "").replace("\u201cbulk\u201d", "").replace(
        'value="bulk"', ""
    )
    assert "Nothing matches" in theirs
    # A hand-made URL is no error: unknown column, bad page.
    odd = await hostile.get("/customer/?sort=evil&order=sideways&page=x")
    assert odd.status_code == 200 and "b.example" in odd.text


async def test_users_are_paged_and_links_keep_the_search(world: World, panel: Panel) -> None:
    await add_users(world, 55)
    await panel.login("domain", "a.example")
    first = (await panel.get("/domain/a.example/users")).text
    assert first.count('<td><a href="/domain/a.example/users/') == 50
    assert "1\u201350 of 57" in first and 'href="/domain/a.example/users?page=2"' in first
    second = (await panel.get("/domain/a.example/users?page=2")).text
    assert "51\u201357 of 57" in second and "u55@a.example" in second
    searched = (await panel.get("/domain/a.example/users?q=u5&sort=name&order=desc")).text
    names = re.findall(r'<td><a href="/domain/a\.example/users/(\w+)">', searched)
    assert names == ["u55", "u54", "u53", "u52", "u51", "u50", "u5"]
    past = (await panel.get("/domain/a.example/users?q=u5&page=9")).text
    assert "1\u20137 of 7" in past  # past the end: the last page


async def test_mailboxes_sort_by_their_usage_columns(world: World, panel: Panel) -> None:
    users = world.runtime.services.users
    for name, quota in (("zed", "1MB"), ("yan", "5MB")):
        await users.add_user(OP, addr(f"{name}@a.example"), PW)
        await users.add_mailbox(OP, addr(f"{name}@a.example"), ByteSize.parse(quota))
    await panel.login("domain", "a.example")
    page = (await panel.get("/domain/a.example/mailboxes?sort=quota")).text
    rows = re.findall(r"<td>(\w+)@a\.example</td>", page)
    assert rows == ["zed", "yan", "alice", "boss"]  # 1MB, 5MB, then 10MB in natural order
    header = '<th aria-sort="ascending" class="num"><a class="sort" href="{}">Quota'
    assert header.format("/domain/a.example/mailboxes?sort=quota&amp;order=desc") in page
    page = (await panel.get("/domain/a.example/mailboxes?sort=quota&order=desc")).text
    assert re.findall(r"<td>(\w+)@a\.example</td>", page) == ["alice", "boss", "yan", "zed"]
    used = (await panel.get("/domain/a.example/mailboxes?sort=used")).text
    assert re.findall(r"<td>(\w+)@a\.example</td>", used) == ["alice", "boss", "yan", "zed"]


async def test_api_lists_search_sort_and_page(
    world: World,
    client: httpx.AsyncClient,
    tokens: Tokens,  # noqa: F811 - the fixture imported above
) -> None:
    await add_domains(world, "bulk10.example", "bulk2.example", "bulk1.example")
    acme = api(client, tokens.acme)
    found = await acme.ok("GET", "/domains?q=BULK&limit=2")
    assert [d["name"] for d in found["items"]] == ["bulk1.example", "bulk2.example"]
    assert found["total"] == 3
    rest = await acme.ok("GET", "/domains?q=bulk&limit=2&offset=2")
    assert [d["name"] for d in rest["items"]] == ["bulk10.example"]
    desc = await acme.ok("GET", "/domains?sort=name&order=desc")
    assert [d["name"] for d in desc["items"]][:2] == ["bulk10.example", "bulk2.example"]
    manager = api(client, tokens.domain_a)
    await world.runtime.services.users.add_user(OP, addr("zed@a.example"), PW)
    await world.runtime.services.users.add_mailbox(OP, addr("zed@a.example"), ByteSize(10**6))
    by_quota = await manager.ok("GET", "/domains/a.example/mailboxes?sort=quota")
    assert [m["username"] for m in by_quota["items"]] == ["zed", "alice", "boss"]
    users = await manager.ok("GET", "/domains/a.example/users?q=ALI")
    assert [u["username"] for u in users["items"]] == ["alice"]
    usage = await api(client, tokens.provider).ok("GET", "/usage?sort=domains&order=desc")
    assert [u["customer"] for u in usage["items"]][:2] == ["acme", "other"]
    for query, field in (
        ("sort=evil", "query.sort"),
        ("order=up", "query.order"),
        ("limit=0", "query.limit"),
        ("limit=501", "query.limit"),
        ("offset=-1", "query.offset"),
        ("q=" + "x" * 201, "query.q"),
    ):
        message = await acme.refused("GET", f"/domains?{query}", status=422, code="invalid_input")
        assert message.startswith(f"{field}: "), message
    message = await acme.refused("GET", "/domains?sort=evil", status=422, code="invalid_input")
    assert (
        message
        == "query.sort: 'evil' is not a column to sort by; use one of name, customer, status"
    )


async def test_a_search_never_reveals_another_tenants_rows(
    world: World,
    client: httpx.AsyncClient,
    tokens: Tokens,  # noqa: F811 - the fixture imported above
) -> None:
    other = api(client, tokens.other)
    assert (await other.ok("GET", "/domains?q=a.example"))["total"] == 0
    assert (await other.ok("GET", "/customers?q=acme"))["total"] == 0
    assert (await other.ok("GET", "/usage?q=acme"))["total"] == 0
    history = await other.ok("GET", "/audit?q=alice&limit=500")
    assert history["total"] == 0
    await other.refused(
        "GET", "/domains/a.example/users?q=alice", status=404, code="domain_not_found"
    )
    domain_b = api(client, tokens.domain_b)
    assert (await domain_b.ok("GET", "/domains?q=a.ex"))["total"] == 0


async def test_a_long_list_is_usable_at_phone_width(page: Page, world: World) -> None:
    await add_users(world, 55)
    await page.set_viewport_size({"width": 390, "height": 844})
    await log_in(page, "domain", "a.example")
    await page.goto("/domain/a.example/users")
    await page.get_by_label("Find a user").fill("u")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator(".list-count")).to_have_text("1\u201350 of 55 matching \u201cu\u201d")
    following = page.get_by_role("link", name="Next \u203a")
    box = await following.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390 and box["height"] >= 40
    await following.click()
    await expect(page).to_have_url(re.compile(r"/domain/a\.example/users\?q=u&page=2$"))
    last = "51\u201355 of 55 matching \u201cu\u201d"
    await expect(page.locator(".list-count")).to_have_text(last)
    await page.get_by_role("link", name="Username").click()  # sorted the other way
    await expect(page.locator("#users tbody tr").first).to_contain_text("u55")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
