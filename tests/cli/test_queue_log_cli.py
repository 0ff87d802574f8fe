"""`mailhost queue log --search --status --domain`: the provider's delivery log, narrowed."""

from __future__ import annotations

import json

from mailhost.model.names import DomainName
from mailhost.runtime import Runtime
from mailhost.services.accounts import AccountService
from mailhost.settings import load_settings
from tests.cli.test_cli import Cli
from tests.cli.test_queue_cli import cli
from tests.conftest import cheap_passwords
from tests.delivery_log import OP, two_tenants_log

PW = "correct horse battery"

__all__ = ["cli"]  # the fixture, shared with test_queue_cli


async def logged(cli: Cli) -> None:
    """Both tenants' attempts, made by the queue as the worker makes them."""
    settings = load_settings(cli.data_dir / "mailhost.toml", cli.data_dir, cli.env)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        accounts = AccountService(rt.units, rt.services.passwords)
        await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@other.test", PW)
        await accounts.add_domain(OP, DomainName.parse("a.example"), "acme", PW)
        await accounts.add_domain(OP, DomainName.parse("b.example"), "other", PW)
        await two_tenants_log(rt)


def recipients(out: str) -> list[str]:
    return [entry["recipient"] for entry in json.loads(out)]


async def test_queue_log_searches_and_filters(cli: Cli) -> None:
    assert "no deliveries yet" in cli.ok("queue", "log")
    await logged(cli)
    assert len(recipients(cli.ok("queue", "log", "--json"))) == 5
    assert recipients(cli.ok("queue", "log", "--json", "--search", "FAR.test")) == [
        "nobody@far.test",
        "carol@far.test",
    ]
    failed = json.loads(cli.ok("queue", "log", "--json", "--status", "failed"))
    assert [(e["recipient"], e["reply"]) for e in failed] == [
        ("nobody@far.test", "550 5.1.1 <nobody@far.test>: no")
    ]
    by_domain = cli.ok("queue", "log", "--json", "--domain", "b.example", "--limit", "1")
    assert recipients(by_domain) == ["secret@rival.test"]
    assert "no deliveries match" in cli.ok("queue", "log", "--search", "nothing-like-it")
    cli.refused(
        "queue",
        "log",
        "--status",
        "lost",
        message="status 'lost' is unknown: use delivered, deferred, failed, deleted",
    )
    cli.refused(
        "queue",
        "log",
        "--domain",
        "nowhere.example",
        message="domain nowhere.example is not hosted here",
    )
