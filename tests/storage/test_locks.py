"""Mailbox locks: one holder at a time, within a process and across processes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import mailhost
from mailhost.errors import MailboxInUse
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRef
from mailhost.storage import locks
from mailhost.storage.maildir import LOCK_NAME, MaildirStore

BOB = MailboxRef(1, EmailAddress.hosted("bob@example.com"), "b0" * 16)
ALICE = MailboxRef(2, EmailAddress.hosted("alice@example.com"), "a1" * 16)
IN_USE = "mailbox bob@example.com is in use by another session"
SRC = str(Path(mailhost.__file__).resolve().parents[1])

# Holds bob's mailbox through MaildirStore until its stdin closes or it is killed.
HOLDER = """
import asyncio, sys
from pathlib import Path
from mailhost.model.names import EmailAddress
from mailhost.model.records import MailboxRef
from mailhost.storage.maildir import MaildirStore

async def main() -> None:
    store = MaildirStore(Path(sys.argv[1]))
    async with store.exclusive(MailboxRef(1, EmailAddress.hosted("bob@example.com"), "b0" * 16)):
        print("held", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

asyncio.run(main())
"""

# Tries a plain flock(2) on the lock file, as any other tool would.
PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("busy")
else:
    print("free")
"""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MaildirStore]:
    store = MaildirStore(tmp_path / "mail")
    yield store
    await store.close()


async def python(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )


@asynccontextmanager
async def held_elsewhere(store: MaildirStore) -> AsyncIterator[asyncio.subprocess.Process]:
    child = await python(HOLDER, str(store.root))
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
        assert line == b"held\n"
        yield child
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def test_second_holder_in_the_same_process_is_refused(store: MaildirStore) -> None:
    async with store.exclusive(BOB):
        with pytest.raises(MailboxInUse) as refused:
            async with store.exclusive(BOB):
                pytest.fail("two holders of one mailbox")
    assert refused.value.code == "mailbox_in_use"
    assert refused.value.message == IN_USE


async def test_lock_is_released_on_exit_and_on_error(store: MaildirStore) -> None:
    async with store.exclusive(BOB):
        pass
    with pytest.raises(RuntimeError):
        async with store.exclusive(BOB):
            raise RuntimeError("session crashed")
    async with store.exclusive(BOB):
        pass


async def test_other_mailboxes_are_not_blocked(store: MaildirStore) -> None:
    async with store.exclusive(BOB), store.exclusive(ALICE):
        await store.deliver(BOB, b"delivery does not need the lock")
    assert len(await store.list(BOB)) == 1


@pytest.mark.parametrize("ending", ["exit", "kill"])
async def test_holder_in_another_process_blocks_until_it_ends(
    store: MaildirStore, ending: str
) -> None:
    async with held_elsewhere(store) as child:
        with pytest.raises(MailboxInUse, match=IN_USE):
            async with store.exclusive(BOB):
                pytest.fail("the other process holds the mailbox")
        if ending == "exit":
            assert child.stdin is not None
            child.stdin.close()
            assert await child.wait() == 0
        else:
            child.kill()  # the kernel drops flock(2) locks of a dead process
            await child.wait()
    async with store.exclusive(BOB):
        pass


async def test_holder_here_is_seen_by_a_plain_flock_elsewhere(store: MaildirStore) -> None:
    lock_file = str(store.maildir_path(BOB) / LOCK_NAME)
    async with store.exclusive(BOB):
        probe = await python(PROBE, lock_file)
        assert (await probe.communicate())[0] == b"busy\n"
    probe = await python(PROBE, lock_file)
    assert (await probe.communicate())[0] == b"free\n"


async def test_lock_file_stays_in_place_and_is_not_listed(store: MaildirStore) -> None:
    async with store.exclusive(BOB):
        pass
    assert (store.maildir_path(BOB) / LOCK_NAME).is_file()
    assert await store.list(BOB) == []


async def test_release_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "box.lock"
    lock = await locks.acquire(path, "box")
    assert lock.held
    with pytest.raises(MailboxInUse, match="mailbox box is in use by another session"):
        await locks.acquire(path, "box")
    lock.release()
    lock.release()
    assert not lock.held
    (await locks.acquire(path, "box")).release()


async def test_cancelled_acquisition_does_not_keep_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "box.lock"
    for spins in range(1, 21):
        attempt = asyncio.create_task(locks.acquire(path, "box"))
        for _ in range(spins % 4 + 1):
            await asyncio.sleep(0)  # let it hand the flock to a thread, then give up
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        for _ in range(200):
            lock = locks.try_lock(path)
            if lock is not None:
                lock.release()
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("a cancelled acquisition left the mailbox locked")
