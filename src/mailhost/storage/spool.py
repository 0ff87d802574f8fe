"""Outbound message bodies on disk: tmp → fsync → rename into msg/ → fsync dir, before queueing.

Layout: `<root>/tmp/<id>` while being written, `<root>/msg/<id>` once durable.
The id is `<unix seconds in hex>-<16 random hex digits>`: unique across nodes
sharing the directory, sortable by age, and safe as a file name. The queue's
rows refer to it (`deliveries.message_id`), so a row is only ever committed
after its body is on disk.
"""

from __future__ import annotations

import asyncio
import os
import re
from contextlib import suppress
from pathlib import Path

from mailhost.interfaces import SpoolRef
from mailhost.model.envelope import new_message_id
from mailhost.storage.fsync import fsync_dir

_ID = re.compile(r"^[0-9a-f]{8,16}-[0-9a-f]{16}$")


class SpoolError(LookupError):
    """No spooled body has this id (never written, or removed after its deliveries)."""


class SpoolDirectory:
    """The Spool of mailhost: one file per outbound message under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, message_id: str) -> Path:
        """Where a body lives; refuses ids that are not ours (they come from the CLI too)."""
        if not _ID.match(message_id):
            raise SpoolError(f"{message_id!r} is not a spool message id")
        return self.root / "msg" / message_id

    async def write(self, message: bytes, message_id: str | None = None) -> SpoolRef:
        """Store the body under `message_id` (a new one if None: the envelope's id, so the
        trace header, the 250 reply and the logs name it); the file and its directory entry
        are fsynced when this returns."""
        message_id = message_id or new_message_id()
        self.path_of(message_id)  # the id must be one of ours
        await asyncio.to_thread(_store, self.root, message_id, message)
        return SpoolRef(message_id, len(message))

    async def read(self, message_id: str) -> bytes:
        path = self.path_of(message_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise SpoolError(f"no spooled message {message_id}") from None

    async def remove(self, message_id: str, *, durable: bool = True) -> None:
        """Idempotent: two workers finishing the last recipients may both call it.

        `durable=False` leaves out the directory's fsync: for a body no row refers to any
        more, whose return after a crash the sweeper's orphan pass undoes.
        """
        await asyncio.to_thread(_unlink, self.path_of(message_id), durable)

    async def ids(self) -> list[str]:
        """Every durable body, oldest first (for sweeps and the operator)."""
        return await asyncio.to_thread(_listing, self.root / "msg")

    async def written_before(self, moment: float) -> list[str]:
        """Durable bodies whose file was written before `moment` (a time.time() value)."""
        return await asyncio.to_thread(_written_before, self.root / "msg", moment)


def _store(root: Path, message_id: str, message: bytes) -> None:
    tmp_dir, msg_dir = root / "tmp", root / "msg"
    _ensure_dir(tmp_dir)
    _ensure_dir(msg_dir)
    tmp = tmp_dir / message_id
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(message)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, msg_dir / message_id)
    # fsync the directory too, or the rename may not survive a crash.
    fsync_dir(msg_dir)


def _ensure_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A new directory's own entry must be durable too, or the first body may vanish.
    fsync_dir(directory.parent)


def _unlink(path: Path, durable: bool) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    if durable:
        fsync_dir(path.parent)


def _listing(directory: Path) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted((name for name in names if _ID.match(name)), key=_age)


def _written_before(directory: Path, moment: float) -> list[str]:
    found: list[str] = []
    for message_id in _listing(directory):
        try:
            if (directory / message_id).stat().st_mtime < moment:
                found.append(message_id)
        except FileNotFoundError:
            continue  # its deliveries ended meanwhile and took it away
    return found


def _age(message_id: str) -> tuple[int, str]:
    stamp, _, rest = message_id.partition("-")
    return int(stamp, 16), rest
