"""Writing files so that a crash leaves the old file or the whole new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(target: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temp file beside ``target``, fsync it, rename it over
    ``target`` and fsync the folder: after a crash, ``target`` is the old file or the whole new one."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fsync_path(path: str | Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
