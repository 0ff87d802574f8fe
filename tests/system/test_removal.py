"""Removed means gone, against a real `mailhost serve`: mail of a removed address never
reaches its next owner, not even when the removal is killed half-way; Maildirs of the
layout before storage keys are taken over (or deleted) when mailhost starts."""

from __future__ import annotations

import asyncio
import json
import os
import poplib
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509

from mailhost.errors import NotFound
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.runtime import Runtime
from mailhost.services.accounts import AccountService
from mailhost.settings import load_settings
from mailhost.storage.database.engine import session_factory
from mailhost.storage.database.removals import MailboxFiles, PendingFile, SqlRemovalJournal
from tests.conftest import cheap_passwords
from tests.system.conftest import HOSTNAME, OP, PASSWORD, PREFILLED, Pop3sClient, Server
from tests.system.test_mail_in import MAIL_HOST, sample, send, server_cli

T = TypeVar("T")
ZED = "zed@example.test"
EXAMPLE = DomainName.parse("example.test")
NEW_PASSWORD = "quite another horse battery"


def in_process(server: Server, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run service calls on the server's database and files, beside the running server."""

    async def main() -> T:
        settings = load_settings(None, server.data_dir, server.env)
        async with Runtime(settings, passwords=cheap_passwords()) as rt:
            return await work(rt)

    return asyncio.run(main())


async def _zed(rt: Runtime, password: str) -> None:
    """zed@example.test with a mailbox, making whatever of it is missing."""
    accounts, users, zed = rt.services.accounts, rt.services.users, EmailAddress.hosted(ZED)
    try:
        await accounts.domain(OP, EXAMPLE)
    except NotFound:
        await accounts.add_domain(OP, EXAMPLE, "acme", PASSWORD)  # by the provider: verified
    try:
        await users.user(OP, zed)
    except NotFound:
        await users.add_user(OP, zed, password)
    else:
        await users.change_password(OP, zed, password)
    if not (await users.user(OP, zed)).has_mailbox:
        await users.add_mailbox(OP, zed, ByteSize.parse("100MB"))


def pop3s(server: Server, user: str, password: str) -> poplib.POP3_SSL:
    client = Pop3sClient(server.ports["POP3S"], server.tls(), MAIL_HOST)
    client.user(user)
    client.pass_(password)
    return client


def mailhost(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*server_cli(server), *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def certificate(server: Server, hostname: str = MAIL_HOST) -> Path:
    return server.data_dir / "certs" / f"{hostname}.pem"


REMOVE = {
    "mailbox": ("mailbox", "remove", ZED),
    "user": ("user", "remove", ZED),
    "domain": ("domain", "remove", "example.test", "--yes"),
}


@pytest.mark.parametrize("removed", list(REMOVE))
def test_mail_of_a_removed_address_never_reaches_its_next_owner(
    server: Server, removed: str
) -> None:
    in_process(server, lambda rt: _zed(rt, PASSWORD))
    secret = sample("for the first zed", b"the first zed's secret\r\n")
    send(server, ZED, secret)
    first = pop3s(server, ZED, PASSWORD)
    assert first.stat()[0] == 1
    first.quit()
    old_maildir = server.maildir(ZED)
    old_certificate = certificate(server).read_bytes()

    result = mailhost(server, *REMOVE[removed])
    assert result.returncode == 0, result.stderr

    assert not old_maildir.exists()
    if removed == "domain":
        assert not certificate(server).exists()
        assert not certificate(server).with_suffix(".key").exists()
    in_process(server, lambda rt: _zed(rt, NEW_PASSWORD))  # the next owner of the address
    if removed == "domain":
        assert certificate(server).read_bytes() != old_certificate
    client = pop3s(server, ZED, NEW_PASSWORD)
    assert client.stat() == (0, 0)
    assert client.uidl()[1] == []
    client.quit()
    usage = mailhost(server, "usage", "--customer", "acme", "--json")
    # What is left is tiny's and full's, unless their domain went too.
    left = 0 if removed == "domain" else PREFILLED
    assert json.loads(usage.stdout)[0]["storage_bytes"] == left
    listing = mailhost(server, "mailbox", "list", "example.test", "--json")
    assert {row["address"]: row["used"] for row in json.loads(listing.stdout)}[ZED] == 0


async def _files(rt: Runtime) -> tuple[list[MailboxFiles], list[PendingFile]]:
    journal = SqlRemovalJournal(session_factory(rt.engine))
    return list(await journal.mailboxes()), list(await journal.pending())


def assert_nothing_orphaned(server: Server) -> None:
    """Every Maildir is a current mailbox's, every certificate our CA issued is a hosted
    domain's (or the server's), every spool file is queued, and no removal is pending."""
    boxes, pending = in_process(server, _files)
    assert pending == []
    root = server.data_dir / "mail"
    on_disk = {str(path.relative_to(root)) for path in root.glob("*/*")}
    assert on_disk <= {f"{b.domain}/{b.local}.{b.storage_key}" for b in boxes}
    domains = in_process(server, lambda rt: rt.services.accounts.domains(OP))
    hosts = {d.name.mail_host for d in domains} | {HOSTNAME}
    ours = x509.load_pem_x509_certificate((server.data_dir / "ca" / "ca.pem").read_bytes())
    for pem in (server.data_dir / "certs").glob("*.pem"):
        x509.load_pem_x509_certificate(pem.read_bytes()).verify_directly_issued_by(ours)
        assert pem.stem in hosts, f"{pem.name} belongs to no hosted domain"
    queued = in_process(server, lambda rt: rt.queue.queued(1000))
    spooled = {p.name for p in (server.data_dir / "spool" / "msg").glob("*")}
    assert spooled <= {d.message_id for d in queued}


def restart(server: Server) -> None:
    server.kill()  # SIGKILL: nothing gets to finish what it was doing
    server.start()  # `serve` finishes what the journal lists before it listens


def test_a_removal_killed_right_after_its_commit_is_finished_at_the_next_start(
    server: Server,
) -> None:
    in_process(server, lambda rt: _zed(rt, PASSWORD))
    send(server, ZED, sample("before", b"mail of the removed domain\r\n"))
    old_maildir = server.maildir(ZED)

    async def commit_without_sweeping(rt: Runtime) -> None:
        # What a process killed between the commit and deleting the files leaves behind.
        await AccountService(rt.units, cheap_passwords()).remove_domain(OP, EXAMPLE)

    in_process(server, commit_without_sweeping)
    assert old_maildir.exists() and certificate(server).exists()
    restart(server)

    assert not old_maildir.exists()
    assert not certificate(server).exists()
    assert_nothing_orphaned(server)
    in_process(server, lambda rt: _zed(rt, NEW_PASSWORD))
    client = pop3s(server, ZED, NEW_PASSWORD)
    assert client.stat() == (0, 0)
    client.quit()


BULK = 2000  # messages: deleting them takes long enough to be killed in the middle of it


def _fill(maildir: Path) -> None:
    """Mail as the delivery agent leaves it, written straight into new/ to be quick."""
    for n in range(BULK):
        (maildir / "new" / f"1700000000.M{n}P1Q1R0.bulk,S=3").write_bytes(b"x\r\n")


def _shrinking(maildir: Path) -> Callable[[], bool]:
    def started() -> bool:
        try:
            return len(os.listdir(maildir / "new")) < BULK + 1
        except FileNotFoundError:
            return True

    return started


def _after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


# When to kill `mailhost domain remove`: the moment it starts deleting the Maildir
# (between its commit and its journal's clean-up), and at times from before it has
# connected to the database to after it is done.
KILLS: tuple[tuple[str, Callable[[Path], Callable[[], bool]]], ...] = (
    ("while deleting the mail", _shrinking),
    ("after 0.5 s", lambda _: _after(0.5)),
    ("after 1 s", lambda _: _after(1.0)),
    ("after 1.5 s", lambda _: _after(1.5)),
    ("after 2 s", lambda _: _after(2.0)),
)


def _remove_killed(server: Server, when: Callable[[], bool]) -> None:
    remover = subprocess.Popen(
        [*server_cli(server), "domain", "remove", "example.test", "--yes"],
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while remover.poll() is None and not when():
        time.sleep(0.001)
    remover.send_signal(signal.SIGKILL)
    remover.wait(30)


def test_a_domain_removal_killed_at_any_point_leaves_nothing_of_the_removed_mail(
    server: Server,
) -> None:
    for label, when in KILLS:
        in_process(server, lambda rt: _zed(rt, PASSWORD))
        send(server, ZED, sample(label, b"the mail to be removed\r\n"))
        maildir = server.maildir(ZED)
        _fill(maildir)

        _remove_killed(server, when(maildir))
        restart(server)

        assert_nothing_orphaned(server)
        hosted = in_process(server, lambda rt: rt.services.accounts.domains(OP))
        if any(d.name == EXAMPLE for d in hosted):  # killed before the commit: nothing lost
            client = pop3s(server, ZED, PASSWORD)
            assert client.stat()[0] == BULK + 1, label
            client.quit()
        else:
            in_process(server, lambda rt: _zed(rt, NEW_PASSWORD))  # the address, again
            client = pop3s(server, ZED, NEW_PASSWORD)
            assert client.stat() == (0, 0), label
            client.quit()
        in_process(server, lambda rt: rt.services.accounts.remove_domain(OP, EXAMPLE))
        assert not maildir.exists()


def _legacy_maildir(root: Path, local: str, name: str, message: bytes) -> Path:
    maildir = root / "example.test" / local
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "new" / name).write_bytes(message)
    return maildir


def test_maildirs_of_the_legacy_layout_are_taken_over_or_deleted_at_start(
    server: Server,
) -> None:
    server.stop()
    root = server.data_dir / "mail"
    kept = (
        b"Received: from old.test by mx.hosting.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        + sample("from the old layout", b"still bob's\r\n")
    )
    bob = _legacy_maildir(root, "bob", f"1700000000.M1P1Q1R0.old,S={len(kept)}", kept)
    removed = b"From: a@remote.test\r\nSubject: for a mailbox removed long ago\r\n\r\nx\r\n"
    gone = _legacy_maildir(root, "gone", "1700000001.M1P1Q1R0.old", removed)

    upgrade = mailhost(server, "init", "--hostname", HOSTNAME)
    assert upgrade.returncode == 0, upgrade.stderr
    line = f"removed Maildir {gone} ({len(removed)} bytes): it belongs to no mailbox"
    assert line in upgrade.stderr.splitlines()
    server.start()

    assert not bob.exists() and not gone.exists()
    client = pop3s(server, "bob@example.test", PASSWORD)
    assert client.stat()[0] == 1
    # Taken over as it was: nothing added in front, nothing lost.
    assert b"\r\n".join(client.retr(1)[1]) + b"\r\n" == kept
    client.quit()
    assert server.maildir("bob@example.test").parent == root / "example.test"
    assert_nothing_orphaned(server)
