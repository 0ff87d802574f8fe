"""`mailhost user set --recovery`, `mailhost customer set --email/--plan` and
`mailhost domain passwd`: each prints the new state, refusals exit 1 and usage errors 2."""

from __future__ import annotations

import json

from tests.cli.test_cli import PW, Cli, cli

__all__ = ["cli"]  # the fixture, shared with test_cli.py


def _customer(cli: Cli) -> None:
    cli.ok(
        "customer",
        "add",
        "acme",
        "--plan",
        "Bulk Hosting",
        "--email",
        "boss@acme.test",
        "--password-stdin",
        stdin=PW,
    )
    cli.ok("domain", "add", "example.com", "--customer", "acme", "--password-stdin", stdin=PW)
    cli.ok("user", "add", "ann@example.com", "--password-stdin", stdin=PW)


def test_user_set_changes_and_clears_the_recovery_address(cli: Cli) -> None:
    _customer(cli)
    out = cli.ok("user", "set", "ann@example.com", "--recovery", "ann@elsewhere.test")
    assert " ".join(out.split()) == (
        "user ann@example.com changed (recovery address ann@elsewhere.test)"
    )
    cli.refused(
        "user",
        "set",
        "ann@example.com",
        "--recovery",
        "Ann@example.com",
        message="the recovery address must be another address than ann@example.com itself",
    )
    cli.refused(
        "user",
        "set",
        "ann@example.com",
        "--recovery",
        "not an address",
        message="is not an email address",
    )
    cli.refused(
        "user", "set", "nobody@example.com", "--recovery", "x@y.test", message="does not exist"
    )
    assert cli("user", "set", "ann@example.com").code == 2  # --recovery is required
    out = cli.ok("user", "set", "ann@example.com", "--recovery", "none")
    assert " ".join(out.split()) == "user ann@example.com changed (recovery address none)"


def test_customer_set_changes_the_contact_and_the_plan(cli: Cli) -> None:
    cli.ok("plan", "add", "Tiny", "--domains", "1")
    cli.ok("plan", "add", "None at all", "--domains", "0")
    _customer(cli)
    out = cli.ok("customer", "set", "acme", "--email", "it@acme.test", "--plan", "Tiny")
    assert " ".join(out.split()) == ("customer 'acme' changed (contact it@acme.test, plan 'Tiny')")
    listed = json.loads(cli.ok("customer", "list", "--json"))
    assert listed == [{"login": "acme", "plan": "Tiny", "email": "it@acme.test", "enabled": True}]
    # The plan is refused: the contact address given with it is not changed either.
    cli.refused(
        "customer",
        "set",
        "acme",
        "--email",
        "new@acme.test",
        "--plan",
        "None at all",
        message="plan None at all allows 0 domains; customer acme has 1",
    )
    cli.refused("customer", "set", "acme", "--email", "nope", message="is not an email address")
    cli.refused("customer", "set", "ghost", "--email", "a@b.test", message="does not exist")
    assert cli("customer", "set", "acme").code == 2  # nothing to change
    listed = json.loads(cli.ok("customer", "list", "--json"))
    assert listed[0]["email"] == "it@acme.test"


def test_domain_passwd_sets_the_managers_password(cli: Cli) -> None:
    _customer(cli)
    out = cli.ok("domain", "passwd", "example.com", "--password-stdin", stdin="a new passphrase\n")
    assert " ".join(out.split()) == (
        "password of the Domain Name Level panel of example.com changed"
    )
    cli.refused(
        "domain", "passwd", "example.com", "--password-stdin", stdin="short\n", message="password"
    )
    cli.refused(
        "domain", "passwd", "ghost.test", "--password-stdin", stdin=PW, message="not hosted here"
    )
