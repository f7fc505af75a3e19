"""VCR (Visual Commonsense Reasoning) files: ``train.jsonl`` / ``val.jsonl`` and, beside the
pictures, one metadata JSON per picture.

    jsonl line:  {"img_fn": "movie/pic.jpg", "metadata_fn": "movie/pic.json", "objects": ["person", ...],
                  "question": ["What", "is", [0], "doing", "?"], "answer_choices": [[...] × 4],
                  "rationale_choices": [[...] × 4], "answer_label": 2, "rationale_label": 0, ...}
    metadata:    {"boxes": [[x0, y0, x1, y1, score], ...], "names": [...], "width": W, "height": H}

A token that is a list of object indices (``[0]``, ``[0, 2]``) refers to the picture's objects; it
becomes their names joined by "and" ("person and car"), as the reference does. Every bad line (an
index out of range, a box outside its picture, a missing file, not four choices) is reported with
file and line; the rest load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .image_files import file_inside
from .records import box_in_image, jsonl_records, need, read_json

CHOICES = 4


@dataclass
class VCRItem:
    image: Path
    width: int
    height: int
    boxes: torch.Tensor  # [K, 4] the objects' boxes (pixels, x0 y0 x1 y1), index = the [i] of the texts
    names: list[str]  # [K] each object's class name
    question: str
    answers: list[str]  # 4
    rationales: list[str]  # 4
    answer_label: int
    rationale_label: int


def vcr_text(tokens: list, names: list[str], where: str) -> str:
    """VCR's token list → a sentence: object references become their names (``[0, 1]`` → "person
    and car"), punctuation keeps to the word before it."""
    words = []
    for token in tokens:
        if isinstance(token, list):
            for i in token:
                if not isinstance(i, int) or not 0 <= i < len(names):
                    raise ValueError(f"{where}: object index {i!r} is out of range (the picture has {len(names)} objects)")
            words.append(" and ".join(names[i] for i in token))
        elif isinstance(token, str):
            if words and token in {".", ",", "?", "!", "'s", "n't", ":", ";"}:
                words[-1] += token
            else:
                words.append(token)
        else:
            raise ValueError(f"{where}: token {token!r} is neither a word nor a list of object indices")
    return " ".join(words)


def _item(record: dict, images: Path, where: str) -> VCRItem:
    need(record, where, "img_fn", "metadata_fn", "question", "answer_choices", "rationale_choices", "answer_label",
         "rationale_label")
    image = file_inside(images, record["img_fn"], where)
    meta_file = file_inside(images, record["metadata_fn"], where)
    meta = read_json(meta_file, dict, max_bytes=64 << 20)
    try:
        width, height = int(meta["width"]), int(meta["height"])
        raw_boxes = list(meta["boxes"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: {meta_file} lacks {e} (needs boxes, width, height)") from None
    names = [str(n) for n in record.get("objects") or meta.get("names") or []]
    if len(names) != len(raw_boxes):
        raise ValueError(f"{where}: {len(names)} object names for {len(raw_boxes)} boxes in {meta_file.name}")
    boxes = [box_in_image(b[:4] if isinstance(b, list) else b, width, height, f"{where} ({meta_file.name} box {k})")
             for k, b in enumerate(raw_boxes)]
    answers = [vcr_text(c, names, f"{where} answer {k}") for k, c in enumerate(record["answer_choices"])]
    rationales = [vcr_text(c, names, f"{where} rationale {k}") for k, c in enumerate(record["rationale_choices"])]
    if len(answers) != CHOICES or len(rationales) != CHOICES:
        raise ValueError(f"{where}: {len(answers)} answers and {len(rationales)} rationales, VCR gives {CHOICES} each")
    labels = record["answer_label"], record["rationale_label"]
    if not all(isinstance(v, int) and 0 <= v < CHOICES for v in labels):
        raise ValueError(f"{where}: answer_label / rationale_label {labels} are not in 0..{CHOICES - 1}")
    return VCRItem(image, width, height, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), names,
                   vcr_text(record["question"], names, f"{where} question"), answers, rationales, *labels)


def read_vcr(path: str | Path, images: str | Path) -> tuple[list[VCRItem], list[str]]:
    """The items of a VCR jsonl whose pictures and metadata lie under ``images`` (VCR's
    ``vcr1images`` folder) → (items, problems: one line per bad line)."""
    problems: list[str] = []
    items = []
    for where, record in jsonl_records(path, problems):
        try:
            items.append(_item(record, Path(images), where))
        except ValueError as e:
            problems.append(str(e))
    return items, problems
