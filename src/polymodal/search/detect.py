"""Which modality a file holds, decided by its content (magic bytes, decoders), not only its name."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..modalities.text import read_utf8_prefix

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".srt", ".vtt")  # a subtitle file beside no video is text
MAX_TEXT_BYTES = 1 << 20  # checked for valid UTF-8


class UnsupportedFile(ValueError):
    """A file whose content is not one of the supported modalities; the message names it."""


def _head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _is_audio(head: bytes) -> bool:
    return (head[:4] in (b"fLaC", b"FORM", b".snd") or head[:3] == b"ID3"
            or (head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"RF64"))
            or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0))  # MPEG audio / ADTS AAC sync


def _probe(path: Path) -> str:
    """``video`` or ``audio`` for a container that may hold either (MP4/M4A, Matroska/WebM, Ogg):
    a video stream that is not just cover art makes it a video."""
    import av

    try:
        with av.open(str(path)) as container:
            if any(not s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video):
                return "video"
            if container.streams.audio:
                return "audio"
    except Exception as e:  # av.error.*
        raise UnsupportedFile(f"{path}: not a readable audio or video container ({e})") from e
    raise UnsupportedFile(f"{path}: the container holds no audio or video stream")


def detect(path: str | Path) -> str:
    """``image``, ``audio``, ``video``, ``text``, ``pdf``, ``depth``, ``thermal`` or ``imu``, from the
    file's bytes: a sound named ``.oga`` or a picture named ``.dat`` is found all the same.

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
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] == b"ftyp" or head[:4] in (b"\x1a\x45\xdf\xa3", b"OggS"):  # MP4/M4A/MOV, Matroska/WebM, Ogg
        return _probe(path)
    if _is_audio(head):
        return "audio"
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the reader applies our limit
            img = Image.open(path)
        with img:
            img.verify()
        return "image"
    except Image.DecompressionBombError:  # an image, too large to decode: reading it says so
        return "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    if path.suffix.lower() in TEXT_SUFFIXES or path.suffix == "":
        try:
            read_utf8_prefix(path, MAX_TEXT_BYTES)
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
