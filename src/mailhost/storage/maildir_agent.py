"""The Maildir delivery agent: a process that makes deliveries durable, a batch at a time.

Run as `python -m mailhost.storage.maildir_agent FD METHOD` by storage/maildir_writer.py,
which sends it deliveries over the socket FD and waits for each one's reply. The
order is the Maildir one (https://cr.yp.to/proto/maildir.html): the message is
written in `tmp/`, made durable, renamed into `new/`, and the rename is made
durable before the reply says so. A crash at any point leaves either no file in
`new/` or a whole one.

Why a process: a durable delivery is four or five system calls per message plus
the syncs. In a thread of the server each of those calls gives up the GIL and
waits for it again behind the busy event loop; here they run on another core.
Why batches: whatever deliveries arrived while the previous batch was being
synced are written together and synced with one of two methods:

- `filesystem` (Linux): one syncfs(2) once the batch's files are written and one
  once they are renamed. syncfs flushes and waits for the file system's data and
  metadata, so it covers every file and directory of the batch: two calls
  instead of two fsyncs per message. It also flushes whatever else is dirty on
  that file system, so a Maildir root that shares one with a busy database may
  do better with `file`.
- `file`: fsync(2) of each file, then of each `new/` directory renamed into.

The wire format is length-prefixed frames (struct, network order):
request `id:u32 maildir_len:u32 name_len:u32 message_len:u64` + maildir + name + message;
reply `id:u32 errno:i32 text_len:u32` + text, errno 0 meaning stored.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from mailhost.storage.fsync import fsync_dir

REQUEST = struct.Struct("!IIIQ")
REPLY = struct.Struct("!IiI")
# settings.SyncMethod's values; not imported, so the agent starts without pydantic.
FILESYSTEM = "filesystem"
FILE = "file"
_SUBDIRS = ("tmp", "new", "cur")
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_READ = 1 << 20
# An error that is not an OSError still gets a reply, under this number.
NOT_AN_OS_ERROR = -1


@dataclass(frozen=True, slots=True)
class Delivery:
    maildir: Path
    name: str
    message: bytes | memoryview

    @property
    def staged(self) -> Path:
        return self.maildir / "tmp" / self.name

    @property
    def final(self) -> Path:
        return self.maildir / "new" / self.name


def request_header(request_id: int, maildir: Path, name: str, size: int) -> bytes:
    where, what = os.fsencode(maildir), name.encode()
    return REQUEST.pack(request_id, len(where), len(what), size) + where + what


def _load_syncfs() -> Callable[[int], None] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int

    def syncfs(fd: int) -> None:
        if function(fd) != 0:
            number = ctypes.get_errno()
            raise OSError(number, f"syncfs: {os.strerror(number)}")

    return syncfs


_syncfs = _load_syncfs()


def syncfs_available() -> bool:
    return _syncfs is not None


class BatchWriter:
    """Writes batches of deliveries; one instance per agent, one batch at a time."""

    def __init__(self, method: str) -> None:
        self._per_filesystem = method == FILESYSTEM
        # Maildirs known to exist, with the device each is on (a syncfs per device).
        self._devices: dict[Path, int] = {}

    def write(self, batch: Sequence[Delivery]) -> list[Exception | None]:
        outcomes: list[Exception | None] = [None] * len(batch)
        written = [i for i, item in enumerate(batch) if _record(outcomes, i, self._stage, item)]
        try:
            self._sync_files([batch[i].maildir for i in written])
        except OSError as error:
            for i in written:
                outcomes[i] = error
                _discard(batch[i].staged)
            return outcomes
        renamed = [i for i in written if _record(outcomes, i, _publish, batch[i])]
        try:
            self._sync_renames([batch[i].maildir for i in renamed])
        except OSError as error:
            for i in renamed:
                outcomes[i] = error
                _discard(batch[i].final)  # we report failure and the sender retries: no duplicate
        return outcomes

    def _stage(self, delivery: Delivery) -> None:
        try:
            fd = self._create(delivery)
        except FileNotFoundError:
            # The Maildir went away since we saw it (mailbox removed and added again).
            self._devices.pop(delivery.maildir, None)
            fd = self._create(delivery)
        try:
            view = memoryview(delivery.message)
            while view:
                view = view[os.write(fd, view) :]
            if not self._per_filesystem:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _discard(delivery.staged)
            raise
        os.close(fd)

    def _create(self, delivery: Delivery) -> int:
        if delivery.maildir not in self._devices:
            ensure_maildir(delivery.maildir)
            self._devices[delivery.maildir] = os.stat(delivery.maildir).st_dev
        return os.open(delivery.staged, _OPEN_NEW, 0o600)

    def _sync_files(self, maildirs: Sequence[Path]) -> None:
        if self._per_filesystem:
            self._sync_filesystems(maildirs)
        # else each file was fsynced as it was written

    def _sync_renames(self, maildirs: Sequence[Path]) -> None:
        if self._per_filesystem:
            self._sync_filesystems(maildirs)
            return
        for maildir in dict.fromkeys(maildirs):
            fsync_dir(maildir / "new")

    def _sync_filesystems(self, maildirs: Sequence[Path]) -> None:
        assert _syncfs is not None  # main() refuses `filesystem` without it
        one_per_device = {self._devices[maildir]: maildir for maildir in maildirs}
        for maildir in one_per_device.values():
            fsync_dir(maildir, _syncfs)


def _record(
    outcomes: list[Exception | None], i: int, step: Callable[[Delivery], None], item: Delivery
) -> bool:
    """Run one delivery's step; a failure is that delivery's alone."""
    try:
        step(item)
    except Exception as error:
        outcomes[i] = error
        return False
    return True


def _publish(delivery: Delivery) -> None:
    try:
        # rename, not link: names are unique (maildir._NameMaker), and it is one call fewer.
        os.rename(delivery.staged, delivery.final)
    except BaseException:
        _discard(delivery.staged)
        raise


def _discard(path: Path) -> None:
    # Best effort: another error is already on its way up.
    with suppress(OSError):
        path.unlink(missing_ok=True)


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    # fsync the parent too, or a crash could forget the directory and the mail in it.
    fsync_dir(path.parent)


def ensure_maildir(maildir: Path) -> None:
    if all((maildir / sub).is_dir() for sub in _SUBDIRS):
        return
    maildir.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for directory in (maildir.parent, maildir, *(maildir / sub for sub in _SUBDIRS)):
        _make_dir(directory)


def _requests(buffer: bytearray) -> tuple[list[tuple[int, Delivery]], int]:
    """The whole requests at the start of `buffer`, and how many bytes they took."""
    frames: list[tuple[int, int, int, int, int]] = []
    at = 0
    while len(buffer) - at >= REQUEST.size:
        request_id, where, what, size = REQUEST.unpack_from(buffer, at)
        end = at + REQUEST.size + where + what + size
        if end > len(buffer):
            break  # the rest of this one has not arrived yet
        frames.append((request_id, at + REQUEST.size, where, what, end))
        at = end
    view = memoryview(bytes(buffer[:at]))  # one copy; the messages are slices of it
    found: list[tuple[int, Delivery]] = []
    for request_id, start, where, what, end in frames:
        maildir = Path(os.fsdecode(bytes(view[start : start + where])))
        name = bytes(view[start + where : start + where + what]).decode()
        found.append((request_id, Delivery(maildir, name, view[start + where + what : end])))
    return found, at


def _reply(request_id: int, outcome: Exception | None) -> bytes:
    if outcome is None:
        return REPLY.pack(request_id, 0, 0)
    number = outcome.errno if isinstance(outcome, OSError) and outcome.errno else NOT_AN_OS_ERROR
    text = str(outcome).encode(errors="replace")
    return REPLY.pack(request_id, number, len(text)) + text


def serve(channel: socket.socket, method: str) -> None:
    """Until the server closes its end: read what has arrived, write it as one batch, reply."""
    writer = BatchWriter(method)
    buffer = bytearray()
    while chunk := channel.recv(_READ):
        buffer += chunk
        with suppress(BlockingIOError):  # take whatever else is already waiting
            while more := channel.recv(_READ, socket.MSG_DONTWAIT):
                buffer += more
        requests, used = _requests(buffer)
        del buffer[:used]
        if requests:
            outcomes = writer.write([delivery for _, delivery in requests])
            pairs = zip(requests, outcomes, strict=True)
            channel.sendall(b"".join(_reply(rid, outcome) for (rid, _), outcome in pairs))


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[1] not in (FILESYSTEM, FILE):
        print("usage: python -m mailhost.storage.maildir_agent FD filesystem|file", file=sys.stderr)
        return 2
    if argv[1] == FILESYSTEM and not syncfs_available():
        print("maildir agent: syncfs(2) is not available here; use `file`", file=sys.stderr)
        return 2
    # Ctrl-C reaches the whole process group; the agent stops when the server
    # closes its end, after the batch in hand, not in the middle of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = socket.socket(fileno=int(argv[0]))
    try:
        serve(channel, argv[1])
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server went away: nothing is waiting for a reply
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
