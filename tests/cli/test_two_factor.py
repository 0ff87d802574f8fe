"""`mailhost two-factor off`: the operator's way out for a login that lost its phone and
its recovery codes, through the real command."""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest

from mailhost.model.actors import CustomerActor, ProviderActor, UserActor
from mailhost.model.logins import ClientInfo
from mailhost.model.names import DomainName, EmailAddress
from mailhost.runtime import Runtime
from mailhost.services.sessions import Login
from mailhost.settings import load_settings
from tests.cli.test_cli import Cli
from tests.conftest import cheap_passwords

OP = ProviderActor("test")
PW = "correct horse battery"
WEB = ClientInfo("127.0.0.1", "web")


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    runner = Cli(tmp_path / "data", env)
    runner.ok("init", "--hostname", "mx.hosting.test")
    return runner


async def enrol_acme_and_al(cli: Cli) -> tuple[Login, Login]:
    settings = load_settings(None, cli.data_dir, cli.env)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        customer = await rt.services.accounts.add_customer(
            OP, "acme", "Bulk Hosting", "b@acme.test", PW
        )
        domain = await rt.services.accounts.add_domain(
            OP, DomainName.parse("a.example"), "acme", PW
        )
        user = await rt.services.users.add_user(OP, EmailAddress.hosted("al@a.example"), PW)
        logins = (
            Login("customer", customer.id, CustomerActor(customer.id, "acme")),
            Login("user", user.id, UserActor(user.id, domain.id, customer.id, user.address)),
        )
        for login in logins:
            secret = (await rt.web_access.two_factor.start(login)).secret
            await rt.web_access.two_factor.confirm(login, pyotp.TOTP(secret).now(), WEB)
        return logins


async def enabled(cli: Cli, login: Login) -> bool:
    settings = load_settings(None, cli.data_dir, cli.env)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        return (await rt.web_access.two_factor.status(login)).enabled


async def test_the_operator_turns_two_factor_off_for_a_login(cli: Cli) -> None:
    acme, al = await enrol_acme_and_al(cli)
    out = cli.ok("two-factor", "off", "customer", "acme")
    assert "two-factor authentication is off for customer acme" in out
    assert not await enabled(cli, acme)
    assert await enabled(cli, al)
    cli.ok("two-factor", "off", "user", "AL@a.example")
    assert not await enabled(cli, al)
    cli.refused(
        "two-factor", "off", "customer", "nobody", message="customer login 'nobody' does not exist"
    )
    cli.refused(
        "two-factor", "off", "user", "x@a.example", message="user x@a.example does not exist"
    )
    assert cli("two-factor", "off", "robot", "acme").code == 2
