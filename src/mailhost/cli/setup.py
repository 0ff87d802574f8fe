"""`mailhost init` (data directory, config, schema, TLS, demo data) and `mailhost serve`."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from dataclasses import dataclass
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
from mailhost.services.dns_records import public_name_problem
from mailhost.settings import Settings, render_default_toml
from mailhost.storage.database.engine import sqlite_files
from mailhost.storage.permissions import restrict, write_private

DEMO_FILE = "demo-logins.txt"
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (overrides the global option)")
]


def _data_dir(ctx: typer.Context, override: Path | None) -> Path:
    return override.resolve() if override is not None else state(ctx).data_dir


FALLBACK_HOSTNAME = "mail.localhost"


@dataclass(frozen=True, slots=True)
class HostnameChoice:
    """The name `init` writes when no --hostname is given, and what to tell about it."""

    name: str
    note: str
    warning: bool  # other servers cannot reach this name: said on stderr


def choose_hostname(fqdn: str) -> HostnameChoice:
    """From the machine's FQDN (socket.getfqdn()): a dotted name is taken as it is; an
    undotted one ("localhost", "vm": no DNS name at all) or a /etc/hosts "localdomain"
    one becomes mail.localhost, which works on this machine only, and says so."""
    name = fqdn.strip().lower().removesuffix(".")
    if "." not in name or name.endswith(".localdomain"):
        return HostnameChoice(
            FALLBACK_HOSTNAME,
            f"no dotted host name found (socket.getfqdn() = {fqdn!r}); using "
            f"{FALLBACK_HOSTNAME}, which only this machine reaches: set --hostname for a "
            "real server",
            warning=True,
        )
    problem = public_name_problem(name)
    if problem is not None:
        return HostnameChoice(
            name,
            f"using the machine's name {name} (socket.getfqdn()), but it is not a public "
            f"name ({problem}): other servers cannot reach it; set --hostname for a real "
            "server",
            warning=True,
        )
    return HostnameChoice(
        name,
        f"using the machine's name {name} as the server's host name (set --hostname to "
        "choose another)",
        warning=False,
    )


def _default_hostname() -> str:
    # getfqdn may ask the resolver; init runs once, before anything is served.
    choice = choose_hostname(socket.getfqdn())
    if choice.warning:
        typer.echo(f"warning: {choice.note}", err=True)
    else:
        done(choice.note)
    return choice.name


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


DEMO_DOMAIN = "example.test"
# The demo's own mailbox: the contact of every demo login (the customer's contact, and
# so the domain's; alice's and bob's recovery address; the admin's email), so that
# Forgot password mails a link somewhere a newcomer can read it.
DEMO_INBOX = f"demo@{DEMO_DOMAIN}"


async def _add_demo(runtime: Runtime) -> str:
    """A customer on Bulk Hosting with one domain, one user with an SMTP account, one
    without, and the mailbox every demo login's reset links go to."""
    accounts, users = runtime.services.accounts, runtime.services.users
    domain = DomainName.parse(DEMO_DOMAIN)
    names = ("demo", "domain", "alice", "bob", "admin", "inbox")
    secret = {name: secrets.token_urlsafe(12) for name in names}
    await accounts.add_customer(OPERATOR, "demo", "Bulk Hosting", DEMO_INBOX, secret["demo"])
    await accounts.add_domain(OPERATOR, domain, "demo", secret["domain"])
    inbox = EmailAddress.hosted(DEMO_INBOX)
    # The inbox has no recovery address of its own: its reset link would land in itself.
    await users.add_user(OPERATOR, inbox, secret["inbox"])
    await users.add_mailbox(OPERATOR, inbox, ByteSize.parse("250MB"))
    alice = EmailAddress.hosted(f"alice@{DEMO_DOMAIN}")
    bob = EmailAddress.hosted(f"bob@{DEMO_DOMAIN}")
    for address, password in ((alice, secret["alice"]), (bob, secret["bob"])):
        await users.add_user(OPERATOR, address, password, recovery=DEMO_INBOX)
        await users.add_mailbox(OPERATOR, address, ByteSize.parse("250MB"))
    await users.add_smtp_account(
        OPERATOR, alice, SmtpFacilities(relay=True, sender_scope=SenderScope.OWN, hourly_limit=120)
    )
    await runtime.web_access.admins.add(OPERATOR, "admin", DEMO_INBOX, secret["admin"])
    settings = runtime.settings
    ca = settings.tls.ca_dir / "ca.pem"
    mail_host, port = domain.mail_host, settings.pop3s.port
    return "\n".join(
        [
            "Demo logins (also in demo-logins.txt in the data directory):",
            f"  control panel    {settings.web.public_url}/",
            f"  provider admin   admin / {secret['admin']}",
            f"  customer panel   demo / {secret['demo']}",
            f"  domain panel     {DEMO_DOMAIN} / {secret['domain']}",
            f"  user with SMTP   {alice} / {secret['alice']}",
            f"  user, POP3 only  {bob} / {secret['bob']}",
            f"  demo mailbox     {DEMO_INBOX} / {secret['inbox']}",
            f"Forgot password: every demo login above mails its reset link to {DEMO_INBOX},",
            "a mailbox on this server. Read it over POP3 (message 1; without /1, the list):",
            f"  curl --cacert {ca} --resolve {mail_host}:{port}:{settings.pop3s.host} \\",
            f"       --user '{DEMO_INBOX}:{secret['inbox']}' pop3s://{mail_host}:{port}/1",
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
