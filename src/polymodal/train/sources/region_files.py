"""What the region sources on the user's files share: the settings that say where their regions come
from, the files of a split, and texts about pictures assembled into
:class:`~polymodal.train.region_task_data.SceneTexts` — keeping only texts whose picture has regions
and that fit the tokenizer's context, each text left out named with its file and row."""

from __future__ import annotations

import torch

from ..config import ConfigError
from ..region_task_data import SceneTexts
from ..user_regions import Picture, picture_regions

# data.* settings every region source on files reads: where the regions come from (data.region_tower
# and data.image_size are read by the region kinds themselves).
REGION_SETTINGS = ("regions", "max_missing", "feature_cache", "boxes")


def split_setting(kind, split: str, name: str, needed: bool = True) -> str | None:
    """``data.NAME`` for training, ``data.val_NAME`` for validation (None: no validation data)."""
    d = kind.cfg.data
    value = getattr(d, name if split == "train" else f"val_{name}")
    if split == "train" and needed and not value:
        raise ConfigError(f"data.kind {d.kind} needs data.{name}")
    return value


def images_folder(kind, split: str) -> str | None:
    d = kind.cfg.data
    return d.images if split == "train" else (d.val_images or d.images)


def fitting(tokenizer, texts: list[str]) -> list[bool]:
    """Whether each text fits the tokenizer's context (a longer one would be cut: it is left out instead)."""
    encoded = tokenizer.tokenizer.encode_batch(texts)
    return [len(e.ids) <= tokenizer.context_length for e in encoded]


def texts_about(kind, pictures: list[Picture], picture_of: list[int], texts: list[str], wheres: list[str],
                split: str, boxes: str | None = None) -> tuple[SceneTexts, list[int], list[str]]:
    """Texts [Q] about ``pictures`` (``picture_of``: each text's picture; their regions on ``boxes``,
    default ``data.boxes``) → (their :class:`SceneTexts`, the indices of the texts kept, problems:
    every picture without regions and every text too long for the context)."""
    regions = picture_regions(kind, pictures, split, boxes)
    problems = list(regions.problems)
    row = regions.row_of()
    fits = fitting(kind.tokenizer, texts)
    kept = []
    for i, (p, ok) in enumerate(zip(picture_of, fits)):
        if not ok:
            problems.append(f"{wheres[i]}: longer than the context of {kind.tokenizer.context_length} tokens")
        elif p in row:
            kept.append(i)
    if not kept:
        raise ConfigError(f"data.kind {kind.cfg.data.kind}: no {split} texts left to train on ({len(problems)} problems; "
                          f"first: {problems[:1]})")
    chosen = [texts[i] for i in kept]
    tokens = kind.tokenizer(chosen)
    f = regions.features
    data = SceneTexts(f.features, f.mask, f.locations(), f.boxes, torch.tensor([row[picture_of[i]] for i in kept]),
                      tokens.ids, tokens.attention_mask, chosen, f.image_size)
    return data, kept, problems
