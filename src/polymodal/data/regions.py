"""Detected image regions — what VisualBERT and ViLBERT take instead of pixels — and readers for
the formats people already have on disk.

* :class:`Regions`: one image's boxes [R, 4] (x0, y0, x1, y1 in pixels), features [R, D], the
  image size and optional class distributions [R, C]. No detector is assumed.
* :class:`RegionFeatures`: a padded batch ([B, R, ·] + mask [B, R]) with the normalised
  locations ViLBERT embeds ([B, R, 5]: x0, y0, x1, y1, area, each in [0, 1]).
* Readers: the bottom-up-attention TSV (:func:`read_tsv`, the format VisualBERT, ViLBERT and MMF
  were trained on), MMF's per-image ``ID.npy`` + ``ID_info.npy`` (:func:`read_mmf`) and a plain
  ``.npz`` (:func:`read_npz`). A bad row or file is reported with its name and the rest still loads;
  nothing is unpickled beyond plain arrays and containers (MMF's info files are pickled dicts).
"""

from __future__ import annotations

import base64
import binascii
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..arrays import finite, read_npy
from .records import bounded_lines
from ..arrays import read_npz as read_npz_arrays

TSV_FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")
MAX_REGIONS = 1000  # more boxes than any detector emits per image: a larger count is a corrupt row
MAX_FILE_BYTES = MAX_REGIONS * 4096 * 4 * 2  # one picture's region arrays: 1,000 boxes of 4,096 floats, twice over


class RegionReadError(ValueError):
    """A region file or row could not be read; the message names it."""


@dataclass
class Regions:
    boxes: torch.Tensor  # [R, 4] float32, pixels
    features: torch.Tensor  # [R, D] float32
    image_w: int
    image_h: int
    class_probs: torch.Tensor | None = None  # [R, C]

    def __post_init__(self):
        r = self.boxes.shape[0]
        if self.boxes.dim() != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"boxes must be [R, 4], got {tuple(self.boxes.shape)}")
        if self.features.dim() != 2 or self.features.shape[0] != r:
            raise ValueError(f"features must be [R={r}, D], got {tuple(self.features.shape)}")
        if self.class_probs is not None and self.class_probs.shape[0] != r:
            raise ValueError(f"class_probs must have {r} rows, got {tuple(self.class_probs.shape)}")
        if self.image_w <= 0 or self.image_h <= 0:
            raise ValueError(f"image size must be positive, got {self.image_w}×{self.image_h}")
        if r > MAX_REGIONS:
            raise ValueError(f"{r} boxes: more than the {MAX_REGIONS} regions a picture may have")
        for name in ("boxes", "features", "class_probs"):
            value = getattr(self, name)
            if value is not None and not bool(torch.isfinite(value).all()):
                raise ValueError(f"{name} hold NaN or infinite values")

    def __len__(self) -> int:
        return self.boxes.shape[0]


