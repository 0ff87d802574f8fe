"""Deleting the files of removed mailboxes, domains and customers, and tidying the rest.

`sweep()` works through the removal journal (storage/database/removals.py): for
each entry it deletes the files (a Maildir, a certificate mailhost issued, a
spool file nothing refers to any more) and only then the entry, so whatever a
killed process left undone is done at the next sweep. Services call it after a
removal's commit (interfaces.RemovalSweeper); runtime calls `start_up()` when it
migrates and `tidy()` every few minutes.

`tidy()` also deletes Maildirs of no current mailbox, but only those it can tell
were removed: a keyed Maildir whose key the journal lists (made again by a delivery
still in flight when its mailbox went), or a Maildir of the legacy address-named
layout (mail of mailboxes that versions before storage keys left behind) while the
database has mailboxes at all. A Maildir that is merely missing from the database
(a wrong `[database] url`, a restored backup) is never deleted, only reported. It
also deletes spool files no queued delivery refers to. Maildirs are listed before
the mailboxes are read, so a Maildir made meanwhile is never taken for an orphan
(a mailbox's row is committed before its Maildir is made). A spool file is
fsynced before its queue rows commit, so a young one may be in flight: only files
older than `spool_grace` go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from mailhost.storage.database.removals import (
    CERTIFICATE,
    MAILDIR,
    SPOOL,
    MailboxFiles,
    PendingFile,
    SqlRemovalJournal,
)
from mailhost.storage.maildir_layout import (
    adopt_legacy,
    key_of,
    looks_like_maildir,
    maildirs,
    remove_maildir,
)
from mailhost.storage.spool import SpoolDirectory

log = logging.getLogger("mailhost.sweeper")

# Far longer than writing a body and committing its rows can take.
SPOOL_GRACE = timedelta(minutes=15)
TIDY_SECONDS = 600.0


class IssuedCertificates(Protocol):
    def withdraw(self, hostname: str) -> None:
        """Delete the certificate files for `hostname` if mailhost issued them (blocking)."""
        ...

    async def ensure_certificate(self, hostname: str) -> None:
        """Issue one for `hostname` unless its files are there."""
        ...


class FileSweeper:
    """The RemovalSweeper of mailhost; one per process, one sweep at a time."""

    def __init__(
        self,
        journal: SqlRemovalJournal,
        maildir_root: Path,
        spool: SpoolDirectory,
        certificates: IssuedCertificates,
        *,
        spool_grace: timedelta = SPOOL_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._journal = journal
        self._root = maildir_root
        self._spool = spool
        self._certificates = certificates
        self._grace = spool_grace
        self._clock = clock
        self._lock = asyncio.Lock()
        self._reported: set[Path] = set()

    async def sweep(self) -> None:
        """Delete the files the journal lists, then their entries; failures wait for the
        next sweep (logged), so a removal already committed never fails because of them."""
        async with self._lock:
            try:
                await self._sweep()
            except Exception:
                log.exception("sweeping removed files failed; the next sweep tries again")

    async def _sweep(self) -> None:
        pending = await self._journal.pending()
        if not pending:
            return
        found: Mapping[str, list[Path]] = {}
        if any(item.kind == MAILDIR for item in pending):
            found = await asyncio.to_thread(_keyed, self._root)
        referenced = await self._journal.referenced([i.key for i in pending if i.kind == SPOOL])
        done: list[int] = []
        for item in pending:
            try:
                await self._remove(item, found.get(item.key, []), referenced)
            except OSError as error:
                log.error("cannot remove %s %s yet: %s", item.kind, item.key, error)
                continue
            except Exception:
                log.exception(
                    "cannot remove %s %s; the next sweep tries again", item.kind, item.key
                )
                continue
            done.append(item.id)
        await self._journal.done(done)

    async def _remove(self, item: PendingFile, paths: Sequence[Path], referenced: set[str]) -> None:
        if item.kind == MAILDIR:
            for path in paths:
                nbytes = await asyncio.to_thread(remove_maildir, path)
                log.info("removed Maildir %s of a removed mailbox (%d bytes)", path, nbytes)
        elif item.kind == SPOOL:
            if item.key not in referenced:
                try:
                    await self._spool.remove(item.key)
                except LookupError:
                    log.warning("journal names %r, which is no spool message id", item.key)
        elif item.kind == CERTIFICATE:
            await asyncio.to_thread(self._certificates.withdraw, item.key)
            # Hosted again already (added while this entry waited, keeping the files it
            # found): the new domain gets a certificate of its own.
            if item.key in await self._journal.mail_hosts():
                await self._certificates.ensure_certificate(item.key)
        else:
            log.warning("journal entry %d of unknown kind %r left alone", item.id, item.kind)

    async def start_up(self) -> None:
        """At `init` and `serve`: Maildirs of the legacy layout move to their mailbox's
        keyed name, removals a killed process left are finished, orphans go."""
        async with self._lock:
            boxes = await self._journal.mailboxes()
            await asyncio.to_thread(_adopt_all, self._root, boxes)
        await self.tidy()

    async def tidy(self) -> None:
        """Finish journalled removals, then delete orphan Maildirs and spool files."""
        await self.sweep()
        async with self._lock:
            found = await asyncio.to_thread(maildirs, self._root)  # before the mailboxes
            boxes = await self._journal.mailboxes()
            removed = await self._journal.removed_storage_keys()
            await asyncio.to_thread(self._remove_orphans, found, boxes, removed)
            await self._orphan_spool_files()

    def _remove_orphans(
        self, found: Iterable[Path], boxes: Sequence[MailboxFiles], removed: set[str]
    ) -> None:
        keys = {box.storage_key for box in boxes}
        # A legacy Maildir of a current mailbox that could not be adopted stays put.
        legacy = {(box.domain, box.local) for box in boxes}
        for path in found:
            key = key_of(path)
            if key in keys or (path.parent.name, path.name) in legacy:
                continue
            if not path.exists():
                continue  # removed meanwhile, by a sweep in another process
            if key is not None and key not in removed:
                self._report(path, "no mailbox of this database names it; is [database] url right?")
                continue
            if key is None and not boxes:
                self._report(path, "the database has no mailboxes; is [database] url right?")
                continue
            if not looks_like_maildir(path):
                self._report(path, "it is not a Maildir mailhost made")
                continue
            nbytes = remove_maildir(path)
            # A warning, not info: mail deleted without anyone asking, in so many words.
            log.warning("removed Maildir %s (%d bytes): it belongs to no mailbox", path, nbytes)

    def _report(self, path: Path, why: str) -> None:
        if path not in self._reported:
            self._reported.add(path)
            log.warning("leaving %s alone: %s", path, why)

    async def _orphan_spool_files(self) -> None:
        old = await self._spool.written_before(self._clock() - self._grace.total_seconds())
        referenced = await self._journal.referenced(old) if old else set()
        for message_id in old:
            if message_id not in referenced:
                await self._spool.remove(message_id)
                log.info("removed spool file %s: no queued delivery refers to it", message_id)

    async def run(self, every: float = TIDY_SECONDS) -> None:
        """Tidy every `every` seconds until cancelled; a failed round is logged, not fatal."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.tidy()
            except Exception:
                log.exception("tidying the data directory failed; trying again later")


def _keyed(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in maildirs(root):
        key = key_of(path)
        if key is not None:
            found.setdefault(key, []).append(path)
    return found


def _adopt_all(root: Path, boxes: Iterable[MailboxFiles]) -> None:
    for box in boxes:
        try:
            if adopt_legacy(root, box.domain, box.local, box.storage_key):
                log.info("moved Maildir %s/%s/%s to its storage key", root, box.domain, box.local)
        except (OSError, ValueError) as error:
            log.error("cannot move the Maildir of %s@%s: %s", box.local, box.domain, error)
