"""Referring expressions with their target box, in the two layouts people have:

* **a table** (``.json`` list or ``.jsonl``): ``{"image": "pic.jpg", "expression": "the man on the
  left", "box": [x0, y0, x1, y1]}`` in pixels, optionally ``"split"`` and ``"boxes"`` (the candidate
  objects of that picture; by default every target box the table gives for it);
* **RefCOCO / RefCOCO+ / RefCOCOg** as released: ``refs(unc).p`` (a Python pickle of plain lists and
  dicts: ``image_id``, ``ann_id``, ``split``, ``sentences`` [{"sent"}]) with COCO's ``instances.json``
  (the pictures, every object's box: the ground-truth candidates).

The refs pickle is read by an unpickler that admits plain types only: any class or function in it is
refused by name, so no code in the file runs. Every bad record (a box outside its picture, an
``ann_id`` the instances do not hold, an empty expression) is reported; the rest load.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .coco import read_coco_instances
from .records import AnnotationFormatError, box_in_image, check_file, jsonl_records, need

MAX_REFS_BYTES = 512 << 20  # RefCOCOg's refs pickle is ≈ 50 MB


@dataclass
class Reference:
    image: str  # file name, relative to the images folder
    expression: str
    box: list[float]  # [x0, y0, x1, y1] pixels: the referred object
    candidates: list[list[float]]  # the picture's objects (the target among them): the ground-truth regions
    width: int | None = None  # the picture's size when the annotations give it
    height: int | None = None
    split: str = ""


class _PlainTypesOnly(pickle.Unpickler):
    """Builds lists, dicts, tuples, strings and numbers; any global (a class, a function) is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a refs file holds plain lists, dicts, "
                                     "strings and numbers only")


def load_plain_pickle(path: str | Path, max_bytes: int = MAX_REFS_BYTES):
    """A pickle of plain Python values (Python 2 strings decoded as UTF-8), read without running code."""
    path = check_file(path, max_bytes)
    try:
        with open(path, "rb") as f:
            return _PlainTypesOnly(f, encoding="utf-8", errors="replace").load()
    except pickle.UnpicklingError as e:
        raise AnnotationFormatError(f"{path}: {e}") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as e:
        raise AnnotationFormatError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None


def read_ref_table(path: str | Path) -> tuple[list[Reference], list[str]]:
    """A JSON/JSONL table of (image, expression, box[, split, boxes]) → (references, problems)."""
    problems: list[str] = []
    rows = []
    for where, record in jsonl_records(path, problems):
        try:
            need(record, where, "image", "expression", "box")
            if not str(record["expression"]).strip():
                raise ValueError(f"{where}: empty expression")
            box = box_in_image(record["box"], float("inf"), float("inf"), where)
            candidates = [box_in_image(b, float("inf"), float("inf"), f"{where} candidate {k}")
                          for k, b in enumerate(record.get("boxes") or [])]
            rows.append(Reference(str(record["image"]), " ".join(str(record["expression"]).split()), box, candidates,
                                  split=str(record.get("split", ""))))
        except ValueError as e:
            problems.append(str(e))
    by_image = defaultdict(list)
    for r in rows:
        by_image[r.image].append(r.box)
    for r in rows:
        if not r.candidates:  # every object the table names in this picture
            r.candidates = [list(b) for b in dict.fromkeys(tuple(b) for b in by_image[r.image])]
        elif r.box not in r.candidates:
            r.candidates.append(r.box)
    return rows, problems


def read_refcoco(refs: str | Path, instances: str | Path) -> tuple[list[Reference], list[str]]:
    """RefCOCO's refs pickle + COCO instances → one reference per sentence, with its picture's
    annotated objects as candidates, and the problems."""
    data = load_plain_pickle(refs)
    if not isinstance(data, list):
        raise AnnotationFormatError(f"{refs}: expected a list of refs, got {type(data).__name__}")
    images, objects, problems = read_coco_instances(instances)
    out = []
    for n, ref in enumerate(data):
        where = f"{refs}: ref {n}"
        try:
            if not isinstance(ref, dict):
                raise ValueError(f"{where}: not a dict")
            need(ref, where, "image_id", "ann_id", "sentences")
            image, found = images.get(ref["image_id"]), objects.get(ref["image_id"])
            if image is None or found is None or ref["ann_id"] not in found.ids:
                raise ValueError(f"{where}: ann_id {ref['ann_id']!r} of image {ref['image_id']!r} is not in {instances}")
            box = found.boxes[found.ids.index(ref["ann_id"])]
            for s in ref["sentences"]:
                text = " ".join(str((s or {}).get("sent") or (s or {}).get("raw") or "").split())
                if not text:
                    problems.append(f"{where}: a sentence without text")
                    continue
                out.append(Reference(image.file_name, text, box, [list(b) for b in found.boxes], image.width,
                                     image.height, str(ref.get("split", ""))))
        except (TypeError, ValueError) as e:
            problems.append(str(e))
    return out, problems
