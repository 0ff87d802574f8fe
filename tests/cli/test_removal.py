"""`mailhost domain remove` and `mailhost customer remove`: the amount of mail is named and
confirmed (or `--yes`) before anything is deleted; the real command in a subprocess."""

from __future__ import annotations

import asyncio
import json

from mailhost.model.actors import ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from tests.cli.test_cli import PW, Cli, cli
from tests.conftest import cheap_passwords

__all__ = ["cli"]  # the fixture, shared with test_cli.py

OP = ProviderActor("test")
PASSWORD = PW.strip()
MESSAGE = b"Subject: kept until removed\r\n\r\n" + b"x" * 1968 + b"\r\n"  # 2000 bytes


def hosting(cli: Cli) -> None:
    """acme with example.com (zed and amy, a 2000-byte message each) and empty.com; made
    through the services in-process, which is quicker than a command per step."""

    async def main() -> None:
        settings = load_settings(None, cli.data_dir, cli.env)
        async with Runtime(settings, passwords=cheap_passwords()) as rt:
            accounts, users = rt.services.accounts, rt.services.users
            await accounts.add_customer(OP, "acme", "Bulk Hosting", "b@acme.test", PASSWORD)
            for domain in ("example.com", "empty.com"):
                await accounts.add_domain(OP, DomainName.parse(domain), "acme", PASSWORD)
            for address in ("zed@example.com", "amy@example.com"):
                await users.add_user(OP, EmailAddress.hosted(address), PASSWORD)
                box = await users.add_mailbox(
                    OP, EmailAddress.hosted(address), ByteSize.parse("100MB")
                )
                await rt.services.delivery.deliver_local([box], MESSAGE)

    asyncio.run(main())


def maildirs(cli: Cli) -> list[str]:
    return sorted(p.name for p in (cli.data_dir / "mail").glob("*/*"))


def test_domain_removal_names_the_mail_and_needs_a_yes_to_delete_it(cli: Cli) -> None:
    hosting(cli)
    figure = "domain example.com: 2 mailboxes, 4KB of mail will be deleted for good"
    for answer in ("", "n\n"):
        refused = cli("domain", "remove", "example.com", stdin=answer)
        assert refused.code == 1, refused.err
        assert figure in refused.out
        assert "error: domain example.com was not removed; --yes removes it" in refused.err
        assert len(maildirs(cli)) == 2
    asked = cli.ok("domain", "remove", "example.com", stdin="y\n")
    assert figure in asked
    assert "domain example.com removed" in asked
    assert maildirs(cli) == []
    # Without mail nothing is asked.
    quiet = cli.ok("domain", "remove", "empty.com")
    assert "domain empty.com: 0 mailboxes, no mail" in quiet
    assert json.loads(cli.ok("domain", "list", "--json")) == []


def test_customer_removal_takes_its_domains_mail_and_files(cli: Cli) -> None:
    hosting(cli)
    cli.ok("customer", "add", "other", "--plan", "Bulk Hosting", "--email", "o@other.test",
           "--password-stdin", stdin=PW)  # fmt: skip
    figure = "customer acme: 2 domains, 2 mailboxes, 4KB of mail will be deleted for good"
    refused = cli("customer", "remove", "acme")
    assert refused.code == 1
    assert figure in refused.out
    assert "error: customer acme was not removed; --yes removes it" in refused.err

    out = cli.ok("customer", "remove", "acme", "--yes")

    assert figure in out
    assert "customer 'acme' removed" in out
    logins = [c["login"] for c in json.loads(cli.ok("customer", "list", "--json"))]
    assert logins == ["other"]
    assert json.loads(cli.ok("domain", "list", "--json")) == []
    assert maildirs(cli) == []
    assert not (cli.data_dir / "certs" / "mail.example.com.pem").exists()
    cli.refused("customer", "remove", "acme", "--yes", message="customer 'acme' does not exist")
    # The login and the domain are free for a new customer, who starts with nothing.
    cli.ok("customer", "add", "acme", "--plan", "Bulk Hosting", "--email", "n@acme.test",
           "--password-stdin", stdin=PW)  # fmt: skip
    cli.ok("domain", "add", "example.com", "--customer", "acme", "--password-stdin", stdin=PW)
    [usage] = json.loads(cli.ok("usage", "--customer", "acme", "--json"))
    assert (usage["domains"], usage["accounts"], usage["storage_bytes"]) == (1, 0, 0)
