"""Files other processes read while we write them: the watchlist, the Atom feeds."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

MAX_LINKS = 8


def write_atomically(path: Path, text: str, *, mode: int | None = None, durable: bool = True) -> Path:
    """Replace `path` in one rename, so no reader (the service, a feed reader) sees half a file.

    The data is fsynced before the rename, so a crash leaves the old file or the new one. `mode`
    defaults to the permission bits of the file being replaced (never its setuid, setgid or sticky
    bits), else 0644. A symlink stays a symlink: the file it points to is the one replaced, with that
    file's permission bits; a dangling link gets a new file at its target with 0644. `durable=False`
    skips the fsync (the static site's thousands of pages: still one rename each, rebuilt if a crash
    lost them).
    """
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            current = path.lstat()
        except FileNotFoundError:
            mode = 0o644
        else:
            mode = current.st_mode & 0o777 if stat.S_ISREG(current.st_mode) else 0o644
    mode &= 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _target(path: Path) -> Path:
    """The file a chain of symlinks at `path` ends at (relative links read from their own folder)."""
    for _ in range(MAX_LINKS):
        if not path.is_symlink():
            return path
        path = path.parent / os.readlink(path)
    raise OSError(f"{path}: too many levels of symbolic links")
