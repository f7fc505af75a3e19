"""Which modality a file holds, decided by its content (magic bytes, decoders), not only its name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
MAX_TEXT_BYTES = 1 << 20


class UnsupportedFile(ValueError):
    """A file whose content is not one of the supported modalities; the message names it."""


def _head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def detect(path: str | Path) -> str:
    """``image``, ``audio``, ``video``, ``text``, ``pdf``, ``depth``, ``thermal`` or ``imu``.

    .npy arrays: [6, T] or [T, 6] is IMU; a 2-D map is depth or thermal, told apart by the file's
    name (``*depth*`` / ``*thermal*``), which is the only place that fact lives.
    """
    path = Path(path)
    head = _head(path)
    if not head:
        raise UnsupportedFile(f"{path}: the file is empty")
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x93NUMPY"):
        return _array_kind(path)
    if head[:4] in (b"RIFF", b"fLaC", b"OggS") or head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
            return "video"
        return "audio"
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3":  # MP4/MOV, Matroska/WebM
        return "video"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.verify()
        return "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    if path.suffix.lower() in TEXT_SUFFIXES or path.suffix == "":
        data = path.read_bytes()[:MAX_TEXT_BYTES]
        try:
            data.decode("utf-8")
            return "text"
        except UnicodeDecodeError:
            pass
    raise UnsupportedFile(f"{path}: not an image, audio, video, text, PDF or .npy sensor file")


def _array_kind(path: Path) -> str:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise UnsupportedFile(f"{path}: unreadable .npy ({e})") from e
    name = path.name.lower()
    if arr.ndim == 2 and 6 in arr.shape and ("imu" in name or min(arr.shape) == 6):
        return "imu"
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[0] == 1):
        for kind in ("depth", "thermal"):
            if kind in name:
                return kind
        raise UnsupportedFile(f"{path}: a 2-D map must be named *depth* or *thermal* to say which it is")
    raise UnsupportedFile(f"{path}: .npy of shape {arr.shape} is neither a map [H, W] nor IMU [6, T]")
