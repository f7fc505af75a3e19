"""``data.kind=refcoco``: referring expressions about the user's pictures, for ``refexp``.

    data.path        RefCOCO's refs(unc).p with data.instances (COCO instances.json): splits by the
                     refs' own "split"; or a JSON/JSONL table of {"image", "expression", "box"[, "split",
                     "boxes"]} (data.val_path: a validation table, else its rows with split "val")
    data.images      the pictures' folder

Training picks among each picture's regions (``data.boxes``: the annotated objects, a grid, or a box
file). Validation reports accuracy at IoU ≥ 0.5 with the annotated objects as regions
("truth_boxes") and with a grid or box file in their place ("grid_boxes" / "file_boxes"): what a
model picks from when nobody drew the objects; with ``data.regions`` the regions are those files'
(a detector's: "given_boxes").
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ...data.image_files import file_inside
from ...data.refcoco import read_ref_table, read_refcoco
from ..config import ConfigError
from ..region_task_data import References, refexp_hits
from ..user_regions import Picture
from . import Source, register_source
from .region_files import REGION_SETTINGS, images_folder, texts_about


def _rows(kind, split: str):
    d = kind.cfg.data
    if not d.path:
        raise ConfigError("data.kind refcoco needs data.path (RefCOCO's refs pickle with data.instances, or a table "
                          "of image, expression, box)")
    if d.path.endswith((".p", ".pkl", ".pickle")):
        if not d.instances:
            raise ConfigError(f"data.path {d.path} is a RefCOCO refs pickle: it needs data.instances (instances.json)")
        rows, problems = read_refcoco(d.path, d.instances)
        return [r for r in rows if r.split == split], problems, d.path
    if split != "train" and d.val_path:
        rows, problems = read_ref_table(d.val_path)
        return rows, problems, d.val_path
    rows, problems = read_ref_table(d.path)
    return [r for r in rows if r.split in ((split,) if split != "train" else ("", "train"))], problems, d.path


def header_size(file: Path | None) -> tuple[int, int] | None:
    """A picture's (width, height) from its header (nothing decoded), or None if it cannot be opened."""
    if file is None:
        return None
    try:
        with Image.open(file) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _box_inside(box: list[float], size: tuple[int, int], slack: float = 1.0) -> bool:
    return -slack <= box[0] and -slack <= box[1] and box[2] <= size[0] + slack and box[3] <= size[1] + slack


def _inside(r, size, path, problems: list[str]) -> bool:
    if size is None or _box_inside(r.box, size):
        return True
    problems.append(f"{path}: {r.image} {r.expression!r}: box {r.box} is outside its {size[0]} × {size[1]} picture")
    return False


def references(kind, split: str, rows: list, path, boxes: str | None = None) -> tuple[References, list[str]] | None:
    """The References of ``rows`` (read from ``path``) with their pictures' regions on ``boxes``
    (default ``data.boxes``), and the problems met."""
    problems: list[str] = []
    if not rows:
        if split == "train":
            raise ConfigError(f"data.kind refcoco: {path} holds no training expressions")
        return None
    folder = images_folder(kind, split)
    pictures, index, sizes = [], {}, {}
    for r in rows:
        if r.image in index:
            continue
        where = f"{path}: picture {r.image}"
        try:
            file = file_inside(folder, r.image, where) if folder else None
        except ValueError as e:
            file, where = None, str(e)
        index[r.image] = len(pictures)
        sizes[r.image] = (r.width, r.height) if r.width else header_size(file)
        pictures.append(Picture(Path(r.image).stem, file, None, where))
    rows = [r for r in rows if _inside(r, sizes[r.image], path, problems)]
    for r in rows:  # the annotated objects that lie in their picture are its regions with data.boxes=truth
        p = pictures[index[r.image]]
        if p.boxes is None:
            size = sizes[r.image]
            inside = [b for b in r.candidates if size is None or _box_inside(b, size)]
            p.boxes = torch.tensor(inside).reshape(-1, 4)
    picture_of = [index[r.image] for r in rows]
    texts, kept, more = texts_about(kind, pictures, picture_of, [r.expression for r in rows],
                                    [f"{path}: {r.image} {r.expression!r}" for r in rows], split, boxes)
    problems += more
    # a target outside its picture cannot be referred to (checked again: data.regions files give the size)
    inside = [q for q, i in enumerate(kept)
              if _inside(rows[i], tuple(int(v) for v in texts.image_size[texts.scene_of[q]].tolist()), path, problems)]
    texts = texts.subset(inside)
    target = torch.tensor([rows[kept[q]].box for q in inside]).reshape(-1, 4)
    positives = refexp_hits(texts.boxes[texts.scene_of], texts.region_mask[texts.scene_of], target)
    return References(texts, target, positives), problems


def refcoco_references(kind, split: str) -> References | dict[str, References] | None:
    d = kind.cfg.data
    rows, problems, path = _rows(kind, split)  # read once: validation builds two sets from them
    if split == "train":
        refs, more = references(kind, split, rows, path)
        kind.report_skipped(problems + more, split)
        return refs
    modes = {"given_boxes": None} if d.regions else {"truth_boxes": "truth",
                                                     ("grid_boxes" if d.boxes in ("truth", "grid") else "file_boxes"):
                                                     "grid" if d.boxes in ("truth", "grid") else d.boxes}
    sets = {}
    for name, mode in modes.items():
        found = references(kind, split, rows, path, mode)
        if found is not None:
            sets[name], more = found
            problems += more
    kind.report_skipped(sorted(set(problems)), split)
    return sets or None


register_source(Source("refcoco", "region_references", refcoco_references,
                       ("path", "val_path", "instances", "images", "val_images", *REGION_SETTINGS),
                       about="RefCOCO refs pickle + instances.json, or a table of image, expression, box"))
