"""Syncing a directory: what makes a new, renamed or removed entry in it durable."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(directory: Path, sync: Callable[[int], None] = os.fsync) -> None:
    """`sync` (fsync, or syncfs for the whole file system) on the directory's descriptor."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sync(fd)
    finally:
        os.close(fd)
