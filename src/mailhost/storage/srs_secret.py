"""The SRS secret on disk: read at start, made once if missing, never logged.

Every SRS address forwarded mail went out with (model/srs.py) carries a hash
keyed with it; a lost or changed secret turns the bounces to those addresses
into forgeries. So the file is made with O_EXCL (two processes starting at once
keep the first one's), fsynced with its directory, and readable by mailhost's
user alone. Several nodes must share one file (copy it, or point
`[delivery] srs_secret_file` at a shared path).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mailhost.errors import ConfigError
from mailhost.storage.fsync import fsync_dir

SECRET_BYTES = 32


def load_or_create_srs_secret(path: Path) -> bytes:
    """The secret in `path`, made first if the file does not exist. Blocking: called
    while the runtime is built, before anything is served."""
    if not path.exists():
        _create(path)
    try:
        text = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"[delivery] srs_secret_file {path} cannot be read: {exc}") from None
    if not text:
        raise ConfigError(
            f"[delivery] srs_secret_file {path} is empty; remove it to make a new one"
        )
    return text.encode("ascii")


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return  # another process made it a moment ago: its secret is the one
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secrets.token_hex(SECRET_BYTES) + "\n")
        file.flush()
        os.fsync(file.fileno())
    fsync_dir(path.parent)
