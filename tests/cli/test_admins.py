"""`mailhost admin` and the demo's provider admin, through the real command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.test_cli import PW, Cli


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    env["MAILHOST_DATABASE_URL"] = database_url
    env["COLUMNS"] = "200"
    return Cli(tmp_path / "data", env)


def test_admin_add_creates_a_provider_login(cli: Cli) -> None:
    cli.ok("init", "--hostname", "mx.hosting.test")
    out = cli.ok(
        "admin", "add", "ops", "--email", "ops@hosting.example", "--password-stdin", stdin=PW
    )
    assert "provider admin 'ops' added" in out
    assert json.loads(cli.ok("admin", "list", "--json")) == [
        {"login": "ops", "email": "ops@hosting.example"}
    ]
    cli.refused(
        "admin",
        "add",
        "ops",
        "--email",
        "x@hosting.example",
        "--password-stdin",
        stdin=PW,
        message="provider admin 'ops' already exists",
    )
    cli.refused(
        "admin",
        "add",
        "weak",
        "--email",
        "x@hosting.example",
        "--password-stdin",
        stdin="short\n",
        message="a password must be at least 10 characters",
    )


def test_demo_prints_logins_for_every_level_and_the_panel(cli: Cli) -> None:
    out = " ".join(cli.ok("init", "--hostname", "mx.hosting.test", "--demo").split())
    for line in (
        "control panel http://mx.hosting.test:8080/",  # [web] public_url's default
        "provider admin admin /",
        "customer panel demo /",
        "domain panel example.test /",
    ):
        assert line in out
    assert json.loads(cli.ok("admin", "list", "--json"))[0]["login"] == "admin"
