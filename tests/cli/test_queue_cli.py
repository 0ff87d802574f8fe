"""`mailhost queue ...` and the DKIM records of `mailhost domain`, as the real command."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mailhost.model.names import EmailAddress
from mailhost.runtime import Runtime
from mailhost.settings import load_settings
from tests.cli.test_cli import PW, Cli
from tests.conftest import cheap_passwords


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    env["COLUMNS"] = "200"
    runner = Cli(tmp_path / "data", env)
    runner.ok("init", "--hostname", "mx.hosting.test")
    customer = ["customer", "add", "acme", "--plan", "Bulk Hosting", "--email", "b@acme.test"]
    runner.ok(*customer, "--password-stdin", stdin=PW)
    return runner


def txt_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "._domainkey." in line]


def test_domain_add_prints_the_dkim_records_and_domain_dkim_repeats_them(cli: Cli) -> None:
    added = cli.ok(
        "domain", "add", "example.com", "--customer", "acme", "--password-stdin", stdin=PW
    )
    lines = txt_lines(added)
    assert len(lines) == 2
    ed25519 = r'mailhost-ed25519\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=ed25519; p='
    assert re.fullmatch(ed25519 + r'[A-Za-z0-9+/=]{44}"', lines[0])
    assert lines[1].startswith('mailhost-rsa._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert txt_lines(cli.ok("domain", "dkim", "example.com")) == lines
    cli.refused("domain", "dkim", "nothere.test", message="domain nothere.test is not hosted here")


async def queue_two(cli: Cli) -> None:
    """Queue mail the way mailhost's own notices are queued (the CLI never sends)."""
    settings = load_settings(cli.data_dir / "mailhost.toml", cli.data_dir, cli.env)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        recipients = [EmailAddress.parse("a@remote.test"), EmailAddress.parse("b@remote.test")]
        await rt.services.delivery.send("", recipients, b"Subject: n\r\n\r\nx\r\n")


async def test_queue_list_retry_delete_and_log(cli: Cli) -> None:
    assert "the queue is empty" in cli.ok("queue", "list")
    await queue_two(cli)
    rows = json.loads(cli.ok("queue", "list", "--json"))
    assert [(r["recipient"], r["sender"], r["attempts"]) for r in rows] == [
        ("a@remote.test", "<>", 0),
        ("b@remote.test", "<>", 0),
    ]
    first, second = (r["id"] for r in rows)
    assert "1 queued delivery due now" in cli.ok("queue", "retry", str(first))
    assert "2 queued deliveries due now" in cli.ok("queue", "retry", "--all")
    cli.refused("queue", "retry", message="give a queue id or --all (not both)")
    assert f"deleted queued delivery {second} to b@remote.test" in cli.ok(
        "queue", "delete", str(second)
    )
    cli.refused("queue", "delete", str(second), message=f"no queued delivery {second}")
    assert [r["id"] for r in json.loads(cli.ok("queue", "list", "--json"))] == [first]
    log = json.loads(cli.ok("queue", "log", "--json"))
    assert [(e["id"], e["recipient"], e["status"]) for e in log] == [
        (second, "b@remote.test", "deleted")
    ]
    assert "b@remote.test" in cli.ok("queue", "log")
