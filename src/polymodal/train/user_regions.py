"""Regions for the user's own pictures, for every region source (VQA v2, VCR, RefCOCO, memes, COCO
captions): each picture's region features, from one of

* ``data.regions=PATH``: features someone already computed — a bottom-up-attention TSV, or a folder
  of MMF ``ID.npy`` + ``ID_info.npy`` / ``.npz`` files — matched to the picture by its id, file stem or
  file name, and used as they are;
* ``data.region_tower=MODEL``: the whole picture and its boxes read off that image tower
  (:class:`~polymodal.tasks.region_extractor.RegionExtractor`), computed once into a cache keyed by
  the tower's weights, the picture file and the boxes. The boxes: ``data.boxes=truth`` (the default)
  takes those the annotations give (VCR's objects, RefCOCO's instances) and a 2 × 2 grid where they
  give none; ``grid`` always the grid; a JSON file ``{"file name": [[x0, y0, x1, y1], ...]}`` those.

A picture without regions (not in the features, unreadable, a box outside it) is reported and its
examples are left out; when more than ``data.max_missing`` of the pictures have none, the run stops
and says why.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.image_files import TRAILING_NUMBER as _TRAILING_NUMBER
from ..data.regions import RegionFeatures, RegionReadError, Regions, read_folder, read_npz, read_tsv
from ..modalities.image import ImageReadError, load_image
from ..tasks.region_extractor import read_box_table
from ..tasks.vqa import grid_boxes
from .config import ConfigError

MAX_BOXES = 100  # regions per picture: more than a detector keeps (bottom-up attention: 10–100)
BATCH = 16  # pictures through the tower at once
CACHE_FOLDER = "region_cache"  # under train.out unless data.feature_cache names a shared folder


@dataclass
class Picture:
    """One picture a source needs regions for: ``key`` matches it in ``data.regions`` (its id),
    ``path`` is its file (needed with a region tower), ``boxes`` [K, 4] pixels those its annotations
    give (or None), ``where`` names it in messages (file and row)."""
    key: str
    path: Path | None
    boxes: torch.Tensor | None = None
    where: str = ""


@dataclass
class PictureRegions:
    """The regions of the pictures that have them: ``features`` row i is ``kept[i]``'s picture."""
    features: RegionFeatures
    kept: list[int]  # indices into the pictures asked for
    problems: list[str]

    def row_of(self) -> dict[int, int]:
        """picture index → row of ``features``."""
        return {p: i for i, p in enumerate(self.kept)}


_read_regions: dict[tuple, tuple[dict[str, Regions], list[str]]] = {}


