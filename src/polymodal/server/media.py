"""An indexed item's media, served only from inside the indexed folder and only as what it is.

The index's database names the file, but the folder may have changed since it was indexed: a
file swapped for a symlink to ``/etc/passwd``, a directory swapped for a link to somewhere else.
So the file is opened one path component at a time from the recorded root, never following a
link (``O_NOFOLLOW`` on every component), and served only when it is still the regular file the
index saw (same size and mtime). Its content type comes from its modality and its own bytes,
never from its name, and pictures are re-encoded, so nothing the folder holds runs in the page.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from PIL import Image

from ..search.store import Item

PREVIEW_SIDE = 1024  # px: pictures are served as PNG previews at most this large
# Headers on every media response: the browser must not sniff a type, run scripts, or load anything.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cross-Origin-Resource-Policy": "same-origin"}


class MediaGone(LookupError):
    """The item's file is not (or no longer) the regular file inside the root that was indexed."""


def open_in_root(root: Path, file: Path) -> tuple[int, os.stat_result]:
    """(file descriptor, stat) of ``file``, opened below ``root`` without following any link."""
    try:
        parts = Path(file).relative_to(root).parts
    except ValueError:
        raise MediaGone(f"{file} is outside the indexed folder {root}") from None
    if not parts or ".." in parts:
        raise MediaGone(f"{file} is not a file below {root}")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise MediaGone(f"the indexed folder {root} cannot be opened ({e.strerror})") from None
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
        # O_NONBLOCK: a FIFO put in the file's place must not hang the request.
        leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as e:  # ELOOP: a link; ENOTDIR: a link to a folder; ENOENT: gone
        raise MediaGone(f"{file}: {e.strerror}") from None
    finally:
        os.close(fd)
    st = os.fstat(leaf)
    if not stat.S_ISREG(st.st_mode):
        os.close(leaf)
        raise MediaGone(f"{file} is no longer a regular file")
    return leaf, st


def open_item(root: Path, item: Item) -> tuple[int, os.stat_result]:
    """The item's file, checked to be the one that was indexed (size and mtime unchanged)."""
    fd, st = open_in_root(root, Path(item.file))
    if st.st_size != item.size or st.st_mtime != item.mtime:
        os.close(fd)
        raise MediaGone(f"{item.file} changed since it was indexed")
    return fd, st


def read_all(fd: int, size: int) -> bytes:
    with os.fdopen(fd, "rb") as f:
        return f.read(size + 1)[:size]


def chunks(fd: int, size: int = 1 << 16) -> Iterator[bytes]:
    """The file's blocks. The file object is made now, not when iteration starts, so the descriptor
    is closed even if the client goes away before the first block."""
    f = os.fdopen(fd, "rb")

    def blocks() -> Iterator[bytes]:
        with f:
            while block := f.read(size):
                yield block

    return blocks()


def container_type(modality: str, head: bytes) -> str:
    """The content type of an audio or video file, from its first bytes."""
    if head[:4] == b"RIFF":
        return "video/x-msvideo" if head[8:12] == b"AVI " else "audio/wav"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return f"{modality}/ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return f"{modality}/webm"
    if head[4:8] == b"ftyp":
        return f"{modality}/mp4"
    if modality == "audio" and (head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)):
        return "audio/mpeg"
    return "application/octet-stream"


def picture_png(data: bytes, name: str, page: int | None = None) -> bytes:
    """Any image file's bytes (``page``: that frame of a multi-page TIFF) → a PNG preview (long side ≤
    :data:`PREVIEW_SIDE`)."""
    from ..modalities.image import ImageReadError, check_pixels, to_rgb

    try:
        with Image.open(io.BytesIO(data)) as img:
            if page:
                try:
                    img.seek(page - 1)
                except EOFError:
                    raise ImageReadError(f"{name}: no page {page}") from None
            check_pixels(img, name)
            img.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG: decode at a reduced scale
            img = to_rgb(img)
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{name}: {e}") from None
    img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return png_bytes(img)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sensor_picture(data: bytes, name: str, modality: str) -> bytes:
    """A depth/thermal map or IMU file's bytes → the PNG ``render.sensor_png`` draws. The readers
    tell formats apart by suffix, so the bytes go to a private temp file with the original one."""
    from .render import sensor_png

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("item" + Path(name).suffix.lower()[:8])
        path.write_bytes(data)
        return sensor_png(path, modality)
