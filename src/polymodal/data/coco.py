"""COCO annotation files: captions (``captions_train2017.json``) and object instances
(``instances_train2017.json``), the layouts COCO, RefCOCO and many caption sets share.

    captions:  {"images": [{"id", "file_name", "width", "height"}], "annotations": [{"image_id", "caption"}]}
    instances: {"images": [...], "annotations": [{"id", "image_id", "bbox": [x, y, w, h], "category_id"}],
                "categories": [{"id", "name"}]}

Boxes become [x0, y0, x1, y1] pixels. Every bad record (a caption of an unknown image, a box outside
its image, an unknown category) is reported with file and record; the rest load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .records import box_in_image, json_list, need, read_json


@dataclass
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int
    captions: list[str] = field(default_factory=list)


@dataclass
class CocoObjects:
    """One image's annotated objects: ``boxes`` [[x0, y0, x1, y1], ...] pixels, their category names
    and annotation ids."""
    boxes: list[list[float]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


def coco_images(path: str | Path, data: dict, problems: list[str]) -> dict[int, CocoImage]:
    """The ``images`` table of a COCO file, by id."""
    images = {}
    for n, record in enumerate(json_list(path, "images", "COCO", data)):
        where = f"{path}: image {n}"
        try:
            if not isinstance(record, dict):
                raise ValueError(f"{where}: not an object")
            need(record, where, "id", "file_name", "width", "height")
            images[int(record["id"])] = CocoImage(int(record["id"]), str(record["file_name"]), int(record["width"]),
                                                  int(record["height"]))
        except (TypeError, ValueError) as e:
            problems.append(str(e) if str(e).startswith(str(path)) else f"{where}: {e}")
    return images


def read_coco_captions(path: str | Path) -> tuple[list[CocoImage], list[str]]:
    """COCO captions → (the images with at least one caption, each with its captions in file order;
    problems)."""
    problems: list[str] = []
    data = read_json(path, object)
    images = coco_images(path, data, problems)
    for n, record in enumerate(json_list(path, "annotations", "COCO captions", data)):
        where = f"{path}: annotation {n}"
        if not isinstance(record, dict) or not str(record.get("caption") or "").strip():
            problems.append(f"{where}: no caption")
            continue
        image = images.get(record.get("image_id"))
        if image is None:
            problems.append(f"{where}: image_id {record.get('image_id')!r} is not in the file's images")
            continue
        image.captions.append(" ".join(str(record["caption"]).split()))
    return [im for im in images.values() if im.captions], problems


def read_coco_instances(path: str | Path) -> tuple[dict[int, CocoImage], dict[int, CocoObjects], list[str]]:
    """COCO instances → (images by id, their objects by image id, problems). Crowd regions are kept
    out (``iscrowd`` 1: one box over many objects)."""
    problems: list[str] = []
    data = read_json(path, object)
    images = coco_images(path, data, problems)
    names = {}
    for c in json_list(path, "categories", "COCO instances", data):
        if isinstance(c, dict) and "id" in c and "name" in c:
            names[c["id"]] = str(c["name"])
    objects: dict[int, CocoObjects] = {}
    for n, record in enumerate(json_list(path, "annotations", "COCO instances", data)):
        where = f"{path}: annotation {n}"
        try:
            if not isinstance(record, dict):
                raise ValueError(f"{where}: not an object")
            need(record, where, "id", "image_id", "bbox", "category_id")
            if record.get("iscrowd"):
                continue
            image = images.get(record["image_id"])
            if image is None:
                raise ValueError(f"{where}: image_id {record['image_id']!r} is not in the file's images")
            if record["category_id"] not in names:
                raise ValueError(f"{where}: category_id {record['category_id']!r} is not in the file's categories")
            x, y, w, h = (float(v) for v in record["bbox"])
            box = box_in_image([x, y, x + w, y + h], image.width, image.height, where)
        except (TypeError, ValueError) as e:
            problems.append(str(e) if str(e).startswith(str(path)) else f"{where}: {e}")
            continue
        found = objects.setdefault(image.id, CocoObjects())
        found.boxes.append(box)
        found.names.append(names[record["category_id"]])
        found.ids.append(int(record["id"]))
    return images, objects, problems
