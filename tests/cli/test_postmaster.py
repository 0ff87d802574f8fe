"""`mailhost domain postmaster`: show and change where postmaster@ and abuse@ mail goes."""

from __future__ import annotations

from tests.cli.test_cli import PW, Cli, cli

__all__ = ["cli"]  # the fixture, shared with test_cli.py


def _two_customers(cli: Cli) -> None:
    for login, contact, domain in (
        ("acme", "boss@acme.example", "a.example"),
        ("other", "chief@other.example", "b.example"),
    ):
        cli.ok(
            "customer",
            "add",
            login,
            "--plan",
            "Bulk Hosting",
            "--email",
            contact,
            "--password-stdin",
            stdin=PW,
        )
        cli.ok("domain", "add", domain, "--customer", login, "--password-stdin", stdin=PW)
    for address in ("alice@a.example", "bob@b.example"):
        cli.ok("user", "add", address, "--password-stdin", stdin=PW)
        cli.ok("mailbox", "add", address, "--quota", "100MB")


def test_postmaster_is_shown_changed_and_set_back(cli: Cli) -> None:
    _two_customers(cli)
    assert cli.ok("domain", "postmaster", "a.example").splitlines() == [
        "postmaster@a.example goes to the customer's contact address (a mailbox of that name"
        " comes first)",
        "abuse@a.example is off: refused unless a mailbox has that name",
    ]
    out = cli.ok("domain", "postmaster", "a.example", "--to", "alice@a.example", "--abuse")
    assert out.splitlines() == [
        "postmaster@a.example goes to alice@a.example (a mailbox of that name comes first)",
        "abuse@a.example goes there too",
    ]
    out = cli.ok("domain", "postmaster", "a.example", "--default")
    assert out.splitlines()[0].startswith("postmaster@a.example goes to the customer's contact")
    assert out.splitlines()[1] == "abuse@a.example goes there too"  # not mentioned: unchanged
    out = cli.ok("domain", "postmaster", "a.example", "--no-abuse")
    assert out.splitlines()[1] == "abuse@a.example is off: refused unless a mailbox has that name"


def test_postmaster_refusals_say_why(cli: Cli) -> None:
    _two_customers(cli)
    cli.refused(
        "domain",
        "postmaster",
        "a.example",
        "--to",
        "bob@b.example",
        message="bob@b.example is not a mailbox you manage: postmaster mail of a.example",
    )
    cli.refused(
        "domain",
        "postmaster",
        "a.example",
        "--to",
        "ghost@a.example",
        message="ghost@a.example has no POP3 mailbox: postmaster mail of a.example needs one",
    )
    cli.refused(
        "domain",
        "postmaster",
        "a.example",
        "--to",
        "alice@a.example",
        "--default",
        message="give --to ADDRESS or --default (not both)",
    )
    cli.refused(
        "domain",
        "postmaster",
        "nowhere.example",
        "--abuse",
        message="domain nowhere.example is not hosted here",
    )
