"""Exclusive mailbox locks across processes, so one POP3 session owns a maildrop (RFC 1939 §8)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from mailhost.errors import MailboxInUse


class MailboxLock:
    """A held flock(2) on a lock file; `release()` drops it and is idempotent."""

    __slots__ = ("_fd", "path")

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        # Synchronous on purpose: unlocking and closing a local file never waits,
        # and a release that needs the event loop could be skipped by a cancellation.
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def try_lock(path: Path) -> MailboxLock | None:
    """Take the lock without waiting, or None when it is held; blocking I/O, so run in a thread.

    The file is opened anew for every acquisition: flock(2) locks belong to the
    open file description, so two acquisitions conflict even inside one process.
    The file is never unlinked, since unlinking a lock file lets two holders lock
    two different inodes.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return MailboxLock(fd, path)


async def acquire(
    path: Path, mailbox: str, prepare: Callable[[], None] | None = None
) -> MailboxLock:
    """Take the lock for `mailbox` now, or raise MailboxInUse (POP3 answers -ERR [IN-USE]).

    `prepare` (blocking: say, making the lock file's directory) runs first in the
    same thread, so that a session start costs one hand-off to a thread, not two.
    """
    attempt = asyncio.ensure_future(asyncio.to_thread(_prepare_and_lock, path, prepare))
    try:
        lock = await asyncio.shield(attempt)
    except asyncio.CancelledError:
        # The thread cannot be stopped; a lock it takes after we gave up must not leak.
        attempt.add_done_callback(_release_abandoned)
        raise
    if lock is None:
        raise MailboxInUse(f"mailbox {mailbox} is in use by another session")
    return lock


def _prepare_and_lock(path: Path, prepare: Callable[[], None] | None) -> MailboxLock | None:
    if prepare is not None:
        prepare()
    return try_lock(path)


def _release_abandoned(attempt: asyncio.Future[MailboxLock | None]) -> None:
    if not attempt.cancelled() and attempt.exception() is None:
        lock = attempt.result()
        if lock is not None:
            lock.release()
