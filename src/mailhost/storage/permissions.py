"""Owner-only files: what mailhost keeps on disk is for the account it runs as alone.

The data directory holds argon2 hashes, DKIM and TLS private keys and tokens (the
SQLite database), the smarthost password (mailhost.toml) and everyone's mail. The
CLI sets OWNER_ONLY_UMASK when it starts, so that what it and its children (the
Maildir agent, SQLite) create is 0700/0600 even where a file's own mode is left
to the umask; `restrict` takes group and other permissions off what an older
installation left readable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

OWNER_ONLY_UMASK = 0o077
_GROUP_AND_OTHER = 0o077


@dataclass
class Restricted:
    """What `restrict` did: how many paths it changed, and those it could not change."""

    fixed: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def write_private(path: Path, text: str) -> None:
    """Create `path` (it must not exist) as 0600 and write `text` into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def restrict(roots: Iterable[Path]) -> Restricted:
    """Take group and other permissions off each root and, for directories, all under it.

    Blocking (walks directories): call it before the event loop starts or in a thread.
    Symbolic links are neither changed nor followed: what they point at is the
    operator's (a certificate kept elsewhere, say), not ours to change.
    """
    done = Restricted()
    for path in _walk(roots):
        try:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not mode & _GROUP_AND_OTHER:
                continue
            path.chmod(stat.S_IMODE(mode) & ~_GROUP_AND_OTHER)
        except FileNotFoundError:
            continue  # removed meanwhile (a delivery's tmp file, say)
        except OSError as exc:  # not ours: another account's file in the directory
            done.failed.append((path, exc.strerror or str(exc)))
            continue
        done.fixed += 1
    return done


def _walk(roots: Iterable[Path]) -> Iterator[Path]:
    """The paths `restrict` looks at. A directory that is owner-only already shields
    everything under it, and mailhost creates nothing readable inside one, so it is
    not entered: a start costs a few stats, not one per message of every mailbox."""
    for given in roots:
        if not given.exists():
            continue
        root = given.resolve()  # a root itself may be a link: the operator's pointer to it
        enter = root.is_dir() and _shared(root)  # asked before the caller fixes it
        yield root
        if not enter:
            continue
        for directory, subdirectories, files in os.walk(root):
            base = Path(directory)
            # os.walk lists links to directories with the directories but does not enter them.
            subdirectories[:] = [name for name in subdirectories if _shared(base / name)]
            yield from (base / name for name in subdirectories)
            yield from (base / name for name in files)


def _shared(directory: Path) -> bool:
    """Whether group or others may enter or list the directory (a link counts as not)."""
    try:
        mode = directory.lstat().st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISLNK(mode) and bool(mode & _GROUP_AND_OTHER)