@dataclass
class RegionFeatures:
    """A batch: ``features`` [B, R, D], ``boxes`` [B, R, 4] (pixels), ``mask`` [B, R] (1 = real),
    ``image_size`` [B, 2] (w, h), ``class_probs`` [B, R, C] or None. Padded rows are zero."""

    features: torch.Tensor
    boxes: torch.Tensor
    mask: torch.Tensor
    image_size: torch.Tensor
    class_probs: torch.Tensor | None = None

    @classmethod
    def collate(cls, items: list[Regions], max_regions: int | None = None) -> "RegionFeatures":
        """Pad (or keep the first ``max_regions`` of) each image's regions to one batch."""
        if not items:
            raise ValueError("no images to batch")
        dims = {it.features.shape[1] for it in items}
        if len(dims) > 1:
            raise ValueError(f"images have region features of different widths {sorted(dims)}")
        r = max(len(it) for it in items) if max_regions is None else max_regions
        b, d = len(items), dims.pop()
        features, boxes = torch.zeros(b, r, d), torch.zeros(b, r, 4)
        mask = torch.zeros(b, r, dtype=torch.long)
        has_probs = all(it.class_probs is not None for it in items)
        probs = torch.zeros(b, r, items[0].class_probs.shape[1]) if has_probs else None
        for i, it in enumerate(items):
            n = min(len(it), r)
            features[i, :n], boxes[i, :n], mask[i, :n] = it.features[:n], it.boxes[:n], 1
            if has_probs:
                probs[i, :n] = it.class_probs[:n]
        size = torch.tensor([[it.image_w, it.image_h] for it in items], dtype=torch.float32)
        return cls(features, boxes, mask, size, probs)

    def locations(self) -> torch.Tensor:
        """[B, R, 5]: (x0, y0, x1, y1) divided by the image size, and the box's area fraction."""
        wh = self.image_size[:, None, :].repeat(1, 1, 2)  # [B, 1, 4] as (w, h, w, h)
        xyxy = (self.boxes / wh).clamp(0, 1)
        area = (xyxy[..., 2] - xyxy[..., 0]) * (xyxy[..., 3] - xyxy[..., 1])
        return torch.cat([xyxy, area[..., None]], dim=-1) * self.mask[..., None]


# ----------------------------------------------------------------------------- readers

def _decode(field: str, count: int, width: int, what: str) -> np.ndarray:
    try:
        raw = base64.b64decode(field, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RegionReadError(f"{what}: not base64 ({e})") from None
    if len(raw) != count * width * 4:
        raise RegionReadError(f"{what}: {len(raw)} bytes, expected {count} × {width} float32")
    return np.frombuffer(raw, dtype=np.float32).reshape(count, width)


def read_tsv(path: str | Path, feature_dim: int = 2048) -> tuple[dict[str, Regions], list[str]]:
    """A bottom-up-attention TSV (``image_id, image_w, image_h, num_boxes, boxes, features``, boxes
    and features base64 float32) → ({image_id: Regions}, errors ["file:line (image_id): reason"])."""
    path = Path(path)
    if not path.is_file():
        raise RegionReadError(f"region file not found: {path}")
    out, errors = {}, []
    # No line may be longer than the largest valid row (MAX_REGIONS boxes of feature_dim floats,
    # base64): a corrupt or hostile row is reported and skipped, never read into memory whole.
    limit = MAX_REGIONS * (feature_dim + 4) * 4 * 4 // 3 + 1024
    with open(path, newline="", encoding="ascii", errors="replace") as f:
        for line, text in enumerate(bounded_lines(f, limit), start=1):
            if text is None:
                errors.append(f"{path}:{line}: longer than {limit} characters; skipped")
                continue
            row = text.split("\t") if text else []  # base64 and numbers: no quoting to undo
            where = f"{path}:{line}" + (f" ({row[0]})" if row else "")
            try:
                if len(row) != len(TSV_FIELDS):
                    raise RegionReadError(f"{len(row)} fields, expected {len(TSV_FIELDS)} ({', '.join(TSV_FIELDS)})")
                image_id, w, h, n = row[0], int(row[1]), int(row[2]), int(row[3])
                if not 0 < n <= MAX_REGIONS:
                    raise RegionReadError(f"num_boxes {n} is not in 1..{MAX_REGIONS}")
                boxes = _decode(row[4], n, 4, "boxes")
                features = _decode(row[5], n, feature_dim, "features")
                out[image_id] = Regions(torch.from_numpy(boxes.copy()), torch.from_numpy(features.copy()), w, h)
            except (RegionReadError, ValueError) as e:
                errors.append(f"{where}: {e}")
    return out, errors


MAX_INFO_BYTES = 64 << 20  # an MMF _info.npy holds boxes and class scores for ≤ 100 boxes: far below this


class _NdarrayToken:
    """What ``numpy.ndarray`` unpickles to: only :func:`_reconstruct_empty` accepts it (called directly
    it would allocate any shape the file names)."""


def _reconstruct_empty(cls, shape, dtype):
    """numpy's ``_reconstruct``, for the empty array numpy's own pickles start from (its data and shape
    come after, in ``__setstate__``, where numpy checks them against the bytes really given)."""
    if cls is not _NdarrayToken or tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"refusing to build an array of shape {shape!r} outside numpy's own layout")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, dtypes and plain containers the way numpy pickles them; refuses every
    other global (no code runs) and any array whose size is not backed by bytes in the file."""

    ALLOWED = {("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("collections", "OrderedDict"),
               ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "ndarray"):
            return _NdarrayToken
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _reconstruct_empty
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load_info(path: Path) -> dict:
    """MMF's ``ID_info.npy``: a 0-d object array holding a dict, read without arbitrary unpickling."""
    if path.stat().st_size > MAX_INFO_BYTES:
        raise RegionReadError(f"{path}: {path.stat().st_size} bytes is more than a box information file holds")
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise RegionReadError(f"{path}: unsupported .npy version {version}")
        _, _, dtype = read_header[version](f)
        if not dtype.hasobject:
            raise RegionReadError(f"{path}: expected a pickled dict of box information, got a {dtype} array")
        value = _ArraysOnly(io.BytesIO(f.read())).load()
        value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(value, dict):
        raise RegionReadError(f"{path}: expected a dict of box information, got {type(value).__name__}")
    return value


