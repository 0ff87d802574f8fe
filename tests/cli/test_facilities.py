"""`mailhost mailbox set` and `mailhost smtp set`: change a quota (held against the plan's
storage) and an SMTP account's facilities, the options left out as they are."""

from __future__ import annotations

import json

from tests.cli.test_cli import PW, Cli, cli

__all__ = ["cli"]  # the fixture, shared with test_cli.py


def _customer(cli: Cli, plan: str) -> None:
    cli.ok(
        "customer",
        "add",
        "acme",
        "--plan",
        plan,
        "--email",
        "boss@acme.test",
        "--password-stdin",
        stdin=PW,
    )
    cli.ok("domain", "add", "example.com", "--customer", "acme", "--password-stdin", stdin=PW)
    for name in ("ann", "bob"):
        cli.ok("user", "add", f"{name}@example.com", "--password-stdin", stdin=PW)


def test_quotas_are_set_within_the_plans_storage(cli: Cli) -> None:
    cli.ok("plan", "add", "Small", "--storage", "100MB")
    _customer(cli, "Small")
    cli.refused(
        "mailbox",
        "add",
        "bob@example.com",
        message="plan Small has 100MB of storage, so every mailbox needs a quota; "
        "at most 100MB is left for bob@example.com",
    )
    cli.ok("mailbox", "add", "bob@example.com", "--quota", "60MB")
    cli.refused(
        "mailbox",
        "add",
        "ann@example.com",
        "--quota",
        "50MB",
        message="plan Small has 100MB of storage; 60MB is given to other mailboxes, "
        "so at most 40MB is left for ann@example.com",
    )
    cli.ok("mailbox", "add", "ann@example.com", "--quota", "40MB")
    for too_small, shown in (("500KB", "500KB"), ("0", "0B"), ("-1", "-1")):
        cli.refused(
            "mailbox",
            "set",
            "bob@example.com",
            "--quota",
            too_small,
            message=f"a mailbox quota is at least 1MB; {shown} is less",
        )
    cli.refused(
        "mailbox",
        "set",
        "bob@example.com",
        "--quota",
        "unlimited",
        message="plan Small has 100MB of storage, so every mailbox needs a quota",
    )
    cli.refused(
        "mailbox", "set", "bob@example.com", "--quota", "61MB", message="at most 60MB is left"
    )
    out = cli.ok("mailbox", "set", "bob@example.com", "--quota", "30MB")
    assert out.strip() == "mailbox for bob@example.com changed (quota 30MB)"
    boxes = json.loads(cli.ok("mailbox", "list", "example.com", "--json"))
    assert [(b["address"], b["quota"]) for b in boxes] == [
        ("ann@example.com", 40_000_000),
        ("bob@example.com", 30_000_000),
    ]
    assert cli("mailbox", "set", "bob@example.com").code == 2  # --quota is required


def test_smtp_set_changes_only_the_facilities_given(cli: Cli) -> None:
    _customer(cli, "Bulk Hosting")
    assert "[R H120]" in cli.ok("smtp", "add", "bob@example.com", "--hourly", "120")
    changed = cli.ok("smtp", "set", "bob@example.com", "--no-relay", "--sender", "domain")
    assert changed.strip() == "SMTP account for bob@example.com changed [D H120]"
    changed = cli.ok(
        "smtp",
        "set",
        "bob@example.com",
        "--hourly",
        "unlimited",
        "--max-recipients",
        "5",
        "--max-size",
        "10MB",
    )
    assert changed.strip() == "SMTP account for bob@example.com changed [D N5 S10MB]"
    changed = cli.ok("smtp", "set", "bob@example.com", "--relay", "--max-size", "unlimited")
    assert changed.strip() == "SMTP account for bob@example.com changed [R D N5]"
    (account,) = json.loads(cli.ok("smtp", "list", "example.com", "--json"))
    assert account["facilities"] == ["R", "D", "N5"]
    cli.refused(
        "smtp",
        "set",
        "ann@example.com",
        "--relay",
        message="user ann@example.com has no SMTP account",
    )
    cli.refused(
        "smtp", "set", "bob@example.com", "--max-size", "lots", message="'lots' is not a size"
    )
    for usage in (("--hourly", "0"), ("--hourly", "lots"), ("--sender", "anyone")):
        assert cli("smtp", "set", "bob@example.com", *usage).code == 2, usage
