"""Files other processes read while we write them: the watchlist, the Atom feeds."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, *, mode: int | None = None, durable: bool = True) -> Path:
    """Replace `path` in one rename, so no reader (the service, a feed reader) sees half a file.

    The data is fsynced before the rename, so a crash leaves the old file or the new one. `mode`
    defaults to the mode of the file being replaced, else 0644. `durable=False` skips the fsync
    (the static site's thousands of pages: still one rename each, rebuilt if a crash lost them).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
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
