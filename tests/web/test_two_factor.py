"""Two-factor logins and app passwords in the panel: over httpx (forms, cookies, CSRF like
a browser without JavaScript), and once in a real browser (headless Chromium via
Playwright against a real uvicorn server) that reads the key off the page and computes
the code with pyotp.

`[auth] require_two_factor` names provider and customer logins here: those enrol at
their first login; domain and user logins turn it on from their own page.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.async_api import Page, expect

from mailhost.model.actors import UserActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login
from mailhost.settings import Settings, load_settings
from tests.web.conftest import HOSTNAME, OP, PW, Panel, World, logged_in

SECRET = re.compile(r'<code id="secret">([A-Z2-7 ]+)</code>')
APP_PASSWORD = re.compile(r'<code id="new-app-password">([a-z ]+)</code>')
CODES = re.compile(r"<li><code>([a-z2-9-]+)</code></li>")
WEB = ClientInfo("127.0.0.1", "web")
# As tests/web/test_browser.py starts Debian's Chromium.


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    environ = {
        "MAILHOST_DATABASE_URL": database_url,
        "MAILHOST_SERVER_HOSTNAME": HOSTNAME,
        "MAILHOST_WEB_PORT": "0",
        "MAILHOST_AUTH_PENALTY_MAX_SECONDS": "0.2",
        "MAILHOST_AUTH_REQUIRE_TWO_FACTOR": "provider,customer",
    }
    return load_settings(None, data_dir, environ)


def next_code(secret: str) -> str:
    """A code the server takes even right after the set-up used the current one: the
    next step's (RFC 6238 §5.2 lets one step either side through)."""
    return pyotp.TOTP(secret.replace(" ", "")).at(time.time() + 30)


async def user_with_two_factor(rt: Runtime, address: str) -> str:
    """Two-factor on for a user, through the service; its secret."""
    user = await rt.services.users.user(OP, EmailAddress.hosted(address))
    login = Login(
        "user", user.id, UserActor(user.id, user.domain_id, user.customer_id, user.address)
    )
    secret = (await rt.web_access.two_factor.start(login)).secret
    await rt.web_access.two_factor.confirm(login, pyotp.TOTP(secret).now(), WEB)
    return secret


async def test_a_login_with_two_factor_opens_no_session_before_its_code(
    world: World, panel: Panel, runtime: Runtime
) -> None:
    secret = await user_with_two_factor(runtime, "alice@a.example")
    answer = await panel.login("user", "alice@a.example")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login/two-factor/code")
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    assert not any(c.startswith("mailhost_session=") for c in cookies)
    pending = next(c for c in cookies if c.startswith("mailhost_pending="))
    assert {"httponly", "samesite=strict", "path=/login/two-factor"} <= {
        part.strip().lower() for part in pending.split(";")[1:]
    }
    assert (await panel.get("/user/")).status_code == 303  # no session: to the login page
    form = await panel.get("/login/two-factor/code")
    assert form.status_code == 200 and 'autocomplete="one-time-code"' in form.text
    wrong = await panel.post("/login/two-factor/code", code="000000")
    assert wrong.status_code == 401 and "The code is not correct" in wrong.text
    right = await panel.post("/login/two-factor/code", code=next_code(secret))
    assert (right.status_code, right.headers["location"]) == (303, "/user/")
    assert (await panel.get("/user/")).status_code == 200
    # The pending login is spent with the session: going back to the form starts over.
    again = await panel.get("/login/two-factor/code")
    assert (again.status_code, again.headers["location"]) == (303, "/")


async def test_a_required_customer_sets_two_factor_up_before_anything_else(
    world: World, panel: Panel
) -> None:
    answer = await panel.login("customer", "acme")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login/two-factor/enrol")
    assert (await panel.get("/customer/")).status_code == 303
    assert (await panel.get("/login/two-factor/code")).headers[
        "location"
    ] == "/login/two-factor/enrol"
    page = await panel.get("/login/two-factor/enrol")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert '<svg width="' in page.text and 'class="qr"' in page.text  # drawn on the server
    assert "<script" not in page.text
    match = SECRET.search(page.text)
    assert match
    secret = match.group(1)
    done = await panel.post(
        "/login/two-factor/enrol", code=pyotp.TOTP(secret.replace(" ", "")).now()
    )
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    codes = CODES.findall(done.text)
    assert len(codes) == 10
    assert (await panel.get("/customer/")).status_code == 200
    # Next time: password, then a code (here a recovery code, once).
    await panel.post("/logout")
    assert (await panel.login("customer", "acme")).headers["location"] == "/login/two-factor/code"
    await panel.get("/login/two-factor/code")
    assert (await panel.post("/login/two-factor/code", code=codes[0])).headers[
        "location"
    ] == "/customer/"
    await panel.post("/logout")
    await panel.login("customer", "acme")
    await panel.get("/login/two-factor/code")
    assert (await panel.post("/login/two-factor/code", code=codes[0])).status_code == 401


