"""The real `mailhost` command in a subprocess, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PW = "correct horse battery\n"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Cli:
    data_dir: Path
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str = "") -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "mailhost", "--data-dir", str(self.data_dir), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, stdin: str = "") -> str:
        result = self(*args, stdin=stdin)
        assert result.code == 0, result.err
        return result.out

    def refused(self, *args: str, message: str, stdin: str = "") -> None:
        result = self(*args, stdin=stdin)
        assert result.code == 1, (result.out, result.err)
        text = " ".join(result.err.split())
        assert text.startswith("error: ")
        assert message in text
        assert "Traceback" not in result.err


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    env["COLUMNS"] = "200"
    runner = Cli(tmp_path / "data", env)
    runner.ok("init", "--hostname", "mx.hosting.test")
    return runner


def test_session_from_the_issue_works_end_to_end(cli: Cli) -> None:
    cli.ok(
        "plan",
        "add",
        "Starter",
        "--domains",
        "2",
        "--storage",
        "1GB",
        "--transfer",
        "10GB",
        "--accounts",
        "4",
    )
    plans = json.loads(cli.ok("plan", "list", "--json"))
    assert {
        "name": "Starter",
        "max_domains": 2,
        "storage_bytes": 10**9,
        "transfer_bytes": 10**10,
        "max_accounts": 4,
    } in plans
    cli.ok(
        "customer",
        "add",
        "acme",
        "--plan",
        "Starter",
        "--email",
        "boss@acme.test",
        "--password-stdin",
        stdin=PW,
    )
    cli.ok("domain", "add", "Example.com", "--customer", "acme", "--password-stdin", stdin=PW)
    cli.ok("user", "add", "bob@example.com", "--password-stdin", stdin=PW)
    cli.ok("user", "add", "ann@example.com", "--password-stdin", stdin=PW)
    cli.ok("user", "passwd", "bob@example.com", "--password-stdin", stdin="another long secret\n")
    cli.ok("mailbox", "add", "bob@example.com", "--quota", "250MB")
    out = cli.ok(
        "smtp",
        "add",
        "bob@example.com",
        "--sender",
        "domain",
        "--hourly",
        "120",
        "--max-recipients",
        "50",
        "--max-size",
        "10MB",
    )
    assert "[R D H120 N50 S10MB]" in out
    accounts = json.loads(cli.ok("smtp", "list", "example.com", "--json"))
    assert accounts[0]["address"] == "bob@example.com"
    assert accounts[0]["facilities"] == ["R", "D", "H120", "N50", "S10MB"]
    available = json.loads(cli.ok("smtp", "available", "example.com", "--json"))
    assert available == [{"address": "ann@example.com"}]
    boxes = json.loads(cli.ok("mailbox", "list", "example.com", "--json"))
    assert boxes == [{"address": "bob@example.com", "quota": 250_000_000, "used": 0}]
    users = json.loads(cli.ok("user", "list", "example.com", "--json"))
    assert [(u["address"], u["mailbox"], u["smtp_account"]) for u in users] == [
        ("ann@example.com", False, False),
        ("bob@example.com", True, True),
    ]
    [usage] = json.loads(cli.ok("usage", "--customer", "acme", "--json"))
    assert (usage["domains"], usage["accounts"], usage["max_accounts"]) == (1, 2, 4)
    assert "example.com" in cli.ok("domain", "list", "--customer", "acme")
    cli.ok("smtp", "remove", "bob@example.com")
    cli.ok("mailbox", "remove", "bob@example.com")
    cli.ok("user", "remove", "bob@example.com")
    cli.ok("domain", "remove", "example.com")
    assert json.loads(cli.ok("domain", "list", "--json")) == []


def test_refusals_have_messages_and_exit_code_1(cli: Cli) -> None:
    cli.ok("plan", "add", "One", "--domains", "1", "--accounts", "1")
    cli.ok(
        "customer",
        "add",
        "acme",
        "--plan",
        "One",
        "--email",
        "boss@acme.test",
        "--password-stdin",
        stdin=PW,
    )
    cli.ok("domain", "add", "a.test", "--customer", "acme", "--password-stdin", stdin=PW)
    cli.refused(
        "domain",
        "add",
        "b.test",
        "--customer",
        "acme",
        "--password-stdin",
        stdin=PW,
        message="plan One allows 1 domains; customer acme has 1",
    )
    cli.ok("user", "add", "bob@a.test", "--password-stdin", stdin=PW)
    cli.ok("user", "add", "ann@a.test", "--password-stdin", stdin=PW)
    cli.ok("smtp", "add", "bob@a.test")
    cli.refused("smtp", "add", "bob@a.test", message="user bob@a.test already has an SMTP account")
    cli.refused(
        "mailbox",
        "add",
        "ann@a.test",
        message="plan One allows 1 POP3/SMTP accounts; customer acme has 1, so the "
        "mailbox for ann@a.test cannot be added",
    )
    cli.refused(
        "user",
        "add",
        "bob@a.test",
        "--password-stdin",
        stdin=PW,
        message="user bob@a.test already exists",
    )
    cli.refused(
        "user",
        "add",
        "eve@a.test",
        "--password-stdin",
        stdin="short\n",
        message="error: a password must be at least 10 characters (this one has 5)",
    )
    cli.refused(
        "domain",
        "add",
        "not_a_domain",
        "--customer",
        "acme",
        "--password-stdin",
        stdin=PW,
        message="'not_a_domain' is not a",
    )
    cli.refused(
        "user",
        "add",
        "bad user@a.test",
        "--password-stdin",
        stdin=PW,
        message="is not a valid RFC 5321 dot-atom",
    )
    cli.refused("user", "list", "nowhere.test", message="domain nowhere.test is not hosted here")
    cli.refused(
        "customer",
        "add",
        "x",
        "--plan",
        "Gold",
        "--email",
        "x@x.test",
        "--password-stdin",
        stdin=PW,
        message="plan 'Gold' does not exist",
    )
    cli.refused("mailbox", "add", "ann@a.test", "--quota", "lots", message="'lots' is not a size")
    cli.refused("smtp", "remove", "ann@a.test", message="user ann@a.test has no SMTP account")


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("plan", "add", "X", "--domains", "many").code == 2
    assert cli("smtp", "add").code == 2
    assert cli("nonsense").code == 2


def test_commands_before_init_say_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    runner = Cli(tmp_path / "nowhere", env)
    runner.refused("plan", "list", message="does not exist; run `mailhost init")


def test_bad_config_names_the_key(cli: Cli) -> None:
    cli.env["MAILHOST_MX_PORT"] = "seventy"
    result = cli("plan", "list")
    assert result.code == 1
    assert "MAILHOST_MX_PORT" in result.err
