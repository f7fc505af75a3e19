"""A user's own captioned pictures: a CSV/TSV of (image path, caption), as open_clip's csv dataset.
Unreadable images are reported and skipped; they never stop a run."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from ..modalities.image import ImageReadError, load_image, square_uint8
from .config import ConfigError


def read_pairs(path: str | Path, image_size: int, image_key: str = "filepath",
               caption_key: str = "caption") -> tuple[torch.Tensor, list[list[str]], list[str]]:
    """Read every row → (images uint8 [N, 3, S, S], captions [N][1], skipped ["file: reason", …]).

    ``.tsv`` files are tab-separated, others comma-separated; relative image paths are taken
    relative to the table's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file not found: {path}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        missing = [k for k in (image_key, caption_key) if k not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        rows = list(reader)
    images, texts, skipped = [], [], []
    for line, row in enumerate(rows, start=2):
        file = Path(row[image_key])
        file = file if file.is_absolute() else path.parent / file
        caption = (row[caption_key] or "").strip()
        if not caption:
            skipped.append(f"{path}:{line}: empty caption")
            continue
        try:
            images.append(square_uint8(load_image(file), image_size))
        except ImageReadError as e:
            skipped.append(str(e) if str(file) in str(e) else f"{path}:{line}: {file}: {e}")
            continue
        texts.append([caption])
    if not images:
        raise ConfigError(f"{path}: no readable (image, caption) rows ({len(skipped)} skipped)")
    return torch.stack(images), texts, skipped
