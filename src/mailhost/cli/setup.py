"""`mailhost init` (data directory, config, schema, TLS, demo data) and `mailhost serve`."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from pathlib import Path
from typing import Annotated

import typer

from mailhost.cli.context import CONFIG_NAME, OPERATOR, settings_for, state
from mailhost.cli.render import done
from mailhost.logs import configure as configure_logging
from mailhost.model.facilities import SenderScope, SmtpFacilities
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.settings import Settings, render_default_toml
from mailhost.storage.database.engine import sqlite_files
from mailhost.storage.permissions import restrict, write_private

DEMO_FILE = "demo-logins.txt"
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (overrides the global option)")
]


def _data_dir(ctx: typer.Context, override: Path | None) -> Path:
    return override.resolve() if override is not None else state(ctx).data_dir


def _default_hostname() -> str:
    name = socket.getfqdn().lower()
    return name if "." in name and not name.endswith(".localdomain") else "mail.localhost"


def init(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    hostname: Annotated[
        str | None, typer.Option(help="This server's host name (default: the machine's FQDN)")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Add a demo customer, domain and users")] = False,
) -> None:
    """Create the data directory, mailhost.toml and the database schema (safe to re-run)."""
    directory = _data_dir(ctx, data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = directory / CONFIG_NAME
    if not config.exists():
        write_private(config, render_default_toml(directory, hostname or _default_hostname()))
        done(f"wrote {config}")
    settings = settings_for(directory)
    _make_private(settings)

    async def main() -> None:
        async with Runtime(settings) as runtime:
            await runtime.migrate()
            await runtime.prepare_tls()
            if demo and not (directory / DEMO_FILE).exists():
                logins = await _add_demo(runtime)
                write_private(directory / DEMO_FILE, logins)

    asyncio.run(main())
    done(f"data directory {directory} is ready")
    if (directory / DEMO_FILE).exists():
        done((directory / DEMO_FILE).read_text())


async def _add_demo(runtime: Runtime) -> str:
    """A customer on Bulk Hosting with one domain, one user with an SMTP account, one without."""
    accounts, users = runtime.services.accounts, runtime.services.users
    domain = DomainName.parse("example.test")
    names = ("demo", "domain", "alice", "bob", "admin")
    secret = {name: secrets.token_urlsafe(12) for name in names}
    await accounts.add_customer(
        OPERATOR, "demo", "Bulk Hosting", "demo@example.test", secret["demo"]
    )
    await accounts.add_domain(OPERATOR, domain, "demo", secret["domain"])
    alice, bob = EmailAddress.hosted("alice@example.test"), EmailAddress.hosted("bob@example.test")
    for address, password in ((alice, secret["alice"]), (bob, secret["bob"])):
        await users.add_user(OPERATOR, address, password)
        await users.add_mailbox(OPERATOR, address, ByteSize.parse("250MB"))
    await users.add_smtp_account(
        OPERATOR, alice, SmtpFacilities(relay=True, sender_scope=SenderScope.OWN, hourly_limit=120)
    )
    await runtime.web_access.admins.add(OPERATOR, "admin", "admin@example.test", secret["admin"])
    return "\n".join(
        [
            "Demo logins (also in demo-logins.txt in the data directory):",
            f"  control panel    {runtime.settings.web.public_url}/",
            f"  provider admin   admin / {secret['admin']}",
            f"  customer panel   demo / {secret['demo']}",
            f"  domain panel     example.test / {secret['domain']}",
            f"  user with SMTP   alice@example.test / {secret['alice']}",
            f"  user, POP3 only  bob@example.test / {secret['bob']}",
        ]
    )


def serve(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    """Migrate the database and run every enabled server until interrupted."""
    directory = _data_dir(ctx, data_dir)
    settings = settings_for(directory)
    # Only the server logs: other commands print their own output and nothing more.
    configure_logging(settings.log)
    _make_private(settings)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

    async def main() -> None:
        async with Runtime(settings) as runtime:
            await runtime.migrate()
            await runtime.serve()

    asyncio.run(main())


def _make_private(settings: Settings) -> None:
    """Take group and other permissions off what an older mailhost left readable."""
    data_dir = settings.server.data_dir
    outside = [p for p in sqlite_files(settings.database.url) if not p.is_relative_to(data_dir)]
    outcome = restrict([data_dir, *outside])
    if outcome.fixed:
        done(f"fixed permissions of {outcome.fixed} paths under {data_dir} (now owner-only)")
    for path, reason in outcome.failed:
        typer.echo(f"warning: cannot make {path} owner-only: {reason}", err=True)