def _regions_file(path: str) -> tuple[dict[str, Regions], list[str]]:
    """``data.regions`` read once per process (a run's training and validation share it)."""
    p = Path(path)
    stamp = (path, p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else (path,)
    if stamp not in _read_regions:
        if p.is_dir():
            found = read_folder(p)
        elif p.suffix == ".npz":
            found = ({p.stem: read_npz(p)}, [])
        elif p.is_file():
            found = read_tsv(p)
        else:
            raise ConfigError(f"data.regions {path}: no such file or folder (a TSV, or a folder of .npy/.npz)")
        _read_regions.clear()
        _read_regions[stamp] = found
    return _read_regions[stamp]


def _given(pictures: list[Picture], path: str) -> tuple[list[Regions | None], list[str]]:
    table, problems = _regions_file(path)
    problems = list(problems)
    by_number = {}  # "COCO_train2014_000000000009" is picture 9's, as ImagesById finds pictures
    for name in table:
        if m := _TRAILING_NUMBER.match(name):
            by_number.setdefault(m.group(1), table[name])
    out = []
    for p in pictures:
        keys = [p.key] + ([p.path.stem, p.path.name] if p.path is not None else [])
        found = next((table[k] for k in keys if k in table), None)
        if found is None and p.key.isdigit():
            found = by_number.get(str(int(p.key)))
        if found is None:
            problems.append(f"{p.where}: no regions for picture {p.key!r} in {path}")
        out.append(found)
    return out, problems


def tower_digest(folder: str | Path) -> str:
    """A hash of a model folder's files (weights, config, processor): what the cached regions depend on."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).iterdir()):
        if f.is_file() and not f.is_symlink():
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def _boxes(mode: str, p: Picture, width: int, height: int, table: dict | None) -> torch.Tensor:
    """The picture's boxes (``data.boxes`` = ``mode``) with the whole picture first; a box outside the
    picture is an error."""
    if table is not None:
        name = p.path.name
        if name not in table:
            raise ValueError(f"no boxes for {name} in data.boxes {mode}")
        given = torch.tensor(table[name], dtype=torch.float32).reshape(-1, 4)
    elif mode == "grid" or p.boxes is None or len(p.boxes) == 0:
        return grid_boxes(width, height)
    elif mode == "truth":
        given = p.boxes.float().reshape(-1, 4)
    else:
        raise ConfigError(f"data.boxes {mode!r}: expected truth, grid or a JSON file of boxes per picture")
    slack = 1.0
    bad = (given[:, 0] < -slack) | (given[:, 1] < -slack) | (given[:, 2] > width + slack) | \
          (given[:, 3] > height + slack) | (given[:, 2] <= given[:, 0]) | (given[:, 3] <= given[:, 1])
    if bool(bad.any()):
        k = int(bad.nonzero()[0, 0])
        raise ValueError(f"box {k} {given[k].tolist()} is outside its {width} × {height} picture")
    if len(given) + 1 > MAX_BOXES:
        raise ValueError(f"{len(given)} boxes; at most {MAX_BOXES - 1} per picture")
    return torch.cat([torch.tensor([[0.0, 0.0, width, height]]), given])


def _computed(kind, pictures: list[Picture], mode: str) -> tuple[list[Regions | None], list[str]]:
    """Each picture's regions through ``kind.extractor`` with boxes ``mode`` (``data.boxes``), cached on
    disk (``data.feature_cache`` or ``train.out/region_cache``), with progress on stderr."""
    d = kind.cfg.data
    table = None
    if mode not in ("truth", "grid"):
        try:
            table = read_box_table(Path(mode))
        except (OSError, ValueError) as e:
            raise ConfigError(f"data.boxes {mode}: {e}") from None
    folder = Path(d.feature_cache) if d.feature_cache else (kind.out / CACHE_FOLDER if kind.out is not None else None)
    digest = tower_digest(d.region_tower)
    out: list[Regions | None] = [None] * len(pictures)
    problems, todo = [], []
    for i, p in enumerate(pictures):
        try:
            if p.path is None:
                raise ValueError("no picture file")
            stat = p.path.stat()
            boxes = None if p.boxes is None else p.boxes.numpy().tobytes()
            key = hashlib.sha256(repr((digest, str(p.path.resolve()), stat.st_size, stat.st_mtime_ns, boxes, mode,
                                       table.get(p.path.name) if table else None)).encode()).hexdigest()[:24]
            cached = folder / f"{key}.npz" if folder is not None else None
            if cached is not None and cached.is_file():
                out[i] = read_npz(cached)
            else:
                todo.append((i, cached))
        except (OSError, ValueError, RegionReadError) as e:
            problems.append(f"{p.where}: {e}")
    if folder is not None and todo:
        folder.mkdir(parents=True, exist_ok=True)
    start, done = time.monotonic(), 0
    for chunk in range(0, len(todo), BATCH):
        part, images, boxes = [], [], []
        for i, cached in todo[chunk:chunk + BATCH]:
            p = pictures[i]
            try:
                image = load_image(p.path)
                boxes.append(_boxes(mode, p, *image.size, table))
                images.append(image)
                part.append((i, cached))
            except (ImageReadError, ValueError, OSError) as e:
                problems.append(f"{p.where}: {p.path}: {e}")
        for (i, cached), r in zip(part, kind.extractor.each(images, boxes) if images else []):
            if isinstance(r, str):
                problems.append(f"{pictures[i].where}: {pictures[i].path}: {r}")
                continue
            out[i] = r
            if cached is not None:
                np.savez(cached, boxes=r.boxes.numpy(), features=r.features.numpy(), image_w=r.image_w,
                         image_h=r.image_h)
        done += len(todo[chunk:chunk + BATCH])
        if done == len(todo) or chunk // BATCH % 20 == 19:
            print(f"region features: {done}/{len(todo)} pictures through {d.region_tower} "
                  f"({done / max(time.monotonic() - start, 1e-9):.1f}/s)", file=sys.stderr, flush=True)
    return out, problems


def picture_regions(kind, pictures: list[Picture], split: str, boxes: str | None = None) -> PictureRegions:
    """The regions of ``pictures`` (see the module's docstring; ``boxes`` in place of ``data.boxes``);
    stops the run when more than ``data.max_missing`` of them have none."""
    d = kind.cfg.data
    if not pictures:
        raise ConfigError(f"data.kind {d.kind}: no {split} examples to read regions for")
    found, problems = _given(pictures, d.regions) if d.regions else _computed(kind, pictures, boxes or d.boxes)
    kept = [i for i, r in enumerate(found) if r is not None]
    missing = len(pictures) - len(kept)
    if missing > d.max_missing * len(pictures) or not kept:
        shown = "; ".join(problems[:3])
        raise ConfigError(f"data.kind {d.kind}: {missing} of {len(pictures)} {split} pictures have no regions "
                          f"(more than data.max_missing={d.max_missing:g}): {shown}")
    items = [found[i] for i in kept]
    width = {len(r.features[0]) for r in items}
    if len(width) > 1:
        raise ConfigError(f"data.regions {d.regions}: pictures have region features of different widths {sorted(width)}")
    return PictureRegions(RegionFeatures.collate(items, min(max(len(r) for r in items), MAX_BOXES)), kept, problems)
