"""Writing files so that a crash leaves the old file or the whole new one, never half of either; and
reading the files a model folder carries along only when they really are regular files inside it."""

from __future__ import annotations

import errno
import os
import stat
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


class UnsafeFileError(ValueError):
    """A file that is to be read or copied along is a link, a FIFO, a device or too large; names it."""


MAX_CARRIED_BYTES = 1 << 30  # a tokenizer or processor file is a few MB; vocabularies at most tens


def read_inside(folder: str | Path, name: str, max_bytes: int = MAX_CARRIED_BYTES) -> bytes:
    """The bytes of ``folder/name`` when it is a regular file right inside ``folder``: opened without
    following a link (``O_NOFOLLOW``) or blocking on a FIFO, and checked to be a regular file of at most
    ``max_bytes`` before it is read. Anything else raises :class:`UnsafeFileError` naming it."""
    path = Path(folder) / name
    if Path(name).name != name or name in ("", ".", ".."):
        raise UnsafeFileError(f"{name!r} is not a file name inside {folder}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path} is a symbolic link; only regular files inside {folder} are carried "
                                  "along (copy the file itself there)") from None
        raise UnsafeFileError(f"{path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise UnsafeFileError(f"{path}: {st.st_size} bytes is more than the {max_bytes} such a file may hold")
        return f.read(max_bytes + 1)[:max_bytes]


def copy_inside(folder: str | Path, name: str, out: str | Path) -> None:
    """Copy ``folder/name`` (see :func:`read_inside`) to ``out/name``, atomically."""
    data = read_inside(folder, name)
    atomic_write(Path(out) / name, lambda tmp: Path(tmp).write_bytes(data))
