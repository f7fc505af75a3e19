"""Region features written in the formats :mod:`polymodal.data.regions` reads and the field's code expects:
the bottom-up-attention TSV (one row per image), MMF's ``ID.npy`` + ``ID_info.npy`` and a plain ``.npz``.
Each file is written whole or not at all (a temporary file renamed into place)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from .regions import TSV_FIELDS

FORMATS = ("npz", "mmf", "tsv")


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode("ascii")


def tsv_row(image_id: str, image_w: int, image_h: int, boxes: np.ndarray, features: np.ndarray) -> str:
    """One line of the bottom-up-attention TSV (fields :data:`TSV_FIELDS`, boxes and features base64 float32)."""
    if "\t" in image_id or "\n" in image_id:
        raise ValueError(f"an image id for a TSV row cannot hold tabs or line breaks: {image_id!r}")
    values = (image_id, str(image_w), str(image_h), str(len(boxes)), _b64(boxes), _b64(features))
    assert len(values) == len(TSV_FIELDS)
    return "\t".join(values) + "\n"


def write_npz(path: Path, image_w: int, image_h: int, boxes: np.ndarray, features: np.ndarray, **extra) -> Path:
    """``boxes``, ``features``, ``image_w``, ``image_h`` (+ ``extra`` arrays such as ``class_probs``)."""
    def save(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, boxes=boxes.astype(np.float32), features=features.astype(np.float32), image_w=image_w,
                     image_h=image_h, **extra)
    atomic_write(path, save)
    return path


def write_mmf(folder: Path, image_id: str, image_w: int, image_h: int, boxes: np.ndarray, features: np.ndarray,
              objects: np.ndarray | None = None, class_probs: np.ndarray | None = None) -> Path:
    """MMF's pair: ``ID.npy`` (features [R, D]) and ``ID_info.npy`` (a pickled dict: ``bbox``, ``num_boxes``,
    ``objects``, ``cls_prob``, ``image_width``, ``image_height``, as MMF's extraction scripts write it)."""
    info = {"bbox": boxes.astype(np.float32), "num_boxes": len(boxes), "image_width": image_w, "image_height": image_h}
    if objects is not None:
        info["objects"] = objects
    if class_probs is not None:
        info["cls_prob"] = class_probs.astype(np.float32)

    def save_features(tmp):
        with open(tmp, "wb") as f:
            np.save(f, features.astype(np.float32))

    def save_info(tmp):
        with open(tmp, "wb") as f:
            np.save(f, info, allow_pickle=True)

    atomic_write(folder / f"{image_id}_info.npy", save_info)
    atomic_write(folder / f"{image_id}.npy", save_features)
    return folder / f"{image_id}.npy"
