"""The `mailhost` command: sub-commands, and MailhostError → stderr + exit 1.

Exit codes: 0 success, 1 a refusal (the message says which rule), 2 a usage
error (unknown option, missing argument), as Click reports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mailhost.cli import (
    admins,
    aliases,
    customers,
    domains,
    mailboxes,
    plans,
    queue,
    smtp_accounts,
    two_factor,
    usage,
    users,
)
from mailhost.cli.context import CliState
from mailhost.cli.setup import init, serve
from mailhost.errors import MailhostError
from mailhost.storage.permissions import OWNER_ONLY_UMASK

app = typer.Typer(
    help="mailhost: email hosting (MX, submission, POP3, control panel).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(plans.app, name="plan")
app.add_typer(customers.app, name="customer")
app.add_typer(domains.app, name="domain")
app.add_typer(users.app, name="user")
app.add_typer(mailboxes.app, name="mailbox")
app.add_typer(smtp_accounts.app, name="smtp")
app.add_typer(aliases.app, name="alias")
app.add_typer(aliases.catchall_app, name="catchall")
app.add_typer(admins.app, name="admin")
app.add_typer(queue.app, name="queue")
app.add_typer(two_factor.app, name="two-factor")
app.command("usage")(usage.usage)
app.command("init")(init)
app.command("serve")(serve)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            envvar="MAILHOST_DATA_DIR",
            help="Data directory holding mailhost.toml (default ./data)",
        ),
    ] = Path("data"),
) -> None:
    # The CLI owns the process: whatever any command creates (data directory, database,
    # keys, certificates, Maildirs, spool) is the owner's alone (storage/permissions.py).
    os.umask(OWNER_ONLY_UMASK)
    ctx.obj = CliState(data_dir.resolve())


def run() -> None:
    try:
        app()
    except MailhostError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"error: {exc.message}", markup=False
        )
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
