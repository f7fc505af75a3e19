"""Which image tower reads a region model's regions: a region model (VisualBERT, ViLBERT, their task
models) means nothing with another tower's features, so its folder records the tower it was trained
with (``region_tower.json``), and :func:`region_extractor` opens that tower as a region reader."""

from __future__ import annotations

import json
from pathlib import Path

from .embedder import Embedder
from .region_extractor import RegionExtractor


MAX_REGIONS = 5  # the whole image + at most 4 objects
REGION_TOWER_FILE = "region_tower.json"


def save_region_tower(folder: Path, tower: str | None, image_size: int, max_regions: int = MAX_REGIONS,
                      features: str | None = None) -> None:
    """Record in a region model's folder which image tower read its regions, at which image size and
    how many regions a picture had at most: the model means nothing with another tower's features.
    A model trained on features computed elsewhere (``features``: their file) records that instead."""
    record = {"tower": str(Path(tower).resolve()) if tower else None, "image_size": image_size,
              "max_regions": max_regions}
    if features:
        record["features"] = str(features)
    (Path(folder) / REGION_TOWER_FILE).write_text(json.dumps(record, indent=1))


def load_region_tower(folder: Path) -> dict:
    """The record :func:`save_region_tower` wrote: {"tower", "image_size", "max_regions"[, "features"]}."""
    path = Path(folder) / REGION_TOWER_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {REGION_TOWER_FILE}: which image tower read its regions is unknown; "
                         "pass --region-tower")
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or not {"tower", "image_size"} <= set(record):
        raise ValueError(f"{path}: expected {{\"tower\": folder, \"image_size\": int}}")
    for key, low, high in (("image_size", 16, 4096), ("max_regions", 1, 1000)):
        value = record.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{path}: {key} must be a whole number in {low}..{high}, got {value!r}")
    if record["tower"] is None:
        raise ValueError(f"{folder} was trained on region features computed elsewhere ({record.get('features')}), "
                         "not by an image tower: give its pictures as such features, or --region-tower")
    return record


def region_extractor(folder: str) -> RegionExtractor:
    """The image tower of a saved CLIP or ImageBind folder, with its image transform, as a region reader."""
    embedder = Embedder.from_checkpoint(folder)
    model = embedder.model
    tower = model.visual if hasattr(model, "visual") else model.encoders["image"]
    for p in tower.parameters():
        p.requires_grad_(False)
    return RegionExtractor(tower, embedder.transform)
