"""A user's timed video text: ``data.kind=csv`` for ``videoclip`` — a CSV / TSV / JSONL of
``video, start, end, text`` rows (``data.path``, ``data.val_path``) and a folder of per-second
feature files, ``NAME.npy`` per video (``data.features``, from ``polymodal video features``)."""

from __future__ import annotations

import json
from pathlib import Path

from ...tasks.video_features import BACKBONE_FILE
from ..config import ConfigError
from ..howto_data import HowToFeatures, timed_text_features
from . import Source, register_source


def video_table(kind, split: str) -> HowToFeatures | None:
    """The rows of ``data.path`` (training) or ``data.val_path`` (validation; none: no metrics) with
    their features; rows that cannot be used are listed in ``skipped``. Features made by an image
    tower (``polymodal video features --backbone clip``) name it, so the model can embed videos."""
    d = kind.cfg.data
    if not (d.path and d.features):
        raise ConfigError("objective.kind videoclip with data.kind csv needs data.path (a CSV / TSV / JSONL of "
                          "video, start, end, text) and data.features (their per-second features, NAME.npy)")
    path = d.path if split == "train" else d.val_path
    if not path:
        return None
    data, data.skipped = timed_text_features(path, d.features)
    if not data.segments:
        raise ConfigError(f"{path}: no usable rows ({len(data.skipped)} skipped, e.g. {data.skipped[:1]})")
    made = Path(d.features) / BACKBONE_FILE
    spec = json.loads(made.read_text()) if made.is_file() else {}
    if spec.get("backbone") == "clip":
        data.frame_tower = (spec["weights"], spec["fps"])
    return data


register_source(Source("csv", "timed_video_text", video_table, ("path", "val_path", "features"),
                       about="a table of (video, start, end, text) rows with per-second feature files"))
