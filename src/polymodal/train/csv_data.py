"""A user's own captioned pictures: a CSV/TSV of (image path, caption), as open_clip's csv dataset.
Unreadable images are reported and skipped; they never stop a run."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import torch

from ..data.records import bounded_lines
from ..modalities.image import ImageReadError, load_image, square_uint8
from .config import ConfigError


MAX_LINE = 1 << 20  # characters in one CSV row: an image path and a caption, generously


def csv_rows(path: Path, delimiter: str, problems: list[str]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, fields)]) of a CSV/TSV read as bytes: a row that is not UTF-8 or is
    longer than :data:`MAX_LINE` goes to ``problems`` with its line and the rest are read (a quoted
    field may not span lines)."""
    rows, header = [], None
    with open(path, "rb") as f:
        for n, raw in enumerate(bounded_lines(f, MAX_LINE), start=1):
            if raw is None:
                problems.append(f"{path}:{n}: longer than {MAX_LINE} characters; skipped")
                continue
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start})")
                continue
            if not text.strip():
                continue
            try:
                fields = next(csv.reader([text], delimiter=delimiter))
            except csv.Error as e:
                problems.append(f"{path}:{n}: {e}")
                continue
            if header is None:
                header = fields
            else:
                rows.append((n, fields))
    return header or [], rows


def picture_file(table: Path, name: str, allow_outside: bool = False) -> Path:
    """The picture a row names: relative to the table's folder; outside that folder (``..``, an
    absolute path, a link out of it) only with ``allow_outside``. It must be a regular file (a FIFO
    or a device is never opened)."""
    file = Path(name)
    file = file if file.is_absolute() else table.parent / file
    if not allow_outside and not file.resolve().is_relative_to(table.parent.resolve()):
        raise ImageReadError(f"{name} lies outside the table's folder {table.parent} (data.allow_outside=true reads it)")
    try:
        mode = file.stat().st_mode
    except OSError as e:
        raise ImageReadError(f"{file}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ImageReadError(f"{file} is not a regular file")
    return file


def read_pairs(path: str | Path, image_size: int, image_key: str = "filepath", caption_key: str = "caption",
               allow_outside: bool = False) -> tuple[torch.Tensor, list[list[str]], list[str]]:
    """Read every row → (images uint8 [N, 3, S, S], captions [N][1], skipped ["file:line: reason", …]).

    ``.tsv`` files are tab-separated, others comma-separated; image paths are taken relative to the
    table's folder and must stay inside it unless ``allow_outside``. A row that cannot be used (not
    UTF-8, too long, a missing or unreadable picture, an empty caption) is skipped with its reason."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file not found: {path}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    skipped: list[str] = []
    header, rows = csv_rows(path, delimiter, skipped)
    missing = [k for k in (image_key, caption_key) if k not in header]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; found {header}")
    at_image, at_caption = header.index(image_key), header.index(caption_key)
    images, texts = [], []
    for line, fields in rows:
        if len(fields) != len(header):
            skipped.append(f"{path}:{line}: {len(fields)} fields, the header has {len(header)}")
            continue
        caption = fields[at_caption].strip()
        if not caption:
            skipped.append(f"{path}:{line}: empty caption")
            continue
        try:
            file = picture_file(path, fields[at_image], allow_outside)
            images.append(square_uint8(load_image(file), image_size))
        except ImageReadError as e:  # the message names the picture (a resize error: added here)
            named = fields[at_image] in str(e) or Path(fields[at_image]).name in str(e)
            skipped.append(f"{path}:{line}: {e}" if named else f"{path}:{line}: {fields[at_image]}: {e}")
            continue
        texts.append([caption])
    if not images:
        raise ConfigError(f"{path}: no readable (image, caption) rows ({len(skipped)} skipped)")
    return torch.stack(images), texts, skipped
