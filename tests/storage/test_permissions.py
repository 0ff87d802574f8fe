"""Owner-only files: `restrict` takes group and other permissions off a tree, links aside."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mailhost.storage.permissions import restrict, write_private


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_restrict_takes_group_and_other_bits_off_everything_and_counts(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "mail" / "a.example" / "bob" / "new").mkdir(parents=True)
    message = root / "mail" / "a.example" / "bob" / "new" / "1.x"
    message.write_bytes(b"hello")
    config = root / "mailhost.toml"
    config.write_text("")
    script = root / "hook"
    script.write_text("")
    for path in (root, *root.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    script.chmod(0o775)
    message.chmod(0o600)  # already private: not counted

    outcome = restrict([root])

    assert (outcome.fixed, outcome.failed) == (7, [])
    assert [mode_of(p) for p in (root, root / "mail", message.parent)] == [0o700] * 3
    assert (mode_of(config), mode_of(message), mode_of(script)) == (0o600, 0o600, 0o700)
    assert restrict([root]).fixed == 0  # nothing left to do


def test_restrict_neither_changes_nor_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "operator"
    outside.mkdir()
    provided = outside / "mail.example.com.pem"
    provided.write_text("certificate")
    outside.chmod(0o755)
    provided.chmod(0o644)
    root = tmp_path / "data"
    root.mkdir(mode=0o700)
    (root / "certs").symlink_to(outside)
    (root / "ca.pem").symlink_to(provided)

    assert restrict([root, tmp_path / "missing"]).fixed == 0
    assert (mode_of(outside), mode_of(provided)) == (0o755, 0o644)


def test_a_root_that_is_a_link_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    (real / "mailhost.db").write_bytes(b"")
    (real / "mailhost.db").chmod(0o644)
    (tmp_path / "data").symlink_to(real)

    assert restrict([tmp_path / "data"]).fixed == 2
    assert (mode_of(real), mode_of(real / "mailhost.db")) == (0o700, 0o600)


def test_write_private_creates_an_owner_only_file_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "mailhost.toml"
    write_private(path, "[delivery]\nsmarthost_password = 'secret'\n")
    assert mode_of(path) == 0o600
    assert "secret" in path.read_text()
    with pytest.raises(FileExistsError):
        write_private(path, "again")


def test_an_owner_only_directory_is_not_entered(tmp_path: Path) -> None:
    # Mail under a private Maildir tree cannot be reached by others whatever its mode,
    # and walking millions of messages at every start would cost minutes.
    root = tmp_path / "data"
    inside = root / "mail" / "a.example" / "bob.key" / "new"
    inside.mkdir(parents=True)
    message = inside / "1.x"
    message.write_bytes(b"hello")
    message.chmod(0o644)
    (root / "mail").chmod(0o700)
    root.chmod(0o755)
    (root / "mailhost.toml").write_text("")
    (root / "mailhost.toml").chmod(0o644)

    assert restrict([root]).fixed == 2  # the data directory and mailhost.toml
    assert (mode_of(root), mode_of(root / "mailhost.toml")) == (0o700, 0o600)
    assert mode_of(message) == 0o644