def _array(value, where: str) -> torch.Tensor:
    """A float32 tensor of ``value`` (an array the info dict holds), every value finite."""
    return torch.from_numpy(finite(np.asarray(value, dtype=np.float32), where).copy())


def read_mmf(features_file: str | Path) -> Regions:
    """MMF's per-image ``ID.npy`` (features [R, D]) + ``ID_info.npy`` (``bbox`` [R, 4],
    ``image_width``, ``image_height``, optional ``cls_prob`` [R, C])."""
    features_file = Path(features_file)
    info_file = features_file.with_name(features_file.stem + "_info.npy")
    try:
        features = _array(read_npy(features_file, MAX_FILE_BYTES), f"{features_file}")
        info = _load_info(info_file)
        probs = info.get("cls_prob")
        return Regions(_array(info["bbox"], f"{info_file} bbox"), features, int(info["image_width"]),
                       int(info["image_height"]), None if probs is None else _array(probs, f"{info_file} cls_prob"))
    except RegionReadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError, EOFError) as e:
        raise RegionReadError(f"{features_file} (+ {info_file.name}): {type(e).__name__}: {e}") from e


def read_npz(path: str | Path) -> Regions:
    """A plain ``.npz`` with ``boxes`` [R, 4], ``features`` [R, D], ``image_w``, ``image_h`` (and
    optionally ``class_probs`` [R, C]); no pickles, sizes bounded before anything is inflated."""
    path = Path(path)
    try:
        z = read_npz_arrays(path, MAX_FILE_BYTES)
        probs = z.get("class_probs")
        return Regions(_array(z["boxes"], f"{path} boxes"), _array(z["features"], f"{path} features"),
                       int(z["image_w"]), int(z["image_h"]), None if probs is None else _array(probs, f"{path} class_probs"))
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise RegionReadError(f"{path}: {type(e).__name__}: {e}" if str(path) not in str(e) else str(e)) from e


def read_folder(folder: str | Path) -> tuple[dict[str, Regions], list[str]]:
    """Every ``*.npz`` and MMF ``ID.npy`` (with its ``ID_info.npy``) in ``folder`` → ({id: Regions},
    errors naming each bad file); the readable ones load."""
    out, errors = {}, []
    for file in sorted(Path(folder).iterdir()):
        if file.suffix not in (".npz", ".npy") or file.stem.endswith("_info"):
            continue
        try:
            out[file.stem] = read_npz(file) if file.suffix == ".npz" else read_mmf(file)
        except (RegionReadError, ValueError) as e:
            errors.append(str(e))
    return out, errors
