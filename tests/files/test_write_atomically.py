"""`write_atomically` never hands out setuid/setgid bits, never takes a symlink's own 0777, and keeps a
symlinked file a symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from watcher.files import write_atomically


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_setuid_setgid_and_sticky_bits_are_never_copied(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_text("old\n")
    os.chmod(path, 0o6755 | stat.S_ISVTX)
    write_atomically(path, "new\n")
    assert path.read_text() == "new\n" and mode(path) == 0o755
    write_atomically(path, "again\n", mode=0o4700)
    assert mode(path) == 0o700


def test_a_symlink_stays_a_link_and_its_target_keeps_only_its_permission_bits(tmp_path: Path) -> None:
    real = tmp_path / "repo" / "watchlist.yaml"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o4640)
    link = tmp_path / "etc" / "watchlist.yaml"
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(real, link.parent))
    write_atomically(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n" and mode(real) == 0o640
    assert not [p for p in real.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_dangling_link_gets_a_0644_file_not_the_links_0777(tmp_path: Path) -> None:
    link = tmp_path / "feed.atom"
    link.symlink_to(tmp_path / "out" / "feed.atom")
    write_atomically(link, "<feed/>\n")
    assert link.is_symlink() and mode(tmp_path / "out" / "feed.atom") == 0o644
