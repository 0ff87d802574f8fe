"""What `mailhost serve` writes is its owner's alone, and it fixes an older installation."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from tests.system.conftest import Server
from tests.system.test_mail_in import pop3s, retrieve_all, sample, send


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def everything_under(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


def test_delivered_mail_and_everything_else_served_is_owner_only(server: Server) -> None:
    send(server, "bob@example.test", sample("private", b"for bob only\r\n"))
    client = pop3s(server)
    try:
        assert len(retrieve_all(client)) == 1
    finally:
        client.quit()
    maildir = server.maildir("bob@example.test")
    (message,) = (maildir / "new").iterdir()
    for directory in (maildir.parent.parent, maildir.parent, maildir, maildir / "new"):
        assert mode_of(directory) == 0o700, directory
    assert mode_of(message) == 0o600
    for path in everything_under(server.data_dir):
        assert mode_of(path) & 0o077 == 0, path


def test_serve_fixes_a_world_readable_installation_and_says_so(server: Server) -> None:
    send(server, "bob@example.test", sample("before", b"hello\r\n"))
    server.stop()
    paths = everything_under(server.data_dir)
    for path in paths:
        path.chmod(0o755 if path.is_dir() else 0o644)
    process = subprocess.Popen(
        [sys.executable, "-m", "mailhost", "--data-dir", str(server.data_dir), "serve"],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "CA certificate" in line:
                break
    finally:
        process.terminate()
        process.communicate(timeout=30)
    expected = f"fixed permissions of {len(paths)} paths under {server.data_dir} (now owner-only)"
    assert expected in lines, lines
    for path in everything_under(server.data_dir):
        assert mode_of(path) & 0o077 == 0, path