async def test_a_domain_login_turns_two_factor_on_and_off_on_its_own_page(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "domain", "a.example")
    page = await panel.get("/two-factor")
    assert "Two-factor authentication is off." in page.text
    started = await panel.post("/two-factor/start")
    assert started.headers["location"] == "/two-factor"
    page = await panel.get("/two-factor")
    match = SECRET.search(page.text)
    assert match and page.headers["cache-control"] == "no-store"
    wrong = await panel.post("/two-factor/confirm", code="123456")
    assert wrong.status_code == 422 and "the code is not correct" in wrong.text
    done = await panel.post(
        "/two-factor/confirm", code=pyotp.TOTP(match.group(1).replace(" ", "")).now()
    )
    assert len(CODES.findall(done.text)) == 10
    assert "Two-factor authentication is on." in (await panel.get("/two-factor")).text
    refused = await panel.post("/two-factor/off", proof="not the password")
    assert refused.status_code == 422
    off = await panel.post("/two-factor/off", proof=PW)
    assert off.headers["location"] == "/two-factor?done=two_factor_off"
    assert (await panel.login("domain", "a.example")).headers["location"] == "/domain/a.example/"


async def test_app_passwords_are_shown_once_and_managed_by_the_domain_not_by_others(
    world: World, client: httpx.AsyncClient
) -> None:
    panel = await logged_in(client, "user", "alice@a.example")
    made = await panel.post("/user/app-passwords", name="Phone")
    assert made.status_code == 303 and "shown=" in made.headers["location"]
    assert not APP_PASSWORD.search(made.headers["location"])  # never in the URL
    shown = await panel.get(made.headers["location"])
    match = APP_PASSWORD.search(shown.text)
    assert shown.status_code == 200 and match and shown.headers["cache-control"] == "no-store"
    reloaded = await panel.get(made.headers["location"])  # a reload shows it no more
    assert "Phone" in reloaded.text and match.group(1) not in reloaded.text
    alice = EmailAddress.parse("alice@a.example")
    assert len(await world.runtime.web_access.app_passwords.app_passwords(OP, alice)) == 1
    outcome = await world.runtime.services.authentication.authenticate(
        "alice@a.example", match.group(1), ClientInfo("127.0.0.5", "pop3")
    )
    assert type(outcome).__name__ == "Authenticated"

    manager = await logged_in(client, "domain", "b.example")
    assert (await manager.get("/domain/a.example/users/alice")).status_code == 404
    assert (await manager.get("/domain/b.example/users/alice")).status_code == 404
    own = await logged_in(client, "domain", "a.example")
    page = await own.get("/domain/a.example/users/alice")
    assert page.status_code == 200 and "Phone" in page.text and "127.0.0.5" in page.text
    revoke = re.search(
        r'href="(/domain/a\.example/users/alice/app-passwords/\d+/revoke)"', page.text
    )
    assert revoke
    intruder = await logged_in(client, "domain", "b.example")
    forged = revoke.group(1).replace("a.example", "b.example").replace("alice", "bob")
    assert (await intruder.get(forged)).status_code == 404
    assert (await intruder.post(forged, confirm="yes")).status_code == 404
    own = await logged_in(client, "domain", "a.example")
    assert (
        "Revoke the app password “Phone” of alice@a.example?"
        in (await own.get(revoke.group(1))).text
    )
    gone = await own.post(revoke.group(1), confirm="yes")
    assert gone.headers["location"].endswith("done=app_password_revoked")
    outcome = await world.runtime.services.authentication.authenticate(
        "alice@a.example", match.group(1), ClientInfo("127.0.0.5", "pop3")
    )
    assert type(outcome).__name__ == "BadCredentials"


async def log_in(page: Page, level: str, login: str) -> None:
    await page.goto(f"/login/{level}")
    await page.get_by_label(re.compile("login|Domain name|Email address", re.I)).first.fill(login)
    await page.get_by_label("Password").fill(PW)
    await page.get_by_role("button", name="Log in").click()


async def test_a_user_sets_two_factor_up_and_logs_in_with_a_code_in_a_browser(page: Page) -> None:
    await log_in(page, "user", "alice@a.example")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Two-factor").click()
    await page.get_by_role("button", name="Set up two-factor authentication").click()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = (await page.locator("#secret").inner_text()).replace(" ", "")
    await page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await page.get_by_role("link", name="I have kept them: continue").click()
    await expect(page.get_by_text("Two-factor authentication is on.")).to_be_visible()
    await page.get_by_role("button", name="Log out").click()

    await log_in(page, "user", "alice@a.example")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor code")
    await page.get_by_label("Code").fill("000000")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("The code is not correct")
    await page.get_by_label("Code").fill(next_code(secret))
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("alice@a.example")
