"""Where Maildirs live on disk, and keeping that tree in step with the mailboxes.

Layout: `<root>/<domain A-label>/<local part>.<storage key>/{tmp,new,cur}`. The
storage key (`mailboxes.storage_key`, 32 random hex digits) belongs to one mailbox
and is never given to another, so a mailbox made at the address of a removed one
gets a directory of its own and can never see the files of the one before it.
Versions before it named the directory `<local part>` alone ("legacy"):
`adopt_legacy` moves such a Maildir into place for the mailbox that has it now.

Everything here blocks (renames, fsyncs, tree removal): callers on the event loop
go through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
from pathlib import Path

from mailhost.storage.fsync import fsync_dir

LOCK_NAME = ".mailhost.lock"
_KEY = re.compile(r"^[0-9a-f]{32}$")
# All that mailhost ever puts in a Maildir; anything else there was put by someone else.
_OURS = frozenset({"tmp", "new", "cur", LOCK_NAME})


@functools.lru_cache(maxsize=4096)
def maildir_path(root: Path, domain: str, local: str, key: str) -> Path:
    """The mailbox's Maildir; refuses names that could escape `root`."""
    # Cached: pathlib is slow, and every delivery and POP3 command asks again.
    if not _KEY.match(key):
        raise ValueError(f"storage key {key!r} is not 32 hex digits")
    return root / _segment(domain, "domain") / f"{_segment(local, 'local part')}.{key}"


def _segment(value: str, what: str) -> str:
    if not value or "/" in value or "\0" in value or value.startswith("."):
        raise ValueError(f"{what} {value!r} cannot name a maildir directory")
    return value


def key_of(path: Path) -> str | None:
    """The storage key a Maildir's name ends in; None for a legacy name."""
    _, dot, key = path.name.rpartition(".")
    return key if dot and _KEY.match(key) else None


def maildirs(root: Path) -> list[Path]:
    """Every directory two levels under `root`: the Maildirs, and whatever else is there."""
    found: list[Path] = []
    for domain in _directories(root):
        found += _directories(domain)
    return found


def _directories(parent: Path) -> list[Path]:
    try:
        with os.scandir(parent) as entries:
            return [
                Path(e.path)
                for e in entries
                if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
            ]
    except FileNotFoundError:
        return []


def looks_like_maildir(path: Path) -> bool:
    """True if `path` holds nothing but what mailhost puts in a Maildir (or nothing)."""
    try:
        return set(os.listdir(path)) <= _OURS
    except (FileNotFoundError, NotADirectoryError):
        return False


def size_of(path: Path) -> int:
    """Bytes of the files under `path` (0 if it is gone)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total


def remove_maildir(path: Path) -> int:
    """Delete a Maildir, and its domain's directory if that is left empty; returns the
    bytes its files held. Safe to repeat after a crash part way through."""
    nbytes = size_of(path)
    # Already gone is fine: removed by another sweep, or by a run killed after it.
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
    # fsync the parent too, or a crash could bring the directory back.
    _sync_if_present(path.parent)
    try:
        path.parent.rmdir()
    except OSError:
        return nbytes  # other mailboxes of the domain are still there
    _sync_if_present(path.parent.parent)
    return nbytes


def _sync_if_present(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        fsync_dir(directory)


def adopt_legacy(root: Path, domain: str, local: str, key: str) -> bool:
    """Move `<root>/<domain>/<local>` to the mailbox's keyed name; True if anything moved.

    One rename, made durable before it counts: killed before it, the legacy Maildir
    is adopted at the next start; killed after it, there is nothing left to do.
    """
    keyed = maildir_path(root, domain, local, key)
    legacy = keyed.parent / local
    if not legacy.is_dir() or not looks_like_maildir(legacy):
        return False
    if not keyed.exists():
        os.rename(legacy, keyed)
        fsync_dir(keyed.parent)
        return True
    # Both exist only if something wrote to the new name before the upgrade ran:
    # the mail is the same mailbox's, so it joins the keyed Maildir (names are unique).
    for sub in ("new", "cur"):
        source = legacy / sub
        if not source.is_dir():
            continue
        (keyed / sub).mkdir(mode=0o700, exist_ok=True)
        for name in os.listdir(source):
            os.rename(source / name, keyed / sub / name)
        fsync_dir(keyed / sub)
    remove_maildir(legacy)
    return True
