"""Mailboxes as Maildirs: tmp → sync → rename into new → sync; the UIDL is the unique name.

Layout: `<root>/<domain A-label>/<local part>.<storage key>/{tmp,new,cur}`
(https://cr.yp.to/proto/maildir.html; storage/maildir_layout.py says why the key).
A message name is `<sec>.M<usec>P<pid>Q<n>R<hex>.<host>,S=<size>`; the `,S=` field
(Dovecot's) gives the size without a stat. The uid is the name without the
`:2,<flags>` info, so it stays the same whether the file sits in new/ or cur/.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from mailhost.interfaces import MessageUid, StoredMessage
from mailhost.model.records import MailboxRef
from mailhost.settings import SyncMethod
from mailhost.storage import locks
from mailhost.storage.fsync import fsync_dir
from mailhost.storage.maildir_agent import ensure_maildir
from mailhost.storage.maildir_layout import LOCK_NAME, maildir_path
from mailhost.storage.maildir_writer import MaildirWriter

CHUNK = 64 * 1024
_INFO = ":"  # Maildir info separator: "<unique>:2,<flags>"
# RFC 1939 §7: a UIDL is at most 70 characters; a short host label keeps our names under it.
_HOST_CHARS = 16
_STAMP = re.compile(r"^(\d+)(?:\.M(\d+))?")
_SIZE_FIELD = re.compile(r",S=(\d+)(?=,|$)")
_T = TypeVar("_T")


class MessageGone(LookupError):
    """The uid names no message in the mailbox: never delivered there, or deleted since."""


@dataclass(frozen=True, slots=True)
class _Entry:
    uid: MessageUid
    path: str  # a str, not a Path: listing a large Maildir makes one per message
    size: int


class MaildirStore:
    """The MailStore of mailhost: one Maildir per mailbox under `root`."""

    def __init__(self, root: Path, sync: SyncMethod = SyncMethod.FILESYSTEM) -> None:
        self.root = root
        self._names = _NameMaker(_host_label(socket.gethostname()))
        self._writer = MaildirWriter(sync)

    def maildir_path(self, mailbox: MailboxRef) -> Path:
        """Where the mailbox lives: named by its storage key, never by its address alone."""
        address = mailbox.address
        return maildir_path(self.root, address.domain.ascii, address.local, mailbox.storage_key)

    async def deliver(self, mailbox: MailboxRef, message: bytes) -> StoredMessage:
        """Store a copy; the file and its directory entry are durable when this returns."""
        name = self._names.next(len(message))
        await self._writer.write(self.maildir_path(mailbox), name, message)
        return StoredMessage(name, len(message))

    async def close(self) -> None:
        """Stop the delivery agent once the deliveries it holds are stored."""
        await self._writer.close()

    async def list(self, mailbox: MailboxRef) -> Sequence[StoredMessage]:
        """Messages of new/ and cur/ in arrival order; creates the Maildir if missing."""
        maildir = self.maildir_path(mailbox)
        entries = await asyncio.to_thread(_listing, maildir)
        return [StoredMessage(entry.uid, entry.size) for entry in entries]

    async def read(self, mailbox: MailboxRef, uid: MessageUid) -> AsyncGenerator[bytes, None]:
        """The message in chunks of at most CHUNK bytes (none for an empty message).

        Raises MessageGone from the first iteration if there is no such message, so
        a caller can pull the first chunk before committing to a positive reply.
        A message deleted while being read is still read to its end (POSIX unlink).
        It is a generator so that a caller stopping early (TOP, a client gone) can
        `aclose()` it and close the file now rather than at garbage collection.
        """
        maildir = self.maildir_path(mailbox)
        # Opened and first read in one thread hop: a message of up to CHUNK bytes (most
        # mail) costs one hop, not three (open, read, read to see the end).
        source, chunk = await _in_thread(partial(_open_and_read, maildir, uid), _close_opened)
        try:
            while chunk:
                yield chunk
                if source.ended:
                    break
                chunk = await asyncio.to_thread(source.read, CHUNK)
        finally:
            source.close()

    async def delete(self, mailbox: MailboxRef, uids: Collection[MessageUid]) -> int:
        """Unlink the messages and fsync their directories; uids already gone count 0."""
        maildir = self.maildir_path(mailbox)
        return await asyncio.to_thread(_remove, maildir, frozenset(uids))

    async def usage(self, mailbox: MailboxRef) -> int:
        """Bytes of the messages in new/ and cur/ now (0 for a Maildir never created)."""
        maildir = self.maildir_path(mailbox)
        entries = await asyncio.to_thread(_scan, maildir)
        return sum(entry.size for entry in entries.values())

    @asynccontextmanager
    async def exclusive(self, mailbox: MailboxRef) -> AsyncIterator[None]:
        """Hold the mailbox across processes; raises MailboxInUse at once if held."""
        maildir = self.maildir_path(mailbox)
        prepare = partial(ensure_maildir, maildir)
        lock = await locks.acquire(maildir / LOCK_NAME, str(mailbox.address), prepare)
        try:
            yield
        finally:
            lock.release()


class _NameMaker:
    """Unique Maildir names whose stamps strictly increase within this store."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._last_us = 0
        self._counter = 0

    def next(self, size: int) -> str:
        with self._lock:
            # Never repeat or go back, even if the wall clock does, so that
            # arrival order (the stamp) is the order deliveries were made.
            self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
            self._counter += 1
            stamp, counter = self._last_us, self._counter
        seconds, micros = divmod(stamp, 1_000_000)
        # Not a secret: pid, counter and time already make the name unique; the
        # random part guards against a reused pid. random avoids a syscall per message.
        unique = f"M{micros:06d}P{os.getpid()}Q{counter}R{random.getrandbits(32):08x}"
        return f"{seconds}.{unique}.{self._host},S={size}"


