"""`mailhost init` makes the data directory owner-only, whatever the umask it was started
with, and makes an older installation's readable files owner-only when run again."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def mailhost(data_dir: Path, *args: str) -> str:
    """The real command, started the way a shell with the common umask 022 starts it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOST_")}
    done = subprocess.run(
        [sys.executable, "-m", "mailhost", "--data-dir", str(data_dir), *args],
        env=env,
        umask=0o022,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def everything_under(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A new installation on SQLite (the database is a file in the data directory)."""
    data_dir = tmp_path / "data"
    out = mailhost(data_dir, "init", "--hostname", "mx.hosting.test", "--demo")
    assert "fixed permissions" not in out  # nothing to fix in what it made itself
    return data_dir


def test_init_makes_every_path_owner_only_under_umask_022(installed: Path) -> None:
    data = installed
    assert mode_of(data) == 0o700
    for name in ("mailhost.toml", "mailhost.db", "demo-logins.txt", "ca/ca.key", "ca/ca.pem"):
        assert mode_of(data / name) == 0o600, name
    assert (mode_of(data / "ca"), mode_of(data / "certs")) == (0o700, 0o700)
    certificates = sorted(p.name for p in (data / "certs").iterdir())
    assert "mx.hosting.test.pem" in certificates and "mail.example.test.key" in certificates
    for path in everything_under(data):
        expected = 0o700 if path.is_dir() else 0o600
        assert mode_of(path) == expected, path


def test_init_again_fixes_a_world_readable_installation(installed: Path) -> None:
    made_readable = 0
    for path in everything_under(installed):
        path.chmod(0o755 if path.is_dir() else 0o644)
        made_readable += 1

    out = mailhost(installed, "init")

    line = f"fixed permissions of {made_readable} paths under {installed} (now owner-only)"
    assert line in out.splitlines()
    for path in everything_under(installed):
        assert mode_of(path) & 0o077 == 0, path
    assert mode_of(installed / "ca" / "ca.key") == 0o600
    assert "fixed permissions" not in mailhost(installed, "init")  # once fixed, quiet
