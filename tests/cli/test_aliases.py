"""`mailhost alias add|list|remove` and `mailhost catchall show|set|clear`."""

from __future__ import annotations

import json

from tests.cli.test_cli import Cli, cli
from tests.cli.test_postmaster import _two_customers

__all__ = ["cli"]  # the fixture, shared with test_cli.py


def test_aliases_are_added_listed_and_removed(cli: Cli) -> None:
    _two_customers(cli)
    out = cli.ok("alias", "add", "info@a.example", "alice@a.example", "Friend@Remote.example")
    assert out.strip() == "alias info@a.example sends to alice@a.example, Friend@remote.example"
    listed = json.loads(cli.ok("alias", "list", "a.example", "--json"))
    assert listed == [
        {
            "address": "info@a.example",
            "targets": ["alice@a.example", "Friend@remote.example"],
            "external": ["Friend@remote.example"],
        }
    ]
    assert "info@a.example" in cli.ok("alias", "list", "a.example")
    out = cli.ok("alias", "remove", "info@a.example", "Friend@remote.example")
    assert out.strip() == "alias info@a.example no longer sends to Friend@remote.example"
    assert cli.ok("alias", "remove", "info@a.example").strip() == "alias info@a.example removed"
    assert json.loads(cli.ok("alias", "list", "a.example", "--json")) == []
    assert "no aliases in a.example" in cli.ok("alias", "list", "a.example")


def test_alias_refusals_say_why(cli: Cli) -> None:
    _two_customers(cli)
    cli.refused(
        "alias",
        "add",
        "steal@a.example",
        "bob@b.example",
        message="bob@b.example is not an address you manage: an alias of a.example",
    )
    cli.refused(
        "alias",
        "add",
        "alice@a.example",
        "bob@remote.example",
        message="alice@a.example is a user: an alias cannot take a user's address",
    )
    cli.ok("alias", "add", "x@a.example", "alice@a.example")
    cli.ok("alias", "add", "y@a.example", "x@a.example")
    cli.refused(
        "alias",
        "add",
        "x@a.example",
        "y@a.example",
        message="x@a.example -> y@a.example -> x@a.example: an alias cannot lead back to itself",
    )
    cli.refused(
        "user",
        "add",
        "x@a.example",
        "--password-stdin",
        stdin="correct horse battery",
        message="x@a.example is an alias: a user cannot take an alias's address",
    )
    cli.refused(
        "alias", "remove", "ghost@a.example", message="alias ghost@a.example does not exist"
    )


def test_catch_all_is_set_shown_and_cleared(cli: Cli) -> None:
    _two_customers(cli)
    show = ("catchall", "show", "a.example")
    assert cli.ok(*show).strip() == "unknown addresses of a.example: refused (no catch-all)"
    out = cli.ok("catchall", "set", "a.example", "alice@a.example")
    assert out.strip() == "mail for unknown addresses of a.example goes to alice@a.example"
    assert cli.ok(*show).strip() == "unknown addresses of a.example: to alice@a.example"
    cli.refused(
        "catchall",
        "set",
        "a.example",
        "bob@b.example",
        message="bob@b.example is not a mailbox you manage: the catch-all of a.example",
    )
    out = cli.ok("catchall", "clear", "a.example")
    assert out.strip() == "mail for unknown addresses of a.example is refused"
    assert cli.ok(*show).strip() == "unknown addresses of a.example: refused (no catch-all)"