class _MessageFile:
    """An open message; the fd is closed by close() or, if a read is in flight, after it.

    A cancelled reader's thread may still be inside os.read; closing the fd under
    it could let a newly opened file reuse the number and be read instead.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._guard = threading.Lock()
        self._reading = False
        self._closed = False
        self.ended = False  # a read met the end of the file

    def read(self, size: int) -> bytes:
        """`size` bytes, or fewer at the end of the file (and then `ended` is set)."""
        with self._guard:
            if self._closed:
                return b""
            self._reading = True
        try:
            return self._read_full(size)
        finally:
            with self._guard:
                self._reading = False
                if self._closed:
                    os.close(self._fd)

    def _read_full(self, size: int) -> bytes:
        # os.read may return less than asked before the end; only b"" says the end.
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            part = os.read(self._fd, wanted)
            if not part:
                self.ended = True
                break
            parts.append(part)
            wanted -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            if self._reading:
                return
        os.close(self._fd)


async def _in_thread(work: Callable[[], _T], abandon: Callable[[_T], None]) -> _T:
    """Run `work` in a thread; if we are cancelled first, `abandon` its result when it comes."""
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(partial(_abandon, abandon))
        raise


def _abandon(abandon: Callable[[_T], None], done: asyncio.Future[_T]) -> None:
    if not done.cancelled() and done.exception() is None:
        abandon(done.result())


def _host_label(hostname: str) -> str:
    # The Maildir spec forbids '/' and ':' in names; ',' would break the ,S= field.
    label = re.sub(r"[^A-Za-z0-9-]", "_", hostname.split(".")[0])[:_HOST_CHARS]
    return label or "localhost"


def _is_uid(uid: str) -> bool:
    return bool(uid) and not uid.startswith(".") and not any(c in uid for c in "/:\0")


def _size(uid: str, path: str) -> int | None:
    field = _SIZE_FIELD.search(uid)
    if field is not None:
        return int(field.group(1))
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _scan(maildir: Path) -> dict[MessageUid, _Entry]:
    """The messages of new/ and cur/ by uid; tmp/ is never looked at."""
    found: dict[MessageUid, _Entry] = {}
    for sub in ("new", "cur"):
        try:
            with os.scandir(maildir / sub) as names:
                for item in names:
                    uid = item.name.split(_INFO, 1)[0]
                    if item.name.startswith(".") or uid in found or not item.is_file():
                        continue  # a uid seen twice is mid-move from new/ to cur/
                    size = _size(uid, item.path)
                    if size is not None:
                        found[uid] = _Entry(uid, item.path, size)
        except FileNotFoundError:
            continue
    return found


def _arrival(entry: _Entry) -> tuple[int, int, str]:
    stamp = _STAMP.match(entry.uid)
    if stamp is None:
        return (0, 0, entry.uid)
    return (int(stamp.group(1)), int(stamp.group(2) or 0), entry.uid)


def _listing(maildir: Path) -> list[_Entry]:
    ensure_maildir(maildir)
    return sorted(_scan(maildir).values(), key=_arrival)


def _candidates(maildir: Path, uid: str) -> Iterator[str]:
    # Where mailhost leaves it first (it never moves mail to cur/), then where another
    # Maildir client may have moved it, then the same with flags in the name.
    yield os.path.join(maildir, "new", uid)
    yield os.path.join(maildir, "cur", uid)
    for sub in ("cur", "new"):
        try:
            with os.scandir(maildir / sub) as names:
                yield from (i.path for i in names if i.name.startswith(uid + _INFO))
        except FileNotFoundError:
            continue


def _open_message(maildir: Path, uid: str) -> _MessageFile:
    if _is_uid(uid):
        for path in _candidates(maildir, uid):
            try:
                return _MessageFile(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                continue  # moved between new/ and cur/, or deleted: try the next place
    raise MessageGone(f"message {uid!r} is not in {maildir}")


def _open_and_read(maildir: Path, uid: str) -> tuple[_MessageFile, bytes]:
    source = _open_message(maildir, uid)
    try:
        return source, source.read(CHUNK)
    except BaseException:
        source.close()
        raise


def _close_opened(opened: tuple[_MessageFile, bytes]) -> None:
    opened[0].close()


def _remove(maildir: Path, uids: frozenset[MessageUid]) -> int:
    present = _scan(maildir)
    freed = 0
    touched: set[str] = set()
    for uid in uids:
        entry = present.get(uid)
        if entry is None:
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # deleted meanwhile by another session: it freed the bytes
        freed += entry.size
        touched.add(os.path.dirname(entry.path))
    for directory in touched:
        fsync_dir(Path(directory))  # or a crash could bring the deleted mail back
    return freed


__all__ = ["CHUNK", "LOCK_NAME", "MaildirStore", "MessageGone"]
