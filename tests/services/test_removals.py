"""Removed means gone: mail, Maildirs, certificates, DKIM keys, queued mail and usage,
on a real database (SQLite and PostgreSQL), real files and the real delivery agent."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509

from mailhost.errors import UnknownCustomer, UnknownDomain
from mailhost.model.actors import Actor, CustomerActor, DomainActor, ProviderActor
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.quantities import ByteSize
from mailhost.model.records import MailboxRecord
from mailhost.runtime import Runtime
from mailhost.services.accounts import AccountService
from mailhost.settings import load_settings
from mailhost.storage.database.engine import session_factory
from mailhost.storage.database.removals import PendingFile, SqlRemovalJournal
from mailhost.tls.authority import CertificateAuthority
from tests.conftest import cheap_passwords
from tests.envelopes import queue_mail

OP = ProviderActor("test")
PW = "correct horse battery"
NEW_PW = "quite another horse battery"
EXAMPLE = DomainName.parse("example.com")
ZED = EmailAddress.hosted("zed@example.com")
MESSAGE = b"From: a@remote.test\r\nSubject: for the first zed\r\n\r\n" + b"x" * 990 + b"\r\n"


async def journal(rt: Runtime) -> list[PendingFile]:
    return list(await SqlRemovalJournal(session_factory(rt.engine)).pending())


async def hosting(rt: Runtime) -> MailboxRecord:
    """acme with example.com, whose user zed has a mailbox with one message in it."""
    await rt.prepare_tls()  # the local CA: domains get certificates from it
    await rt.services.accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@acme.test", PW)
    await rt.services.accounts.add_domain(OP, EXAMPLE, "acme", PW)
    await rt.services.users.add_user(OP, ZED, PW)
    box = await rt.services.users.add_mailbox(OP, ZED, ByteSize.parse("100MB"))
    await rt.services.delivery.deliver_local([box], MESSAGE)
    return box


def certificate_of(rt: Runtime, hostname: str) -> Path:
    return rt.settings.tls.certs_dir / f"{hostname}.pem"


def serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


REMOVALS: dict[str, Callable[[Runtime], Awaitable[None]]] = {
    "mailbox": lambda rt: rt.services.users.remove_mailbox(OP, ZED),
    "user": lambda rt: rt.services.users.remove_user(OP, ZED),
    "domain": lambda rt: rt.services.accounts.remove_domain(OP, EXAMPLE),
}


@pytest.mark.parametrize("removed", list(REMOVALS))
async def test_a_new_mailbox_at_a_removed_ones_address_starts_empty(
    runtime: Runtime, removed: str
) -> None:
    old = await hosting(runtime)
    maildir = runtime.store.maildir_path(old.ref)
    assert len(os.listdir(maildir / "new")) == 1

    await REMOVALS[removed](runtime)

    assert not maildir.exists()
    assert not maildir.parent.exists()  # zed's was the domain's only Maildir
    assert await journal(runtime) == []
    if removed == "domain":
        await runtime.services.accounts.add_domain(OP, EXAMPLE, "acme", PW)
    if removed != "mailbox":
        await runtime.services.users.add_user(OP, ZED, NEW_PW)
    new = await runtime.services.users.add_mailbox(OP, ZED, ByteSize.parse("100MB"))
    assert new.storage_key != old.storage_key
    assert await runtime.store.list(new.ref) == []
    assert await runtime.store.usage(new.ref) == 0
    (usage,) = await runtime.services.usage.report(OP, "acme")
    assert usage.storage_bytes == 0
    (listed,) = await runtime.services.users.mailboxes(OP, EXAMPLE)
    assert listed.used_bytes == 0


async def test_files_of_a_removal_killed_after_its_commit_go_at_the_next_start(
    runtime: Runtime,
) -> None:
    box = await hosting(runtime)
    maildir = runtime.store.maildir_path(box.ref)
    certificate = certificate_of(runtime, EXAMPLE.mail_host)
    assert certificate.exists()
    # What a process killed between the commit and the sweep leaves: the rows are gone,
    # the journal lists the files, the files are still there.
    unswept = AccountService(runtime.units, cheap_passwords())
    await unswept.remove_domain(OP, EXAMPLE)
    assert maildir.exists() and certificate.exists()
    kinds = sorted((item.kind, item.key) for item in await journal(runtime))
    assert kinds == [("certificate", EXAMPLE.mail_host), ("maildir", box.storage_key)]

    await runtime.migrate()  # what `init` and `serve` do first

    assert not maildir.exists()
    assert not certificate.exists()
    assert not certificate.with_suffix(".key").exists()
    assert await journal(runtime) == []


async def test_a_removed_domains_certificate_goes_and_a_new_domain_gets_its_own(
    data_dir: Path, database_url: str, tmp_path: Path
) -> None:
    environ = {"MAILHOST_DATABASE_URL": database_url, "MAILHOST_SERVER_HOSTNAME": "mail.self.test"}
    settings = load_settings(None, data_dir, environ)
    async with Runtime(settings, passwords=cheap_passwords()) as rt:
        await rt.prepare_tls()
        accounts = rt.services.accounts
        await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@acme.test", PW)
        # An operator's own certificate (another CA), and the server's own host name.
        other_ca = CertificateAuthority.load_or_create(tmp_path / "other-ca", "Other CA")
        other_ca.issue(["mail.own.test"], settings.tls.certs_dir)
        operators = certificate_of(rt, "mail.own.test").read_bytes()
        servers = certificate_of(rt, "mail.self.test").read_bytes()
        for name in ("example.com", "own.test", "self.test"):
            await accounts.add_domain(OP, DomainName.parse(name), "acme", PW)
        first = serial(certificate_of(rt, EXAMPLE.mail_host))

        for name in ("example.com", "own.test", "self.test"):
            await accounts.remove_domain(OP, DomainName.parse(name))

        assert not certificate_of(rt, EXAMPLE.mail_host).exists()
        assert not (settings.tls.certs_dir / f"{EXAMPLE.mail_host}.key").exists()
        assert certificate_of(rt, "mail.own.test").read_bytes() == operators
        assert certificate_of(rt, "mail.self.test").read_bytes() == servers
        assert await journal(rt) == []
        await accounts.add_domain(OP, EXAMPLE, "acme", PW)
        assert serial(certificate_of(rt, EXAMPLE.mail_host)) != first


async def test_a_removed_domains_dkim_keys_are_gone_and_a_new_domain_gets_new_ones(
    runtime: Runtime,
) -> None:
    await hosting(runtime)
    before = await runtime.dkim.records(EXAMPLE)
    assert len(before) == 2
    await runtime.services.accounts.remove_domain(OP, EXAMPLE)
    assert await runtime.dkim.records(EXAMPLE) == []
    assert await runtime.dkim.sign(MESSAGE, "zed@example.com") == b""
    await runtime.services.accounts.add_domain(OP, EXAMPLE, "acme", PW)
    after = await runtime.dkim.records(EXAMPLE)
    assert len(after) == 2
    assert {r.text for r in after}.isdisjoint({r.text for r in before})


async def _queue_from(rt: Runtime, domain: DomainName) -> str:
    found = await rt.services.accounts.domain(OP, domain)
    remote = [EmailAddress.parse("far@remote.test")]
    return await queue_mail(rt, f"zed@{domain.ascii}", remote, MESSAGE, found.customer_id, found.id)


async def test_queued_mail_and_spool_files_of_a_removed_domain_or_customer_go_with_it(
    runtime: Runtime,
) -> None:
    await hosting(runtime)
    accounts = runtime.services.accounts
    await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@other.test", PW)
    keep = DomainName.parse("keep.com")
    theirs = DomainName.parse("theirs.com")
    await accounts.add_domain(OP, keep, "acme", PW)
    await accounts.add_domain(OP, theirs, "other", PW)
    removed_domains = await _queue_from(runtime, EXAMPLE)
    acmes = await _queue_from(runtime, keep)
    others = await _queue_from(runtime, theirs)
    await runtime.services.delivery.send(
        "postmaster@mx.test", [EmailAddress.parse("far@remote.test")], MESSAGE
    )
    (own,) = set(await runtime.spool.ids()) - {removed_domains, acmes, others}

    await accounts.remove_domain(OP, EXAMPLE)
    queued = {d.message_id for d in await runtime.queue.queued(100)}
    assert queued == {acmes, others, own}
    assert set(await runtime.spool.ids()) == {acmes, others, own}

    await accounts.remove_customer(OP, "acme")
    queued = {d.message_id for d in await runtime.queue.queued(100)}
    assert queued == {others, own}
    assert set(await runtime.spool.ids()) == {others, own}
    assert await journal(runtime) == []


async def test_the_sweep_removes_old_orphan_spool_files_but_never_young_or_queued_ones(
    runtime: Runtime,
) -> None:
    await hosting(runtime)
    hour_ago = time.time() - 3600
    orphan = (await runtime.spool.write(b"its queue row never came")).message_id
    young = (await runtime.spool.write(b"its queue row is being committed")).message_id
    queued = await _queue_from(runtime, EXAMPLE)
    for message_id in (orphan, queued):
        os.utime(runtime.spool.path_of(message_id), (hour_ago, hour_ago))

    await runtime.sweeper.tidy()

    assert set(await runtime.spool.ids()) == {young, queued}


def _legacy(root: Path, domain: str, local: str, name: str, body: bytes) -> Path:
    maildir = root / domain / local
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "new" / name).write_bytes(body)
    return maildir


async def test_legacy_maildirs_move_to_their_mailbox_and_those_of_no_mailbox_go(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    box = await hosting(runtime)  # zed's keyed Maildir has one message already
    amy_address = EmailAddress.hosted("amy@example.com")
    await runtime.services.users.add_user(OP, amy_address, PW)
    amy = await runtime.services.users.add_mailbox(OP, amy_address, ByteSize.parse("100MB"))
    root = runtime.settings.mail.maildir_root
    # Left by versions that named Maildirs by address: amy's (only there), zed's (besides
    # the keyed one), and one of a mailbox removed long ago.
    _legacy(root, "example.com", "amy", "1700000000.M1P1Q1R0.old,S=6", b"amy's\n")
    _legacy(root, "example.com", "zed", "1700000001.M1P1Q1R0.old,S=6", b"zed's\n")
    gone = _legacy(root, "example.com", "gone", "1700000002.M1P1Q1R0.old,S=7", b"nobody\n")
    foreign = root / "example.com" / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("not a Maildir")

    with caplog.at_level(logging.INFO, logger="mailhost.sweeper"):
        await runtime.migrate()
        await runtime.migrate()  # idempotent

    assert [m.size for m in await runtime.store.list(amy.ref)] == [6]
    assert sorted(m.size for m in await runtime.store.list(box.ref)) == [6, len(MESSAGE)]
    assert sorted(os.listdir(root / "example.com")) == sorted(
        ["notes", f"amy.{amy.storage_key}", f"zed.{box.storage_key}"]
    )
    assert not gone.exists()
    assert (foreign / "todo.txt").exists()
    removals = [r.getMessage() for r in caplog.records if "belongs to no mailbox" in r.message]
    assert removals == [f"removed Maildir {gone} (7 bytes): it belongs to no mailbox"]


async def test_the_removal_summary_names_the_mailboxes_and_the_mail(runtime: Runtime) -> None:
    await hosting(runtime)
    accounts = runtime.services.accounts
    await runtime.services.users.add_user(OP, EmailAddress.hosted("amy@example.com"), PW)
    await runtime.services.users.add_mailbox(
        OP, EmailAddress.hosted("amy@example.com"), ByteSize.parse("100MB")
    )
    await accounts.add_domain(OP, DomainName.parse("empty.com"), "acme", PW)
    domain = await accounts.domain_removal(OP, EXAMPLE)
    assert str(domain) == "domain example.com: 2 mailboxes, 1.04KB of mail will be deleted for good"
    empty = await accounts.domain_removal(OP, DomainName.parse("empty.com"))
    assert (str(empty), empty.deletes_mail) == ("domain empty.com: 0 mailboxes, no mail", False)
    customer = await accounts.customer_removal(OP, "acme")
    assert str(customer) == (
        "customer acme: 2 domains, 2 mailboxes, 1.04KB of mail will be deleted for good"
    )


async def test_only_the_provider_removes_a_customer_and_to_others_it_does_not_exist(
    runtime: Runtime,
) -> None:
    box = await hosting(runtime)
    accounts = runtime.services.accounts
    await accounts.add_customer(OP, "other", "Bulk Hosting", "chief@other.test", PW)
    acme = await accounts.customer(OP, "acme")
    other = await accounts.customer(OP, "other")
    example = await accounts.domain(OP, EXAMPLE)
    with pytest.raises(UnknownCustomer) as missing:
        await accounts.remove_customer(OP, "ghost")
    assert missing.value.message == "customer 'ghost' does not exist"
    outsiders: list[Actor] = [
        CustomerActor(acme.id, acme.login),  # not even itself
        CustomerActor(other.id, other.login),
        DomainActor(example.id, example.customer_id, example.name),
    ]
    for actor in outsiders:
        for attempt in (accounts.remove_customer, accounts.customer_removal):
            with pytest.raises(UnknownCustomer) as refused:
                await attempt(actor, "acme")
            assert refused.value.message == "customer 'acme' does not exist"
    assert await journal(runtime) == []

    await accounts.remove_customer(OP, "acme")

    assert [c.login for c in await accounts.customers(OP)] == ["other"]
    with pytest.raises(UnknownDomain):
        await accounts.domain(OP, EXAMPLE)
    assert not runtime.store.maildir_path(box.ref).exists()
    assert not certificate_of(runtime, EXAMPLE.mail_host).exists()
    assert [u.customer_login for u in await runtime.services.usage.report(OP)] == ["other"]
    entries = await runtime.web_access.audit.entries(OP, 5)
    assert (entries[0].action, entries[0].target) == ("customer.remove", "acme")
    # The login and the domain are free again, and start from nothing.
    await accounts.add_customer(OP, "acme", "Bulk Hosting", "boss@acme.test", PW)
    await accounts.add_domain(OP, EXAMPLE, "acme", PW)
    (usage,) = await runtime.services.usage.report(OP, "acme")
    assert (usage.domains, usage.accounts, usage.storage_bytes) == (1, 0, 0)


async def test_a_late_delivery_to_a_removed_mailbox_is_tidied_but_unknown_maildirs_stay(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    old = await hosting(runtime)
    await runtime.services.users.remove_mailbox(OP, ZED)
    # A delivery that looked zed up just before the removal lands after it.
    await runtime.store.deliver(old.ref, MESSAGE)
    late = runtime.store.maildir_path(old.ref)
    # A Maildir of a key this database never handed out: another installation's, or
    # this one's with a wrong [database] url. Nothing says its mail was removed.
    stranger = runtime.settings.mail.maildir_root / "example.com" / f"zed.{'ab' * 16}"
    _legacy(stranger.parent, "", stranger.name, "1700000003.M1P1Q1R0.x,S=4", b"kept")

    with caplog.at_level(logging.WARNING, logger="mailhost.sweeper"):
        await runtime.sweeper.tidy()

    assert not late.exists()
    assert (stranger / "new").is_dir()
    left = [r.getMessage() for r in caplog.records if "leaving" in r.message]
    assert left == [
        f"leaving {stranger} alone: no mailbox of this database names it; is [database] url right?"
    ]


async def test_legacy_maildirs_stay_when_the_database_has_no_mailboxes(runtime: Runtime) -> None:
    # `serve` pointed at an empty database must not take the mail root for leftovers.
    root = runtime.settings.mail.maildir_root
    kept = _legacy(root, "example.com", "zed", "1700000004.M1P1Q1R0.x,S=4", b"mine")
    await runtime.migrate()
    assert (kept / "new" / "1700000004.M1P1Q1R0.x,S=4").read_bytes() == b"mine"
